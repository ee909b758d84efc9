"""`streamr:idleDeepPauseHours` under Pulumi mocks: the pause function keeps its idle record, the
wake endpoint reads it on a 15-minute schedule and alone may read the GitHub token; unset or
deep-paused nothing of it exists; bad values and missing companions name the key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.wake_endpoint import IDLE_DEEP_CHECK_SCHEDULE
from offline.harness import ProgramRun
from ops.idle_deep import CHECK_EVENT
from stack_config import StackConfig, StackConfigError
from tests.infra.support import evaluated
from tests.infra.test_wake_endpoint import GITHUB

RECORD = "/streamr/dev/idle-pause-record"
RECORD_ARN = f"arn:aws:ssm:eu-west-1:123456789012:parameter{RECORD}"
DEV_WITH_GITHUB = {
    "stage": "dev",
    "idlePauseMinutes": 30,
    "wakeEndpoint": True,
    "githubRepository": GITHUB["githubRepository"],
    "stateBucket": GITHUB["stateBucket"],
    "secretsKeyArn": GITHUB["secretsKeyArn"],
}


@pytest.fixture(scope="module")
def configured() -> ProgramRun:
    return evaluated("dev", {**GITHUB, "idleDeepPauseHours": 3})


def variables(run: ProgramRun, function: str) -> dict[str, str]:
    return run.named(function).inputs["environment"]["variables"]


def statements(run: ProgramRun, policy: str) -> dict[str, dict[str, Any]]:
    document = json.loads(run.named(policy).inputs["policy"])
    return {statement["Sid"]: statement for statement in document["Statement"]}


def test_the_pause_function_keeps_the_idle_record_and_may_write_only_it(configured) -> None:
    record = configured.named("streamr-dev-pause-idle-record")
    assert (record.inputs["name"], record.inputs["value"]) == (RECORD, "{}")
    assert variables(configured, "streamr-dev-pause-function")["IDLE_RECORD_PARAMETER"] == RECORD
    keep = statements(configured, "streamr-dev-pause-function-policy")["KeepTheIdlePauseRecord"]
    assert (keep["Action"], keep["Resource"]) == ("ssm:PutParameter", RECORD_ARN)


def test_the_wake_endpoint_checks_every_quarter_hour_and_may_only_read_the_record(
    configured,
) -> None:
    wake = variables(configured, "streamr-dev-wake-function")
    assert (wake["IDLE_DEEP_PAUSE_HOURS"], wake["IDLE_RECORD_PARAMETER"]) == ("3", RECORD)
    read = statements(configured, "streamr-dev-wake-policy")["ReadTheIdlePauseRecord"]
    assert (read["Action"], read["Resource"]) == ("ssm:GetParameter", RECORD_ARN)

    rule = configured.named("streamr-dev-wake-idle-deep-check")
    assert rule.inputs["scheduleExpression"] == IDLE_DEEP_CHECK_SCHEDULE == "rate(15 minutes)"
    target = configured.named("streamr-dev-wake-idle-deep-check-target")
    function = configured.named("streamr-dev-wake-function")
    assert target.inputs["arn"] == function.outputs["arn"]
    assert json.loads(target.inputs["input"]) == CHECK_EVENT
    permission = configured.named("streamr-dev-wake-idle-deep-check-invoke").inputs
    assert permission["principal"] == "events.amazonaws.com"
    assert permission["sourceArn"] == rule.outputs["arn"]


def test_only_the_wake_function_may_read_the_github_token(configured) -> None:
    token = configured.named(
        "streamr-dev-wake-github-token", "aws:ssm/parameter:Parameter"
    ).outputs["arn"]
    readers = [
        resource.name
        for resource in configured.of_type("aws:iam/rolePolicy:RolePolicy")
        if token in resource.inputs["policy"]
    ]
    assert readers == ["streamr-dev-wake-policy"]


@pytest.mark.parametrize("overrides", [{}, {**GITHUB, "idleDeepPauseHours": 3, "paused": True}])
def test_unset_or_deep_paused_there_is_no_record_schedule_or_permission(overrides) -> None:
    run = evaluated("dev", overrides)
    names = {resource.name for resource in run.resources}
    assert not names & {
        "streamr-dev-pause-idle-record",
        "streamr-dev-wake-idle-deep-check",
        "streamr-dev-wake-idle-deep-check-target",
    }
    assert "IDLE_DEEP_PAUSE_HOURS" not in variables(run, "streamr-dev-wake-function")
    assert "ReadTheIdlePauseRecord" not in statements(run, "streamr-dev-wake-policy")
    assert "KeepTheIdlePauseRecord" not in statements(run, "streamr-dev-pause-function-policy")


@pytest.mark.parametrize("hours", [0, 169, "soon", 2.5])
def test_hours_out_of_range_name_the_key_and_range(hours) -> None:
    with pytest.raises(StackConfigError) as raised:
        StackConfig.from_mapping({**DEV_WITH_GITHUB, "idleDeepPauseHours": hours}, "eu-west-1")
    assert "streamr:idleDeepPauseHours" in str(raised.value)
    assert "1..168" in str(raised.value)


@pytest.mark.parametrize(
    ("change", "missing"),
    [
        ({"idlePauseMinutes": ""}, "streamr:idlePauseMinutes"),
        ({"wakeEndpoint": False}, "streamr:wakeEndpoint"),
        (
            {"githubRepository": "", "stateBucket": "", "secretsKeyArn": ""},
            "streamr:githubRepository",
        ),
    ],
)
def test_it_needs_the_idle_pause_the_wake_endpoint_and_the_workflow(change, missing) -> None:
    with pytest.raises(StackConfigError) as raised:
        StackConfig.from_mapping(
            {**DEV_WITH_GITHUB, **change, "idleDeepPauseHours": 3}, "eu-west-1"
        )
    assert f"streamr:idleDeepPauseHours needs {missing}" in str(raised.value)


def test_a_valid_value_is_read() -> None:
    config = StackConfig.from_mapping({**DEV_WITH_GITHUB, "idleDeepPauseHours": "6"}, "eu-west-1")
    assert config.idle_deep_pause_hours == 6

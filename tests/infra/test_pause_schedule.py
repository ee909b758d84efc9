"""The stop schedule under Pulumi mocks: schedules in the operator's timezone, a function that
may change only this stack's resources (and can make every call ops/ makes), retries, dead letters,
alarms, and what a deep pause leaves."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import zipfile
from datetime import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from components.pause_permissions import OPS_TAG_KEYS
from components.pause_schedule import (
    EC2_WAIT_SECONDS,
    OPS_DIR,
    RDS_WAIT_SECONDS,
    TIMEOUT_SECONDS,
    PauseScheduleArgs,
    schedule_specs,
)
from offline.harness import ProgramRun, Resource, run_program
from tests.infra.support import evaluated

EVERY_DAY = "MON,TUE,WED,THU,FRI,SAT,SUN"
PARAMETER = "aws:ssm/parameter:Parameter"


def part(run: ProgramRun, suffix: str) -> Resource:
    return run.named(f"streamr-{run.stack}-pause-{suffix}")


@pytest.fixture(scope="module")
def dev() -> ProgramRun:
    return evaluated("dev")


@pytest.fixture(scope="module")
def deep() -> ProgramRun:
    return evaluated("dev", {"paused": True})


def statements(policy: str) -> list[dict[str, Any]]:
    return json.loads(policy)["Statement"]


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def test_schedules_run_in_the_operators_timezone(dev: ProgramRun) -> None:
    schedules = {s.name: s.inputs for s in dev.of_type("aws:scheduler/schedule:Schedule")}
    assert {name: (s["scheduleExpression"], json.loads(s["target"]["input"])["action"])
            for name, s in schedules.items()} == {
        "streamr-dev-pause-pause": (f"cron(0 22 ? * {EVERY_DAY} *)", "pause"),
        "streamr-dev-pause-resume": (f"cron(0 8 ? * {EVERY_DAY} *)", "resume"),
        # dev has an idle pause: enforcement checks every 5 minutes.
        "streamr-dev-pause-enforce": ("rate(5 minutes)", "enforce"),
    }  # fmt: skip
    for schedule in schedules.values():
        assert schedule["scheduleExpressionTimezone"] == "Europe/Amsterdam"
        assert schedule["flexibleTimeWindow"] == {"mode": "OFF"}
        assert schedule["groupName"] == part(dev, "group").outputs["name"]
        target = schedule["target"]
        assert target["arn"] == part(dev, "function").outputs["arn"]
        assert target["roleArn"] == part(dev, "scheduler-role").outputs["arn"]
        assert target["deadLetterConfig"]["arn"] == part(dev, "dlq").outputs["arn"]
        assert target["retryPolicy"]["maximumRetryAttempts"] >= 1


def test_weekdays_minutes_and_the_zone_come_from_the_config() -> None:
    run = evaluated(
        "dev",
        {"pauseAt": "23:45", "resumeAt": "17:30", "pauseWeekdays": ["fri", "sat"],
         "timezone": "America/New_York"},
    )  # fmt: skip
    schedules = {s.name: s.inputs for s in run.of_type("aws:scheduler/schedule:Schedule")}
    assert schedules["streamr-dev-pause-pause"]["scheduleExpression"] == "cron(45 23 ? * FRI,SAT *)"
    assert (
        schedules["streamr-dev-pause-resume"]["scheduleExpression"] == "cron(30 17 ? * FRI,SAT *)"
    )
    assert {s["scheduleExpressionTimezone"] for s in schedules.values()} == {"America/New_York"}
    variables = part(run, "function").inputs["environment"]["variables"]
    assert (variables["PAUSE_AT"], variables["RESUME_AT"], variables["WEEKDAYS"]) == (
        "23:45",
        "17:30",
        "fri,sat",
    )


def test_schedule_settings_are_checked() -> None:
    base = {"project": "streamr", "stage": "dev", "timezone": "UTC", "alarm_topic_arn": "t",
            "tags": {}}  # fmt: skip
    with pytest.raises(ValueError, match="needs pause_at, resume_at and weekdays"):
        schedule_specs(PauseScheduleArgs(**base, pause_at=time(22)))
    with pytest.raises(ValueError, match="allowed values: mon, tue"):
        schedule_specs(
            PauseScheduleArgs(**base, pause_at=time(22), resume_at=time(8), weekdays=("funday",))
        )


def test_the_function_runs_ops_on_arm64_within_lambdas_time_limit(dev: ProgramRun) -> None:
    function = part(dev, "function").inputs
    assert (function["runtime"], function["architectures"], function["handler"]) == (
        "python3.12",
        ["arm64"],
        "ops.handler.lambda_handler",
    )
    # The database phase and the hosts phase both wait; together they must end before Lambda stops.
    assert RDS_WAIT_SECONDS + EC2_WAIT_SECONDS < TIMEOUT_SECONDS == function["timeout"] <= 900
    variables = function["environment"]["variables"]
    idle_keys = {"IDLE_PAUSE_MINUTES", "COORDINATOR_URL", "OPS_TOKEN_PARAMETER"}
    assert {key: value for key, value in variables.items() if key not in idle_keys} == {
        "PROJECT": "streamr",
        "STAGE": "dev",
        "TIMEZONE": "Europe/Amsterdam",
        "PAUSE_AT": "22:00",
        "RESUME_AT": "08:00",
        "WEEKDAYS": "mon,tue,wed,thu,fri,sat,sun",
        "RDS_WAIT_SECONDS": str(RDS_WAIT_SECONDS),
        "EC2_WAIT_SECONDS": str(EC2_WAIT_SECONDS),
    }
    assert function["deadLetterConfig"]["targetArn"] == part(dev, "dlq").outputs["arn"]
    assert function["role"] == part(dev, "function-role").outputs["arn"]


def test_logs_go_to_a_log_group_with_retention_made_before_the_function(dev: ProgramRun) -> None:
    logs = part(dev, "logs")
    assert logs.inputs["retentionInDays"] == 30
    assert part(dev, "function").inputs["loggingConfig"]["logGroup"] == logs.outputs["name"]


def test_failed_runs_are_retried_then_kept_encrypted_and_alarmed(dev: ProgramRun) -> None:
    retries = part(dev, "retries").inputs
    assert retries["functionName"] == part(dev, "function").outputs["name"]
    assert retries["maximumRetryAttempts"] == 2
    queue = part(dev, "dlq").inputs
    assert queue["sqsManagedSseEnabled"] is True
    assert queue["messageRetentionSeconds"] == 14 * 24 * 3600
    topic = dev.named("streamr-dev-monitoring-alerts").outputs["arn"]
    errors = part(dev, "errors").inputs
    assert (errors["namespace"], errors["metricName"]) == ("AWS/Lambda", "Errors")
    assert errors["dimensions"] == {"FunctionName": part(dev, "function").outputs["name"]}
    letters = part(dev, "dead-letters").inputs
    assert letters["dimensions"] == {"QueueName": part(dev, "dlq").outputs["name"]}
    for alarm in (errors, letters):
        assert alarm["alarmActions"] == [topic] and alarm["okActions"] == [topic]
        assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanThreshold", 0)


def test_the_archive_is_the_ops_package_and_its_handler_imports(tmp_path: Path) -> None:
    from components.pause_schedule import ops_archive

    assets = ops_archive().assets
    assert set(assets) == {f"ops/{path.name}" for path in OPS_DIR.glob("*.py")}
    assert "ops/handler.py" in assets
    bundle = tmp_path / "function.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        for name, asset in assets.items():
            archive.write(asset.path, name)
    # Lambda puts the bundle on sys.path; the handler must import from it alone.
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import ops.handler as h; "
        "assert h.__file__.startswith(sys.argv[1]); print(h.lambda_handler.__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(bundle)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert result.stdout.strip() == "lambda_handler"


def function_statements(run: ProgramRun) -> list[dict[str, Any]]:
    return statements(part(run, "function-policy").inputs["policy"])


def test_mutating_actions_need_this_stacks_tags(dev: ProgramRun) -> None:
    for statement in function_statements(dev):
        actions = as_list(statement["Action"])
        assert statement["Effect"] == "Allow"
        if all(action.split(":")[1].startswith("Describe") for action in actions):
            continue
        if statement["Sid"] in {"Logs", "DeadLetters", "ReadTheOpsToken"}:
            assert "*" not in statement["Resource"].split(":")[-1].rstrip("*")
            continue
        if statement["Sid"] == "DecryptItsParameters":
            # Only through SSM, only for the ops token's parameter.
            ops_token = dev.named("streamr-dev-coordinator-ops-token", PARAMETER)
            assert statement["Condition"]["StringEquals"] == {
                "kms:ViaService": "ssm.eu-west-1.amazonaws.com",
                "kms:EncryptionContext:PARAMETER_ARN": [ops_token.outputs["arn"]],
            }
            continue
        condition = statement["Condition"]["StringEquals"]
        prefix = "autoscaling" if actions[0].startswith("autoscaling:") else "aws"
        assert condition == {
            f"{prefix}:ResourceTag/Project": "streamr",
            f"{prefix}:ResourceTag/Stage": "dev",
        }, statement["Sid"]
        assert statement["Resource"].startswith("arn:aws:")
        assert ":eu-west-1:123456789012:" in statement["Resource"]
        if any("Tag" in action for action in actions):
            assert statement["Condition"]["ForAllValues:StringEquals"] == {
                "aws:TagKeys": list(OPS_TAG_KEYS)
            }


def test_logs_and_dead_letters_are_this_functions_own(dev: ProgramRun) -> None:
    by_sid = {s["Sid"]: s for s in function_statements(dev)}
    assert by_sid["Logs"]["Resource"] == part(dev, "logs").outputs["arn"] + ":*"
    assert by_sid["DeadLetters"]["Resource"] == part(dev, "dlq").outputs["arn"]


def ops_calls() -> set[str]:
    """Every AWS API `ops/` calls, as IAM actions (`ec2:StopInstances`), named by botocore."""
    session = boto3.session.Session(region_name="eu-west-1")
    api_names = {
        service: session.client(service).meta.method_to_api_mapping
        for service in ("autoscaling", "ec2", "rds")
    }
    calls = set()
    for path in OPS_DIR.glob("*.py"):
        text = path.read_text()
        for service, method in re.findall(r"clients\.(\w+)\.(\w+)\(", text):
            calls.add(f"{service}:{api_names[service][method]}")
        for method in re.findall(r"get_paginator\(\"(\w+)\"\)", text):
            owners = [service for service, names in api_names.items() if method in names]
            assert len(owners) == 1, method
            calls.add(f"{owners[0]}:{api_names[owners[0]][method]}")
    return calls


def test_the_function_may_make_every_call_ops_makes(dev: ProgramRun) -> None:
    allowed = {
        action for statement in function_statements(dev) for action in as_list(statement["Action"])
    }
    calls = ops_calls()
    assert {"rds:StopDBInstance", "autoscaling:DescribeAutoScalingGroups"} <= calls
    assert calls <= allowed, calls - allowed
    # ...and nothing it never calls, apart from writing its own logs and dead letters and reading
    # the ops token (ops/handler.py's coordinator_activity).
    assert 'read_secure(session.client("ssm")' in (OPS_DIR / "handler.py").read_text()
    assert allowed - calls == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "sqs:SendMessage",
        "ssm:GetParameter",
        "kms:Decrypt",
    }


def test_the_scheduler_may_only_invoke_the_function(dev: ProgramRun) -> None:
    account = "123456789012"
    trust = statements(part(dev, "scheduler-role").inputs["assumeRolePolicy"])
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        }
    ]
    policy = statements(part(dev, "scheduler-policy").inputs["policy"])
    assert policy == [
        {
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": part(dev, "function").outputs["arn"],
        },
        {
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": part(dev, "dlq").outputs["arn"],
        },
    ]
    function_trust = statements(part(dev, "function-role").inputs["assumeRolePolicy"])
    assert [s["Principal"] for s in function_trust] == [{"Service": "lambda.amazonaws.com"}]


def test_a_deep_pause_holds_everything_paused(deep: ProgramRun) -> None:
    schedules = deep.of_type("aws:scheduler/schedule:Schedule")
    assert [(s.name, s.inputs["scheduleExpression"]) for s in schedules] == [
        ("streamr-dev-pause-hold-paused", "rate(3 hours)")
    ]
    assert json.loads(schedules[0].inputs["target"]["input"]) == {
        "action": "pause",
        "dry_run": False,
    }
    variables = part(deep, "function").inputs["environment"]["variables"]
    assert not {"PAUSE_AT", "RESUME_AT", "WEEKDAYS"} & set(variables)


def test_a_deep_pause_drops_what_bills_by_the_hour_and_keeps_the_database(deep: ProgramRun) -> None:
    gateway = evaluated("prod", {"paused": True})
    for run in (deep, gateway):
        assert not run.of_type("aws:lb/loadBalancer:LoadBalancer")
        assert not run.of_type("aws:ec2/natGateway:NatGateway")
        assert not run.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
        assert run.one("aws:rds/instance:Instance")
        group = run.one("aws:autoscaling/group:Group").inputs
        assert (group["minSize"], group["desiredCapacity"], group["maxSize"]) == (0, 0, 0)
    # prod has no stop schedule; paused, it still gets the one that holds it paused.
    assert [s.name for s in gateway.of_type("aws:scheduler/schedule:Schedule")] == [
        "streamr-prod-pause-hold-paused"
    ]
    assert not evaluated("prod").of_type("streamr:ops:PauseSchedule")


def test_the_idle_pause_asks_the_coordinator_with_the_ops_token_it_alone_may_read(
    dev: ProgramRun,
) -> None:
    environment = part(dev, "function").inputs["environment"]["variables"]
    parameter = dev.named("streamr-dev-coordinator-ops-token", PARAMETER)
    name, arn = parameter.inputs["name"], parameter.outputs["arn"]
    assert (name, parameter.inputs["type"]) == (
        "/streamr-dev-coordinator/ops-token",
        "SecureString",
    )
    assert environment["IDLE_PAUSE_MINUTES"] == "30"
    assert environment["OPS_TOKEN_PARAMETER"] == name
    assert environment["COORDINATOR_URL"] == dev.outputs["coordinatorUrl"]
    by_sid = {s["Sid"]: s for s in function_statements(dev)}
    assert by_sid["ReadTheOpsToken"] == {
        "Sid": "ReadTheOpsToken",
        "Effect": "Allow",
        "Action": "ssm:GetParameter",
        "Resource": arn,
    }
    # The coordinator's hosts read it at boot into STREAMR_OPS_TOKEN; no value is in user data.
    template = dev.one("aws:ec2/launchTemplate:LaunchTemplate").inputs
    user_data = base64.b64decode(template["userData"]).decode()
    assert f"OPS_TOKEN_PARAMETER={name}" in user_data
    # A parameter of its own, not in the host secrets: the idle pause may read it and no more.
    assert 'ops_token="$(parameter "$OPS_TOKEN_PARAMETER")"' in user_data
    assert "STREAMR_OPS_TOKEN=$ops_token" in user_data


def test_an_idle_pause_without_a_schedule_is_one_frequent_enforcement() -> None:
    run = run_program("prod", {"idlePauseMinutes": 60})
    schedules = {s.name: s.inputs for s in run.of_type("aws:scheduler/schedule:Schedule")}
    assert {name: s["scheduleExpression"] for name, s in schedules.items()} == {
        "streamr-prod-pause-enforce": "rate(5 minutes)"
    }
    environment = part(run, "function").inputs["environment"]["variables"]
    assert environment["IDLE_PAUSE_MINUTES"] == "60"
    assert "PAUSE_AT" not in environment


def test_a_deep_pause_has_no_idle_check_but_keeps_the_ops_token(deep: ProgramRun) -> None:
    environment = part(deep, "function").inputs["environment"]["variables"]
    assert "IDLE_PAUSE_MINUTES" not in environment
    assert deep.named("streamr-dev-coordinator-ops-token", PARAMETER) is not None


def test_idle_pause_settings_come_all_together() -> None:
    from components.pause_schedule import PauseSchedule

    with pytest.raises(ValueError, match="idle pause needs idle_pause_minutes, coordinator_url"):
        PauseSchedule(
            "p",
            PauseScheduleArgs(
                project="streamr", stage="dev", timezone="UTC", alarm_topic_arn="arn",
                tags={}, idle_pause_minutes=30,
            ),
        )  # fmt: skip

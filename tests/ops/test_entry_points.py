"""The Lambda handler and the operator CLI, end to end against the moto account."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import botocore.session
import pytest

from ops import cli
from ops.handler import ConfigError, Settings, execute, lambda_handler
from tests.ops.support import aws_error

ENV = {
    "PROJECT": "streamr",
    "STAGE": "dev",
    "PAUSE_AT": "22:00",
    "RESUME_AT": "08:00",
    "WEEKDAYS": "mon,tue,wed,thu,fri,sat,sun",
    "TIMEZONE": "Europe/Amsterdam",
    "RDS_WAIT_SECONDS": "5",
    "EC2_WAIT_SECONDS": "5",
}
NIGHT = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)
# What the component sets on a deep pause: no schedule, so the function can only pause or resume.
DEEP_PAUSE_ENV = {
    key: value for key, value in ENV.items() if key not in {"PAUSE_AT", "RESUME_AT", "WEEKDAYS"}
}


def test_lambda_pauses_and_resumes_from_its_environment(account, monkeypatch, capsys):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)

    paused = lambda_handler({"action": "pause"}, None)
    assert paused["ok"] is True
    assert account.asg_sizes("streamr-dev-coordinator") == (0, 0, 0)
    logged = capsys.readouterr().out
    assert '"progress"' in logged

    resumed = lambda_handler({"action": "resume", "dry_run": False}, None)
    assert [item["outcome"] for item in resumed["items"]] == ["done"] * 4
    assert account.asg_sizes("streamr-dev-coordinator") == (1, 2, 4)


def test_deep_pause_holds_everything_paused_without_a_schedule(account, monkeypatch):
    for key, value in DEEP_PAUSE_ENV.items():
        monkeypatch.setenv(key, value)
    assert lambda_handler({"action": "pause"}, None)["ok"] is True
    account.calls.clear()
    again = lambda_handler({"action": "pause"}, None)
    assert {item["action"] for item in again["items"]} == {"none"}
    assert account.mutating_calls() == []
    assert account.db_state("streamr-dev-db") == "stopped"


def test_lambda_raises_when_a_resource_failed_so_retries_and_the_alarm_see_it(account, monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)

    # The handler builds its own clients, so fail the call for every new RDS client.
    original = botocore.session.Session.create_client

    def create_client(self, service_name, *args, **kwargs):
        client = original(self, service_name, *args, **kwargs)
        if service_name == "rds":
            client.meta.events.register("before-call.rds.StopDBInstance", aws_error("AccessDenied"))
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    with pytest.raises(RuntimeError, match="1 resource\\(s\\) failed: streamr-dev-db"):
        lambda_handler({"action": "pause"}, None)
    assert account.asg_sizes("streamr-dev-coordinator") == (0, 0, 0)


@pytest.mark.parametrize(
    ("env", "event", "message"),
    [
        ({**ENV, "STAGE": ""}, {"action": "pause"}, "missing environment variable\\(s\\): STAGE"),
        ({**ENV, "RDS_WAIT_SECONDS": "soon"}, {"action": "pause"}, "RDS_WAIT_SECONDS is 'soon'"),
        (ENV, {"action": "sleep"}, "allowed values: pause, resume, enforce"),
        (ENV, {"action": "pause", "dry_run": "yes"}, "dry_run is 'yes'"),
        (
            {**ENV, "WEEKDAYS": ""},
            {"action": "pause"},
            "missing environment variable\\(s\\): WEEKDAYS",
        ),
        (DEEP_PAUSE_ENV, {"action": "enforce"}, "'enforce' needs a schedule"),
    ],
)
def test_bad_events_and_settings_are_named(account, env, event, message):
    with pytest.raises(ConfigError, match=message):
        execute(event, Settings.from_env(env), account.clients, NIGHT)


def run_cli(account, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), clients=account.clients, now=NIGHT, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_pause_shows_progress_and_a_table_then_status_agrees(account):
    code, out, err = run_cli(account, "pause", "--stage", "dev")
    assert code == cli.EXIT_OK
    assert "scale_to_zero asg streamr-dev-coordinator" in err
    header, *rows, summary = out.splitlines()
    assert header.split() == ["kind", "name", "id", "before", "action", "outcome", "after", "note"]
    assert [row.split()[0] for row in rows] == ["asg", "ec2", "ec2", "rds"]
    assert summary == "pause streamr/dev: 4 resource(s), 0 failed, 0 skipped"

    account.calls.clear()
    schedule = "22:00,08:00,mon+tue+wed+thu+fri+sat+sun,Europe/Amsterdam"
    code, out, _ = run_cli(account, "status", "--stage", "dev", "--schedule", schedule, "--json")
    assert code == cli.EXIT_OK
    assert account.mutating_calls() == []
    assert {item["action"] for item in json.loads(out)["items"]} == {"none"}


def test_cli_dry_run_resume_changes_nothing(account):
    run_cli(account, "pause", "--stage", "dev")
    account.calls.clear()
    code, out, _ = run_cli(account, "resume", "--stage", "dev", "--dry-run")
    assert code == cli.EXIT_OK
    assert account.mutating_calls() == []
    assert "resume (dry run)" in out
    assert account.db_state("streamr-dev-db") == "stopped"


def test_cli_exit_codes_for_nothing_found_bad_schedule_and_failure(account):
    assert run_cli(account, "status", "--stage", "staging")[0] == cli.EXIT_NOTHING_FOUND
    code, _, err = run_cli(account, "status", "--stage", "dev", "--schedule", "22:00,08:00")
    assert code == cli.EXIT_USAGE
    assert "--schedule is '22:00,08:00'" in err

    account.clients.autoscaling.meta.events.register(
        "before-call.autoscaling.UpdateAutoScalingGroup", aws_error("AccessDenied")
    )
    code, out, _ = run_cli(account, "pause", "--stage", "dev")
    assert code == cli.EXIT_FAILED
    assert "AccessDenied" in out


def test_cli_exits_5_when_aws_refuses_to_list_resources(account):
    account.clients.autoscaling.meta.events.register(
        "before-call.autoscaling.DescribeAutoScalingGroups", aws_error("AccessDenied")
    )
    code, out, err = run_cli(account, "status", "--stage", "dev")
    assert code == cli.EXIT_AWS
    assert out.splitlines() == [
        "streamr/dev in the AWS configuration's region: no stop schedule"
    ]  # what it knows without AWS, and no table
    assert "cannot list streamr/dev resources" in err and "AccessDenied" in err


def test_cli_reads_stage_and_schedule_from_the_stack_file(account):
    """`--stack dev` uses stacks/Pulumi.dev.yaml: stage dev, 22:00-08:00 Europe/Amsterdam."""
    # 22:00 UTC is 23:00 in Amsterdam: the schedule wants the platform paused.
    code, out, _ = run_cli(account, "status", "--stack", "dev", "--json")
    assert code == cli.EXIT_OK
    items = json.loads(out)["items"]
    assert {item["action"] for item in items} == {"scale_to_zero", "stop"}
    assert account.mutating_calls() == []

    code, out, _ = run_cli(account, "status", "--stack", "dev")
    assert out.splitlines()[0] == (
        "streamr/dev in eu-west-1 (from stacks/Pulumi.dev.yaml): pauses 22:00, resumes 08:00 "
        "(Europe/Amsterdam) on every day"
    )

    code, _, err = run_cli(account, "status", "--stack", "staging")
    assert code == cli.EXIT_USAGE
    assert "--stack: no stack 'staging'; stacks: dev, prod" in err

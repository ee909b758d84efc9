"""Pause/resume against a moto account: round trip, idempotence, enforcement, failures, dry run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from ops.discovery import PAUSED_BY_OPS_TAG, SAVED_SIZES_TAG, discover
from ops.executor import Waits, run
from ops.schedule import Schedule
from tests.ops.support import DEV, aws_error

SCHEDULE = Schedule.parse("22:00", "08:00", "mon,tue,wed,thu,fri,sat,sun", "Europe/Amsterdam")
# Wednesday 2026-11-25 23:00 in Amsterdam (UTC+1): inside the nightly pause.
NIGHT = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)
FAST = Waits(rds=5, ec2=5, interval=0)


def pause(account, **options):
    return run(
        account.clients,
        DEV,
        SCHEDULE,
        NIGHT,
        operation="pause",
        requested="paused",
        waits=FAST,
        sleep=lambda _s: None,
        **options,
    )


def resume(account, **options):
    return run(
        account.clients,
        DEV,
        SCHEDULE,
        NIGHT,
        operation="resume",
        requested="running",
        waits=FAST,
        sleep=lambda _s: None,
        **options,
    )


def dev_ids(account) -> set[str]:
    return {
        account.ids["streamr-dev-headscale"],
        account.ids["streamr-dev-srs"],
        "streamr-dev-db",
        "streamr-dev-coordinator",
    }


def touched_names(account) -> list[str]:
    """Every resource id or name that appears in a mutating call."""
    candidates = {
        *account.ids.values(),
        "streamr-dev-db",
        "streamr-prod-db",
        "handmade-db",
        "streamr-dev-coordinator",
        "streamr-prod-coordinator",
    }
    return sorted(
        {
            name
            for _, _, params in account.mutating_calls()
            for name in candidates
            if name in str(params)
        }
    )


def other_states(account) -> dict[str, str]:
    return {
        "prod-headscale": account.instance_state("streamr-prod-headscale"),
        "prod-srs": account.instance_state("streamr-prod-srs"),
        "untagged": account.instance_state("untagged"),
        "prod-db": account.db_state("streamr-prod-db"),
        "handmade-db": account.db_state("handmade-db"),
        "prod-asg": str(account.asg_sizes("streamr-prod-coordinator")),
    }


def test_pause_then_resume_restores_asg_sizes_and_touches_only_this_stack(account):
    before_others = other_states(account)

    paused = pause(account)

    assert not paused.failed, paused.to_json()
    assert account.asg_sizes("streamr-dev-coordinator") == (0, 0, 0)
    assert account.asg_tags("streamr-dev-coordinator")[SAVED_SIZES_TAG] == "min=1 desired=2 max=4"
    assert account.instance_state("streamr-dev-headscale") == "stopped"
    assert account.instance_state("streamr-dev-srs") == "stopped"
    assert account.db_state("streamr-dev-db") == "stopped"
    # Pause runs ASG -> hosts -> database.
    assert [item.kind for item in paused.items] == ["asg", "ec2", "ec2", "rds"]
    assert {item.outcome for item in paused.items} == {"done"}

    resumed = resume(account)

    assert not resumed.failed, resumed.to_json()
    assert account.asg_sizes("streamr-dev-coordinator") == (1, 2, 4)
    assert SAVED_SIZES_TAG not in account.asg_tags("streamr-dev-coordinator")
    assert account.instance_state("streamr-dev-headscale") == "running"
    assert account.db_state("streamr-dev-db") == "available"
    # Resume runs database -> hosts -> ASG, and each phase ended in its target state.
    assert [item.kind for item in resumed.items] == ["rds", "ec2", "ec2", "asg"]
    assert [item.after for item in resumed.items] == ["available", "running", "running", "running"]
    operations = [name for _, name, _ in account.mutating_calls()]
    resume_calls = operations[operations.index("StartDBInstance") :]
    assert [name for name in resume_calls if name.startswith(("Start", "Update"))] == [
        "StartDBInstance",
        "StartInstances",
        "StartInstances",
        "UpdateAutoScalingGroup",
    ]
    assert touched_names(account) == sorted(dev_ids(account))
    assert other_states(account) == before_others


def test_rerunning_pause_or_resume_makes_no_mutating_call(account):
    pause(account)
    account.calls.clear()
    again = pause(account)
    assert account.mutating_calls() == []
    assert {item.outcome for item in again.items} == {"unchanged"}

    resume(account)
    account.calls.clear()
    again = resume(account)
    assert account.mutating_calls() == []
    assert {item.outcome for item in again.items} == {"unchanged"}


def test_enforcement_stops_a_database_aws_started_after_seven_days(account):
    pause(account)
    # Seven days later AWS starts the stopped database by itself.
    account.clients.rds.start_db_instance(DBInstanceIdentifier="streamr-dev-db")
    account.calls.clear()
    later = NIGHT + timedelta(days=7, hours=4)  # 04:00 Amsterdam: still paused by schedule

    unenforced = run(account.clients, DEV, SCHEDULE, later, operation="scheduled", waits=FAST)
    assert account.mutating_calls() == []
    assert {item.action for item in unenforced.items} == {"none"}

    enforced = run(
        account.clients,
        DEV,
        SCHEDULE,
        later,
        operation="enforce",
        enforced=True,
        waits=FAST,
        sleep=lambda _s: None,
    )

    assert account.db_state("streamr-dev-db") == "stopped"
    database = next(item for item in enforced.items if item.kind == "rds")
    assert (database.action, database.outcome) == ("stop", "done")
    assert "7 days" in database.reason
    assert [name for _, name, _ in account.mutating_calls()] == [
        "AddTagsToResource",
        "StopDBInstance",
    ]


def test_enforcement_in_the_day_window_resumes_everything(account):
    pause(account)
    account.calls.clear()
    morning = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)  # 11:00 Amsterdam
    result = run(
        account.clients,
        DEV,
        SCHEDULE,
        morning,
        operation="enforce",
        enforced=True,
        waits=FAST,
        sleep=lambda _s: None,
    )
    assert not result.failed
    assert account.asg_sizes("streamr-dev-coordinator") == (1, 2, 4)
    assert account.db_state("streamr-dev-db") == "available"


def test_one_failing_resource_is_reported_and_the_others_proceed(account):
    srs = account.ids["streamr-dev-srs"]
    account.clients.ec2.meta.events.register(
        "before-call.ec2.StopInstances", aws_error("UnauthorizedOperation", only_if=srs)
    )

    result = pause(account)

    assert [item.id for item in result.failed] == [srs]
    assert "UnauthorizedOperation" in result.failed[0].error
    assert account.instance_state("streamr-dev-srs") == "running"
    assert account.instance_state("streamr-dev-headscale") == "stopped"
    assert account.db_state("streamr-dev-db") == "stopped"
    assert account.asg_sizes("streamr-dev-coordinator") == (0, 0, 0)
    assert result.to_dict()["ok"] is False


def test_dry_run_makes_no_mutating_call(account):
    planned = pause(account, dry_run=True)
    assert account.mutating_calls() == []
    assert {item.outcome for item in planned.items} == {"planned"}
    assert account.asg_sizes("streamr-dev-coordinator") == (1, 2, 4)
    assert account.db_state("streamr-dev-db") == "available"

    pause(account)
    account.calls.clear()
    planned = resume(account, dry_run=True)
    assert account.mutating_calls() == []
    assert [item.action for item in planned.items] == ["start", "start", "start", "restore_sizes"]


def test_a_database_that_never_stops_in_time_fails_after_the_deadline(account):
    def stuck_in_stopping(**_kwargs):
        page = {
            "DBInstances": [
                {"DBInstanceIdentifier": "streamr-dev-db", "DBInstanceStatus": "stopping"}
            ],
            "ResponseMetadata": {},
        }
        return SimpleNamespace(status_code=200, headers={}), page

    def after_stop(**_kwargs):
        # From the stop on, every look at the database says "stopping", as a slow stop would.
        account.clients.rds.meta.events.register(
            "before-call.rds.DescribeDBInstances", stuck_in_stopping
        )

    account.clients.rds.meta.events.register("after-call.rds.StopDBInstance", after_stop)
    ticks = iter(range(0, 1000, 3))
    naps: list[float] = []

    result = run(
        account.clients,
        DEV,
        SCHEDULE,
        NIGHT,
        operation="pause",
        requested="paused",
        waits=Waits(rds=10, ec2=5, interval=2),
        sleep=naps.append,
        clock=lambda: next(ticks),
    )

    database = next(item for item in result.items if item.kind == "rds")
    assert database.outcome == "failed"
    assert database.error == "still stopping after 10s (waiting for stopped)"
    assert naps == [2, 2, 2]  # bounded: it gave up at the deadline
    assert all(item.outcome == "done" for item in result.items if item.kind != "rds")


def test_discovery_leaves_out_asg_members_untagged_and_other_stacks(account):
    resources = discover(account.clients, DEV)
    assert sorted(resource.id for resource in resources) == sorted(dev_ids(account))
    assert all(not resource.paused_by_ops for resource in resources)
    assert PAUSED_BY_OPS_TAG.startswith("streamr:")

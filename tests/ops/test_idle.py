"""Pause when idle: the pure decision, the coordinator's answer over HTTP, and the enforcement run
against the moto account with a stand-in coordinator reporting live / idle for less and more than
the threshold. (The coordinator's own endpoint is tested on real PostgreSQL in
tests/coordinator/test_activity.py, which also parses its answer with `ops.idle.Activity`.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ops.handler import ConfigError, IdleSettings, Settings, execute, lambda_handler
from ops.idle import (
    MINIMUM_IDLE_PAUSE_MINUTES,
    Activity,
    decide_idle,
    fetch_activity,
)
from tests.ops.stand_ins import DAY, OPS_TOKEN, Coordinator
from tests.ops.test_entry_points import ENV

TOKEN = OPS_TOKEN
NIGHT = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)
THRESHOLD = 30


def activity(live: int = 0, viewers: int = 0, idle_minutes: float = 0, now: datetime = DAY):
    return Activity(live, viewers, now - timedelta(minutes=idle_minutes))


@pytest.mark.parametrize(
    ("reported", "pause", "reason"),
    [
        (activity(live=1, idle_minutes=600), False, "1 stream(s) live"),
        (activity(viewers=3, idle_minutes=600), False, "3 viewer(s) connected"),
        (activity(idle_minutes=29), False, "idle for 29 min; pauses after 30 min"),
        (activity(idle_minutes=30), True, "idle for 30 min (threshold 30 min)"),
        (activity(idle_minutes=45), True, "idle for 45 min"),
        (None, False, "never pause blind"),
    ],
)
def test_decision_pauses_only_when_nothing_is_live_or_watched_for_the_threshold(
    reported, pause, reason
):
    decision = decide_idle(reported, DAY, THRESHOLD)
    assert decision.pause is pause
    assert reason in decision.reason


def test_never_faster_than_the_configured_minimum():
    below = MINIMUM_IDLE_PAUSE_MINUTES - 1
    with pytest.raises(ValueError, match=f"is {below}; allowed values: 15 to 1440"):
        decide_idle(activity(idle_minutes=600), DAY, below)


def test_fetch_reads_the_answer_and_treats_any_failure_as_no_answer(coordinator):
    coordinator.report(live=1)
    assert fetch_activity(coordinator.url, TOKEN) == Activity(1, 0, DAY)
    assert coordinator.requests[-1] == f"Bearer {TOKEN}"
    assert fetch_activity(coordinator.url, "wrong") is None
    coordinator.body = {"live_streams": "yes"}
    assert fetch_activity(coordinator.url, TOKEN) is None
    coordinator.body = {"live_streams": 0, "viewers": 0, "last_activity": "2026-11-25T12:00:00"}
    assert fetch_activity(coordinator.url, TOKEN) is None  # no timezone
    assert fetch_activity("http://127.0.0.1:1", TOKEN) is None
    with pytest.raises(ValueError, match="must start with https:// or http://"):
        fetch_activity("file:///etc/passwd", TOKEN)


def _settings(coordinator: Coordinator, env: dict[str, str] = ENV) -> Settings:
    return Settings.from_env(
        {
            **env,
            "IDLE_PAUSE_MINUTES": str(THRESHOLD),
            "COORDINATOR_URL": coordinator.url,
            "OPS_TOKEN_PARAMETER": "unused: the test passes the activity source",
        }
    )


def _enforce(account, coordinator, now=DAY, token=TOKEN):
    return execute(
        {"action": "enforce"},
        _settings(coordinator),
        account.clients,
        now,
        lambda: fetch_activity(coordinator.url, token),
    )


@pytest.mark.parametrize(
    ("live", "viewers", "idle_minutes", "why"),
    [
        (1, 0, 600, "1 stream(s) live"),
        (0, 2, 600, "2 viewer(s) connected"),
        (0, 0, THRESHOLD - 1, f"idle for {THRESHOLD - 1} min"),
    ],
)
def test_enforcement_leaves_a_live_watched_or_recently_active_platform_running(
    account, coordinator, live, viewers, idle_minutes, why
):
    coordinator.report(live, viewers, idle_minutes)
    result = _enforce(account, coordinator)
    assert result.items == []
    assert result.note is not None and why in result.note
    assert account.mutating_calls() == []
    assert account.asg_sizes("streamr-dev-coordinator") == (1, 2, 4)


def test_enforcement_pauses_a_platform_idle_for_longer_than_the_threshold(account, coordinator):
    coordinator.report(idle_minutes=THRESHOLD + 15)
    result = _enforce(account, coordinator)
    assert result.note == f"idle pause: idle for {THRESHOLD + 15} min (threshold {THRESHOLD} min)"
    assert not result.failed
    assert account.asg_sizes("streamr-dev-coordinator") == (0, 0, 0)
    assert account.instance_state("streamr-dev-srs") in ("stopping", "stopped")
    assert account.db_state("streamr-dev-db") == "stopped"
    # Only this stack: prod is untouched.
    assert account.asg_sizes("streamr-prod-coordinator") == (1, 2, 4)

    # Paused, the coordinator cannot answer; the idle check never resumes (a wake does).
    account.calls.clear()
    after = _enforce(account, coordinator, token="coordinator-is-down")
    assert after.items == [] and after.note is not None and "never pause blind" in after.note
    assert account.mutating_calls() == []
    assert account.asg_sizes("streamr-dev-coordinator") == (0, 0, 0)


def test_wrong_ops_token_or_no_answer_never_pauses(account, coordinator):
    coordinator.report(idle_minutes=600)
    result = _enforce(account, coordinator, token="not-the-ops-token")
    assert result.items == [] and account.mutating_calls() == []


@pytest.mark.parametrize(
    ("live", "viewers", "idle_minutes", "why"),
    [(1, 0, 600, "1 stream(s) live"), (0, 0, THRESHOLD - 1, f"idle for {THRESHOLD - 1} min")],
)
def test_in_the_stop_window_a_platform_woken_and_in_use_stays_running(
    account, coordinator, live, viewers, idle_minutes, why
):
    coordinator.report(live, viewers, idle_minutes, now=NIGHT)
    result = _enforce(account, coordinator, now=NIGHT)
    assert result.items == [] and result.note is not None
    assert result.note.startswith("stop window: woken and in use") and why in result.note
    assert account.mutating_calls() == []
    assert account.asg_sizes("streamr-dev-coordinator") == (1, 2, 4)


@pytest.mark.parametrize("answer", ["idle", "no answer"])
def test_in_the_stop_window_an_idle_or_silent_platform_is_paused(account, coordinator, answer):
    """Idle after a night wake: paused. No answer: paused already (the coordinator is down), and
    whatever AWS restarted by itself (a database after 7 days) is stopped again."""
    coordinator.report(idle_minutes=THRESHOLD + 15, now=NIGHT)
    token = TOKEN if answer == "idle" else "coordinator-is-down"
    result = _enforce(account, coordinator, now=NIGHT, token=token)
    assert result.note is None
    assert coordinator.requests  # asked first
    assert account.asg_sizes("streamr-dev-coordinator") == (0, 0, 0)
    assert account.db_state("streamr-dev-db") == "stopped"


def test_the_lambda_reads_the_ops_token_from_its_parameter(account, coordinator, monkeypatch):
    import boto3

    parameter = "/streamr-dev-coordinator/ops-token"
    boto3.client("ssm").put_parameter(Name=parameter, Value=TOKEN, Type="SecureString")
    without_schedule = {
        key: value for key, value in ENV.items() if key not in {"PAUSE_AT", "RESUME_AT", "WEEKDAYS"}
    }
    env = {
        **without_schedule,
        "IDLE_PAUSE_MINUTES": str(THRESHOLD),
        "COORDINATOR_URL": coordinator.url,
        "OPS_TOKEN_PARAMETER": parameter,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    now = datetime.now(UTC)
    coordinator.report(idle_minutes=5, now=now)
    kept = lambda_handler({"action": "enforce"}, None)
    assert kept["items"] == [] and "idle for 5 min" in kept["note"]
    assert coordinator.requests == [f"Bearer {TOKEN}"]
    coordinator.report(idle_minutes=THRESHOLD + 1, now=now)
    paused = lambda_handler({"action": "enforce"}, None)
    assert paused["ok"] and paused["note"].startswith("idle pause: idle for")
    assert account.asg_sizes("streamr-dev-coordinator") == (0, 0, 0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"IDLE_PAUSE_MINUTES": "5"}, "IDLE_PAUSE_MINUTES is '5'.*allowed values: 15 to 1440"),
        ({"IDLE_PAUSE_MINUTES": "soon"}, "IDLE_PAUSE_MINUTES is 'soon'"),
        ({"COORDINATOR_URL": ""}, "missing environment variable\\(s\\): COORDINATOR_URL"),
    ],
)
def test_idle_settings_errors_name_the_variable(extra, message):
    env = {
        **ENV,
        "IDLE_PAUSE_MINUTES": "30",
        "COORDINATOR_URL": "https://c.example",
        "OPS_TOKEN_PARAMETER": "/streamr-dev-coordinator/ops-token",
        **extra,
    }
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_idle_settings_are_read_from_the_environment(coordinator):
    assert _settings(coordinator).idle == IdleSettings(
        THRESHOLD, coordinator.url, "unused: the test passes the activity source"
    )

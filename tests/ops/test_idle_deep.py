"""Deep-pause when idle, end to end against moto: the pause function idle-pauses (asking the
stand-in coordinator) and records it, the wake endpoint's scheduled check dispatches the pause
workflow's deep pause to the stand-in GitHub API once the platform stayed idle-paused long
enough, and the deep wake brings it back. Live, unreachable, already deep-paused and GitHub
refusing included."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from ops.handler import IdleSettings, Settings, execute, idle_record_sink
from ops.idle import fetch_activity
from ops.idle_deep import CHECK_EVENT, IdlePauseRecord, decide_deep_pause
from ops.wake import DEEP_PAUSE_GIVE_UP, WakeRecord
from ops.wake_handler import (
    ConfigError,
    DispatchError,
    IdleDeepPause,
    WakeSettings,
    check_idle_deep_pause,
    lambda_handler,
)
from tests.ops.stand_ins import OPS_TOKEN, Coordinator, GithubStandIn
from tests.ops.support import DEV, REGION
from tests.ops.test_wake import ENV as WAKE_ENV
from tests.ops.test_wake import FAST, Endpoint, stop_pause

HOURS = 2
IDLE_RECORD = "/streamr/dev/idle-pause-record"
# Wednesday 2026-11-25 13:00 in Amsterdam; the stack in these tests has no stop schedule.
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Platform(Endpoint):
    """The pause function and the wake endpoint over the moto account, wired as the program wires
    them: the pause function writes the idle record, the endpoint's check reads it."""

    def __init__(self, account, origin, coordinator: Coordinator, github_url: str) -> None:
        super().__init__(account, origin, github_url=github_url)
        self.ssm.put_parameter(Name=IDLE_RECORD, Value="{}", Type="String")
        self.settings = replace(self.settings, idle_deep=IdleDeepPause(HOURS, IDLE_RECORD))
        self.coordinator = coordinator
        self.pause_settings = Settings(
            DEV, None, FAST, IdleSettings(30, coordinator.url, "unused", IDLE_RECORD)
        )
        self.sink = idle_record_sink(self.pause_settings.idle, boto3.Session(region_name=REGION))
        self.now = T0

    def deliver(self, payload: str) -> None:
        """The wake's resume runs the pause function's handler, which clears the idle record."""
        event = json.loads(payload)
        self.events.append(event)
        result = execute(event, self.pause_settings, self.account.clients, self.now,
                         remember_idle_pause=self.sink)  # fmt: skip
        assert not result.failed

    def enforce(self, coordinator_url: str | None = None):
        url = coordinator_url or self.coordinator.url
        return execute(
            {"action": "enforce"},
            self.pause_settings,
            self.account.clients,
            self.now,
            lambda: fetch_activity(url, OPS_TOKEN),
            self.sink,
        )

    def check(self, hours_later: float) -> dict:
        self.now = T0 + timedelta(hours=hours_later)
        return check_idle_deep_pause(self.settings, self.effects, self.now)

    def idle_record(self) -> IdlePauseRecord:
        raw = self.ssm.get_parameter(Name=IDLE_RECORD)["Parameter"]["Value"]
        return IdlePauseRecord.from_json(json.loads(raw))

    def wake_record(self) -> WakeRecord:
        raw = self.ssm.get_parameter(Name=self.settings.record_parameter)["Parameter"]["Value"]
        return WakeRecord.from_json(json.loads(raw))


def idle_pause(platform: Platform) -> None:
    platform.coordinator.report(idle_minutes=45, now=T0)
    assert platform.enforce().note.startswith("idle pause: idle for 45 min")
    assert platform.idle_record() == IdlePauseRecord(T0)


def test_idle_paused_for_less_than_the_threshold_stays_stop_paused_then_deep_pauses_once(
    account, origin, coordinator, github
):
    platform = Platform(account, origin, coordinator, github.url)
    idle_pause(platform)

    early = platform.check(hours_later=1)
    assert early == {
        "check": "idle-deep-pause",
        "dispatched": False,
        "reason": "idle-paused for 1.0 h; deep-pauses after 2 h",
    }
    assert github.requests == []

    assert platform.check(hours_later=HOURS)["dispatched"] is True
    [request] = github.requests
    assert request["path"] == "/repos/streamr/streamrp2p/actions/workflows/pause.yml/dispatches"
    assert request["body"] == {"ref": "main", "inputs": {"stack": "dev", "action": "pause"}}
    assert platform.wake_record().deep_pause_requested_at == platform.now

    # While the workflow runs: not dispatched again, and a wake is refused rather than racing it.
    later = platform.check(hours_later=HOURS + 0.25)
    assert not later["dispatched"] and "in progress" in later["reason"]
    status, body = platform.call("POST", "/wake")
    assert (status, body["status"]["state"]) == (409, "pausing")
    assert len(github.requests) == 1 and platform.events == []

    # The workflow's `pulumi up` redeploys the endpoint deep-paused: nothing more to do, and the
    # deep wake dispatches the resume.
    platform.settings = replace(platform.settings, deep_paused=True)
    assert platform.check(hours_later=HOURS + 1)["reason"] == "already deep-paused"
    status, body = platform.call("POST", "/wake")
    assert (status, body["action"]) == (202, "dispatch")
    assert [r["body"]["inputs"]["action"] for r in github.requests] == ["pause", "resume"]
    assert platform.wake_record().deep_pause_requested_at is None


@pytest.mark.parametrize(("live", "viewers"), [(1, 0), (0, 3)])
def test_a_live_or_watched_platform_is_never_deep_paused(
    account, origin, coordinator, github, live, viewers
):
    platform = Platform(account, origin, coordinator, github.url)
    coordinator.report(live=live, viewers=viewers, idle_minutes=600, now=T0)
    assert platform.enforce().items == []

    result = platform.check(hours_later=10 * HOURS)

    assert not result["dispatched"]
    assert github.requests == []
    assert account.asg_sizes("streamr-dev-coordinator") == (1, 2, 4)


def test_a_platform_whose_coordinator_cannot_be_asked_is_never_deep_paused(
    account, origin, coordinator, github
):
    platform = Platform(account, origin, coordinator, github.url)
    assert platform.enforce(coordinator_url="http://127.0.0.1:1").items == []
    # Stopped by something else (a schedule, an operator): not an idle pause either.
    platform.deliver(json.dumps({"action": "pause", "dry_run": False}))
    assert platform.call("GET", "/status")[1]["state"] == "paused"

    result = platform.check(hours_later=10 * HOURS)

    assert result["reason"] == "not idle-paused (only an idle pause leads to a deep one)"
    assert github.requests == []


def test_a_wake_after_the_idle_pause_is_not_disturbed_and_clears_it(
    account, origin, coordinator, github
):
    platform = Platform(account, origin, coordinator, github.url)
    idle_pause(platform)
    platform.now = T0 + timedelta(hours=HOURS + 1)
    assert platform.call("POST", "/wake")[1]["action"] == "resume"
    assert platform.idle_record() == IdlePauseRecord()

    # Waking (RTMP ingest not ready yet), then running: never deep-paused.
    assert platform.check(hours_later=HOURS + 1.1)["reason"] == "a wake is in progress"
    origin.open()
    assert platform.call("GET", "/status")[1]["state"] == "running"
    assert not platform.check(hours_later=HOURS + 5)["dispatched"]
    assert github.requests == []


def test_github_refusing_is_an_error_and_nothing_is_remembered(
    account, origin, coordinator, github
):
    refusing = GithubStandIn(answer=401)
    try:
        platform = Platform(account, origin, coordinator, refusing.url)
        idle_pause(platform)
        with pytest.raises(DispatchError, match="401"):
            platform.check(hours_later=HOURS + 1)
    finally:
        refusing.server.shutdown()
    assert platform.wake_record().deep_pause_requested_at is None
    assert platform.call("GET", "/status")[1]["state"] == "paused"

    # The next run (GitHub answering again) dispatches.
    platform.settings = replace(
        platform.settings,
        github=replace(platform.settings.github, api_url=github.url),
    )
    assert platform.check(hours_later=HOURS + 1.25)["dispatched"] is True
    assert len(github.requests) == 1


def test_a_dispatched_deep_pause_that_never_completes_is_given_up_and_tried_again(
    account, origin, coordinator, github
):
    platform = Platform(account, origin, coordinator, github.url)
    idle_pause(platform)
    assert platform.check(hours_later=HOURS)["dispatched"] is True
    give_up = HOURS + DEEP_PAUSE_GIVE_UP.total_seconds() / 3600
    assert not platform.check(hours_later=give_up)["dispatched"]
    assert platform.check(hours_later=give_up + 0.1)["dispatched"] is True
    assert len(github.requests) == 2


GITHUB_ENV = {
    "GITHUB_REPOSITORY": "o/r",
    "GITHUB_WORKFLOW": "pause.yml",
    "GITHUB_REF": "main",
    "GITHUB_TOKEN_PARAMETER": "/streamr-dev-wake/github-token",
}


def test_the_lambda_routes_the_schedules_event_to_the_check(account, github, monkeypatch):
    session = boto3.Session(region_name=REGION)
    ssm = session.client("ssm")
    ssm.put_parameter(Name="/streamr/dev/wake-record", Value="{}", Type="String")
    ssm.put_parameter(Name="/streamr-dev-wake/token", Value="t", Type="SecureString")
    ssm.put_parameter(Name="/streamr-dev-wake/github-token", Value="gh", Type="SecureString")
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3)
    ssm.put_parameter(
        Name=IDLE_RECORD,
        Value=json.dumps(IdlePauseRecord(three_hours_ago).to_json()),
        Type="String",
    )
    stop_pause(account)
    for key, value in {
        **WAKE_ENV,
        **GITHUB_ENV,
        "WAKE_TOKEN_PARAMETER": "/streamr-dev-wake/token",
        "RECORD_PARAMETER": "/streamr/dev/wake-record",
        "GITHUB_API_URL": github.url,
        "IDLE_DEEP_PAUSE_HOURS": str(HOURS),
        "IDLE_RECORD_PARAMETER": IDLE_RECORD,
    }.items():
        monkeypatch.setenv(key, value)

    result = lambda_handler(dict(CHECK_EVENT), None)

    assert result["dispatched"] is True
    [request] = github.requests
    assert request["path"] == "/repos/o/r/actions/workflows/pause.yml/dispatches"
    assert request["body"]["inputs"] == {"stack": "dev", "action": "pause"}
    assert request["headers"]["Authorization"] == "Bearer gh"


NOW = T0 + timedelta(hours=5)
IDLE = IdlePauseRecord(T0)


@pytest.mark.parametrize(
    ("idle", "wake", "observed", "deep", "reason"),
    [
        (IDLE, WakeRecord(), "stopped", True, "already deep-paused"),
        (IDLE, WakeRecord(), "mixed", False, "the platform is mixed, not stop-paused"),
        (IDLE, WakeRecord(), "running", False, "the platform is running, not stop-paused"),
        (IDLE, WakeRecord(), "stopping", False, "the platform is stopping, not stop-paused"),
        (IDLE, WakeRecord("waking", NOW, NOW), "starting", False, "a wake is in progress"),
        (
            IDLE,
            WakeRecord("running", T0, T0 + timedelta(hours=1), T0 + timedelta(hours=1)),
            "stopped",
            False,
            "woken since the idle pause",
        ),
        (IdlePauseRecord(), WakeRecord(), "stopped", False, "not idle-paused"),
        (IDLE, WakeRecord(), "stopped", False, "idle-paused for 5.0 h (threshold 2 h)"),
    ],
)
def test_the_decision(idle, wake, observed, deep, reason):
    decision = decide_deep_pause(idle, wake, observed, deep, NOW, HOURS)
    assert decision.dispatch == reason.startswith("idle-paused for 5.0")
    assert reason in decision.reason


@pytest.mark.parametrize("hours", [0, 169, True])
def test_hours_outside_the_allowed_range_are_refused(hours):
    with pytest.raises(ValueError, match="allowed values: whole hours from 1 to 168"):
        decide_deep_pause(IDLE, WakeRecord(), "stopped", False, NOW, hours)


def test_an_unreadable_idle_record_is_no_record():
    assert IdlePauseRecord.from_json({"paused_at": "yesterday"}) == IdlePauseRecord()
    assert IdlePauseRecord.from_json({"paused_at": "2026-11-25T12:00:00"}) == IdlePauseRecord()
    assert IdlePauseRecord.from_json({}) == IdlePauseRecord()


def test_settings_read_the_idle_deep_pause_from_the_environment():
    env = {**WAKE_ENV, **GITHUB_ENV, "IDLE_DEEP_PAUSE_HOURS": "6", "IDLE_RECORD_PARAMETER": "/p"}
    assert WakeSettings.from_env(env).idle_deep == IdleDeepPause(6, "/p")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"IDLE_DEEP_PAUSE_HOURS": "6"}, "IDLE_RECORD_PARAMETER, GITHUB_REPOSITORY"),
        (
            {**GITHUB_ENV, "IDLE_DEEP_PAUSE_HOURS": "0", "IDLE_RECORD_PARAMETER": "/p"},
            "IDLE_DEEP_PAUSE_HOURS is '0': idle deep pause hours is 0; allowed values",
        ),
        (
            {**GITHUB_ENV, "IDLE_DEEP_PAUSE_HOURS": "two", "IDLE_RECORD_PARAMETER": "/p"},
            "IDLE_DEEP_PAUSE_HOURS is 'two'",
        ),
    ],
)
def test_settings_errors_name_the_variable(change, message):
    with pytest.raises(ConfigError) as raised:
        WakeSettings.from_env({**WAKE_ENV, **change})
    assert message in str(raised.value)

"""Lambda entry point: `{"action": "pause"|"resume"|"enforce", "dry_run": bool}`.

Configuration comes from the environment the component sets: PROJECT, STAGE, TIMEZONE, the
schedule's PAUSE_AT, RESUME_AT and WEEKDAYS (comma-separated; all three or none: a deep pause has no
schedule, so it can pause but not enforce), optionally RDS_WAIT_SECONDS / EC2_WAIT_SECONDS, and for
the idle pause IDLE_PAUSE_MINUTES, COORDINATOR_URL and OPS_TOKEN_PARAMETER (all three or none),
and IDLE_RECORD_PARAMETER when an idle deep pause (ops/idle_deep.py) reads when it idle-paused.

With an idle pause, `enforce` asks the coordinator for its activity. Outside the schedule's stop
window (or always, without a schedule) it pauses when `ops.idle.decide_idle` says so. Inside the
window it re-applies the pause unless the coordinator answers that the platform is in use: a
platform woken on demand at night stays up while it is used and is paused once idle; a paused
platform cannot answer, so what AWS restarted by itself is stopped again. It never resumes: a wake
or the schedule's resume event does. With IDLE_RECORD_PARAMETER, an idle pause writes its time
there and a resume clears it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3

from ops.discovery import Clients, StackTags
from ops.executor import RunResult, Waits, run
from ops.idle import Activity, decide_idle, fetch_activity, validate_minutes
from ops.idle_deep import IdlePauseRecord
from ops.schedule import Schedule, Target
from ops.secure_parameter import read_secure

ACTIONS: dict[str, tuple[Target | None, bool]] = {
    "pause": ("paused", False),
    "resume": ("running", False),
    "enforce": (None, True),
}


class ConfigError(ValueError):
    """A required setting is missing or invalid; the message names it."""


@dataclass(frozen=True)
class IdleSettings:
    """Pause after `minutes` without activity, as the coordinator at `coordinator_url` reports it
    to the ops token kept in the SecureString parameter `token_parameter`."""

    minutes: int
    coordinator_url: str
    token_parameter: str
    # Where to keep when it idle-paused, for the idle deep pause (None: nobody reads it).
    record_parameter: str | None = None


@dataclass(frozen=True)
class Settings:
    stack: StackTags
    schedule: Schedule | None
    waits: Waits
    idle: IdleSettings | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        required = ["PROJECT", "STAGE", "TIMEZONE"]
        schedule_keys = ("PAUSE_AT", "RESUME_AT", "WEEKDAYS")
        idle_keys = ("IDLE_PAUSE_MINUTES", "COORDINATOR_URL", "OPS_TOKEN_PARAMETER")
        if any(env.get(key) for key in schedule_keys):
            required += schedule_keys
        if any(env.get(key) for key in idle_keys):
            required += idle_keys
        missing = [key for key in required if not env.get(key)]
        if missing:
            raise ConfigError(f"missing environment variable(s): {', '.join(missing)}")
        schedule = None
        if "PAUSE_AT" in required:
            schedule = Schedule.parse(
                env["PAUSE_AT"], env["RESUME_AT"], env["WEEKDAYS"], env["TIMEZONE"]
            )
        waits = Waits(
            rds=_seconds(env, "RDS_WAIT_SECONDS", Waits.rds),
            ec2=_seconds(env, "EC2_WAIT_SECONDS", Waits.ec2),
        )
        idle = None
        if "IDLE_PAUSE_MINUTES" in required:
            idle = IdleSettings(
                _minutes(env["IDLE_PAUSE_MINUTES"]),
                env["COORDINATOR_URL"],
                env["OPS_TOKEN_PARAMETER"],
                env.get("IDLE_RECORD_PARAMETER") or None,
            )
        return cls(StackTags(env["PROJECT"], env["STAGE"]), schedule, waits, idle)


def _minutes(raw: str) -> int:
    try:
        return validate_minutes(int(raw))
    except ValueError as error:
        raise ConfigError(f"IDLE_PAUSE_MINUTES is {raw!r}: {error}") from error


def _seconds(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as error:
        raise ConfigError(f"{key} is {raw!r}; expected a number of seconds > 0") from error
    if value <= 0:
        raise ConfigError(f"{key} is {raw!r}; expected a number of seconds > 0")
    return value


ActivitySource = Callable[[], Activity | None]
IdleRecordSink = Callable[[IdlePauseRecord], None]


def execute(
    event: Mapping[str, Any],
    settings: Settings,
    clients: Clients,
    now: datetime,
    activity: ActivitySource = lambda: None,
    remember_idle_pause: IdleRecordSink = lambda _record: None,
) -> RunResult:
    """Validate the event and run it; the Lambda and the tests share this path. A completed idle
    pause is remembered with its time, a completed resume clears it."""
    action = event.get("action")
    if action not in ACTIONS:
        raise ConfigError(f"event action is {action!r}; allowed values: {', '.join(ACTIONS)}")
    dry_run = event.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise ConfigError(f"event dry_run is {dry_run!r}; allowed values: true, false")
    requested, enforced = ACTIONS[action]
    if enforced and settings.schedule is None and settings.idle is None:
        raise ConfigError(
            "event action 'enforce' needs a schedule (PAUSE_AT, RESUME_AT, WEEKDAYS) or an idle "
            "pause (IDLE_PAUSE_MINUTES, ...); without either the allowed actions are: pause, resume"
        )
    note = None
    if enforced and settings.idle is not None:
        schedule = settings.schedule
        report = activity()
        decision = decide_idle(report, now, settings.idle.minutes)
        if schedule is None or schedule.target_at(now) == "running":
            if not decision.pause:
                return _left_running(
                    action, settings, dry_run, now, f"idle pause: not now ({decision.reason})"
                )
            requested, enforced, note = "paused", False, f"idle pause: {decision.reason}"
        elif report is not None and not decision.pause:
            return _left_running(
                action, settings, dry_run, now, f"stop window: woken and in use ({decision.reason})"
            )
    result = run(
        clients,
        settings.stack,
        settings.schedule,
        now,
        operation=action,
        requested=requested,
        enforced=enforced,
        dry_run=dry_run,
        waits=settings.waits,
        progress=lambda message: print(json.dumps({"progress": message})),
    )
    result.note = note
    if not dry_run and not result.failed:
        if note is not None:
            remember_idle_pause(IdlePauseRecord(now))
        elif action == "resume":
            remember_idle_pause(IdlePauseRecord())
    return result


def _left_running(
    action: str, settings: Settings, dry_run: bool, now: datetime, why: str
) -> RunResult:
    result = RunResult(
        action, settings.stack.project, settings.stack.stage, dry_run, now.isoformat()
    )
    result.note = why
    return result


def coordinator_activity(idle: IdleSettings | None, session: Any) -> ActivitySource:
    """Ask the coordinator with the ops token read from its parameter at each run (it may change).
    No idle pause configured: nothing to ask."""
    if idle is None:
        return lambda: None

    def ask() -> Activity | None:
        token = read_secure(session.client("ssm"), idle.token_parameter)
        return fetch_activity(idle.coordinator_url, token)

    return ask


def idle_record_sink(idle: IdleSettings | None, session: Any) -> IdleRecordSink:
    """Write the record to its SSM parameter; no parameter configured: nothing to keep."""
    if idle is None or idle.record_parameter is None:
        return lambda _record: None
    parameter = idle.record_parameter

    def write(record: IdlePauseRecord) -> None:
        session.client("ssm").put_parameter(
            Name=parameter, Value=json.dumps(record.to_json()), Type="String", Overwrite=True
        )

    return write


def lambda_handler(event: Mapping[str, Any], _context: Any) -> dict[str, Any]:
    """Return the structured result; raise when a resource failed so Lambda retries and alarms."""
    settings = Settings.from_env(os.environ)
    session = boto3.Session()
    result = execute(
        event,
        settings,
        Clients.from_session(session),
        datetime.now(UTC),
        coordinator_activity(settings.idle, session),
        idle_record_sink(settings.idle, session),
    )
    print(result.to_json())
    if result.failed:
        names = ", ".join(item.id for item in result.failed)
        raise RuntimeError(f"{len(result.failed)} resource(s) failed: {names}")
    return result.to_dict()

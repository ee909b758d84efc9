"""Lambda entry point: `{"action": "pause"|"resume"|"enforce", "dry_run": bool}`.

Configuration comes from the environment the component sets: PROJECT, STAGE, TIMEZONE, the
schedule's PAUSE_AT, RESUME_AT and WEEKDAYS (comma-separated; all three or none: a deep pause has no
schedule, so it can pause but not enforce), and optionally RDS_WAIT_SECONDS / EC2_WAIT_SECONDS.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3

from ops.discovery import Clients, StackTags
from ops.executor import RunResult, Waits, run
from ops.schedule import Schedule, Target

ACTIONS: dict[str, tuple[Target | None, bool]] = {
    "pause": ("paused", False),
    "resume": ("running", False),
    "enforce": (None, True),
}


class ConfigError(ValueError):
    """A required setting is missing or invalid; the message names it."""


@dataclass(frozen=True)
class Settings:
    stack: StackTags
    schedule: Schedule | None
    waits: Waits

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        required = ["PROJECT", "STAGE", "TIMEZONE"]
        schedule_keys = ("PAUSE_AT", "RESUME_AT", "WEEKDAYS")
        if any(env.get(key) for key in schedule_keys):
            required += schedule_keys
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
        return cls(StackTags(env["PROJECT"], env["STAGE"]), schedule, waits)


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


def execute(
    event: Mapping[str, Any], settings: Settings, clients: Clients, now: datetime
) -> RunResult:
    """Validate the event and run it; the Lambda and the tests share this path."""
    action = event.get("action")
    if action not in ACTIONS:
        raise ConfigError(f"event action is {action!r}; allowed values: {', '.join(ACTIONS)}")
    dry_run = event.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise ConfigError(f"event dry_run is {dry_run!r}; allowed values: true, false")
    requested, enforced = ACTIONS[action]
    if enforced and settings.schedule is None:
        raise ConfigError(
            "event action 'enforce' needs a schedule (PAUSE_AT, RESUME_AT, WEEKDAYS); "
            "without one the allowed actions are: pause, resume"
        )
    return run(
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


def lambda_handler(event: Mapping[str, Any], _context: Any) -> dict[str, Any]:
    """Return the structured result; raise when a resource failed so Lambda retries and alarms."""
    settings = Settings.from_env(os.environ)
    result = execute(event, settings, Clients.from_session(boto3.Session()), datetime.now(UTC))
    print(result.to_json())
    if result.failed:
        names = ", ".join(item.id for item in result.failed)
        raise RuntimeError(f"{len(result.failed)} resource(s) failed: {names}")
    return result.to_dict()

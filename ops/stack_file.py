"""A stack's config file (`stacks/Pulumi.<stack>.yaml`) as the strings the Pulumi CLI would hand the
program, and the stop schedule it sets.

For the operator's tools (the CLI's `--stack`, the cost report, the offline harness); the Lambda
gets its settings from its environment and never imports this module (it needs PyYAML).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ops.schedule import Schedule

ROOT = Path(__file__).resolve().parent.parent
STACKS = ROOT / "stacks"
NAMESPACE = "streamr"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class StackFileError(LookupError):
    """No such stack, or a value a program run cannot be given; the message says which."""


def known_stacks() -> list[str]:
    return sorted(path.name.split(".")[1] for path in STACKS.glob("Pulumi.*.yaml"))


def stack_config(stack: str, overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The config map the Pulumi CLI would hand the program for `stack`, plus overrides.

    Override keys are full (`aws:region`) or bare (`natStrategy`, meaning `streamr:natStrategy`);
    a value of None removes the key, so a test can exercise a default.
    """
    import yaml

    path = STACKS / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise StackFileError(f"no stack {stack!r}; stacks: {', '.join(known_stacks())}")
    document = yaml.safe_load(path.read_text()) or {}
    values: dict[str, Any] = dict(document.get("config") or {})
    for key, value in (overrides or {}).items():
        full_key = key if ":" in key else f"{NAMESPACE}:{key}"
        if value is None:
            values.pop(full_key, None)
        else:
            values[full_key] = value
    return {key: _as_cli_string(key, value) for key, value in values.items()}


def _as_cli_string(key: str, value: Any) -> str:
    """Pulumi hands config to a program as strings, structured values as JSON."""
    if isinstance(value, dict) and "secure" in value:
        raise StackFileError(
            f"{key} is an encrypted secret the harness cannot decrypt; pass it in overrides"
        )
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def schedule_of(config: Mapping[str, str]) -> Schedule | None:
    """The stop schedule from the stack's config strings, when the stack has one."""
    pause_at, resume_at = config.get(f"{NAMESPACE}:pauseAt"), config.get(f"{NAMESPACE}:resumeAt")
    if not (pause_at and resume_at):
        return None
    weekdays = json.loads(config.get(f"{NAMESPACE}:pauseWeekdays", "null")) or list(WEEKDAYS)
    timezone = config.get(f"{NAMESPACE}:timezone", "UTC")
    return Schedule.parse(pause_at, resume_at, ",".join(weekdays), timezone)

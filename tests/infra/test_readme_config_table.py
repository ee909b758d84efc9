"""The README's stack-config table says what `stack_config/` does: every key the program reads is
listed, each stage's default is the one the parser applies, and each numeric range and short list
of choices is the one it enforces. The table is hand-written prose; this keeps it from drifting."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import time
from pathlib import Path
from typing import Any

import pytest

import stack_config
from stack_config import StackConfig, StackConfigError

README = Path(__file__).resolve().parents[2] / "README.md"
REGION = "eu-west-1"
# With a schedule, so the weekdays and timezone defaults are visible in every stage.
SCHEDULED = {"pauseAt": "01:00", "resumeAt": "02:00"}

GETTERS: dict[str, Callable[[StackConfig], Any]] = {
    "stage": lambda c: c.stage,
    "vpcCidr": lambda c: c.network.vpc_cidr,
    "azCount": lambda c: c.network.az_count,
    "natStrategy": lambda c: c.network.nat_strategy,
    "flowLogs": lambda c: c.network.flow_logs,
    "natInstanceType": lambda c: c.instance_types.nat,
    "coordinatorInstanceType": lambda c: c.instance_types.coordinator,
    "headscaleInstanceType": lambda c: c.instance_types.headscale,
    "srsInstanceType": lambda c: c.instance_types.srs,
    "dbInstanceClass": lambda c: c.database.instance_class,
    "dbAllocatedStorageGb": lambda c: c.database.allocated_storage_gb,
    "dbEngineVersion": lambda c: c.database.engine_version,
    "dbBackupRetentionDays": lambda c: c.database.backup_retention_days,
    "dbMultiAz": lambda c: c.database.multi_az,
    "dbDeletionProtection": lambda c: c.database.deletion_protection,
    "dbFinalSnapshot": lambda c: c.database.final_snapshot,
    "dbPerformanceInsights": lambda c: c.database.performance_insights,
    "cacheEngine": lambda c: c.cache.engine,
    "cacheNodeType": lambda c: c.cache.node_type,
    "cacheNodes": lambda c: c.cache.nodes,
    "domain": lambda c: c.domain,
    "alertEmail": lambda c: c.alert_email,
    "acmeEmail": lambda c: c.acme_email,
    "hostedZoneId": lambda c: c.coordinator.hosted_zone_id,
    "paused": lambda c: c.paused,
    "pauseAt": lambda c: c.pause_schedule and c.pause_schedule.pause_at,
    "resumeAt": lambda c: c.pause_schedule and c.pause_schedule.resume_at,
    "pauseWeekdays": lambda c: c.pause_schedule.weekdays,
    "timezone": lambda c: c.pause_schedule.timezone,
    "monthlyBudgetUsd": lambda c: c.monthly_budget_usd,
    "idlePauseMinutes": lambda c: c.idle_pause_minutes,
    "idleDeepPauseHours": lambda c: c.idle_deep_pause_hours,
    "wakeEndpoint": lambda c: c.wake_endpoint,
    "coordinatorMinSize": lambda c: c.coordinator.min_size,
    "coordinatorDesiredCapacity": lambda c: c.coordinator.desired_capacity,
    "coordinatorMaxSize": lambda c: c.coordinator.max_size,
    "coordinatorWebConcurrency": lambda c: c.coordinator.web_concurrency,
    "certificateArn": lambda c: c.coordinator.certificate_arn,
    "githubRepository": lambda c: c.github and c.github.repository,
    "githubOidcProviderArn": lambda c: c.github and c.github.provider_arn,
    "stateBucket": lambda c: c.github and c.github.state_bucket,
    "secretsKeyArn": lambda c: c.github and c.github.secrets_key_arn,
}
NEEDS_SCHEDULE = {"pauseWeekdays", "timezone"}
# What a stage requires (the README says "required"): prod's domain and its zone, given as the
# offline harness gives them, documentation names declared as such.
REQUIRED = {
    "dev": {},
    "prod": {"domain": "stream.example.org", "hostedZoneId": "Z0DOCUMENTATION0EXAMPLE"},
}


def parsed(stage: str, **values: Any) -> StackConfig:
    return StackConfig.from_mapping(
        {"stage": stage, **REQUIRED[stage], **values},
        REGION,
        documentation_keys=frozenset({"domain"}),
    )


def table() -> dict[str, dict[str, str]]:
    """key -> {"dev", "prod", "allowed"} from the README's table, one entry per key of a row."""
    section = README.read_text().split("### Stack config", 1)[1].split("\n\n", 2)[1]
    rows: dict[str, dict[str, str]] = {}
    for line in section.splitlines()[2:]:  # past the header and its rule
        keys_cell, dev, prod, allowed = (cell.strip() for cell in line.strip("|").split("|"))
        keys = re.findall(r"`([^`]+)`", keys_cell)
        for index, key in enumerate(keys):
            rows[key] = {
                "dev": _cell_value(dev, index, len(keys)),
                "prod": _cell_value(prod, index, len(keys)),
                "allowed": allowed.replace("`", ""),
            }
    return rows


def _cell_value(cell: str, index: int, count: int) -> str:
    """A row of several keys gives one value for all, or `a / b / c` in key order."""
    cell = re.sub(r"\s*\(.*\)$", "", cell.replace("`", "")).strip()
    parts = [part.strip() for part in cell.split(" / ")]
    if len(parts) == 1:
        return parts[0]
    assert len(parts) == count, f"{cell!r}: one value per key expected"
    return parts[index]


def as_readme_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if value == stack_config.WEEKDAYS:
        return "every day"
    return str(value)


def test_every_key_the_program_reads_is_in_the_table_and_nothing_else() -> None:
    documented = set(table()) - {"aws:region"}
    assert documented == set(stack_config.KEYS)
    assert set(GETTERS) == set(stack_config.KEYS)


@pytest.mark.parametrize("stage", stack_config.STAGES)
def test_the_defaults_in_the_table_are_the_parsers(stage: str) -> None:
    plain = parsed(stage)
    scheduled = parsed(stage, **SCHEDULED)
    wrong = {}
    for key, row in table().items():
        if row[stage] == "required":
            continue
        config = scheduled if key in NEEDS_SCHEDULE else plain
        actual = as_readme_text(GETTERS[key](config))
        if actual != row[stage]:
            wrong[key] = f"README says {row[stage]!r}, the parser uses {actual!r}"
    assert wrong == {}


def _enforced(stage: str, key: str) -> str:
    """What the parser says is allowed for `key`, from its own error for a bad value."""
    with pytest.raises(StackConfigError) as error:
        parsed(stage, **{**SCHEDULED, key: "@not-a-value@"})
    problem = next(p for p in error.value.problems if p.startswith(f"streamr:{key}:"))
    allowed = problem.split("allowed values: ", 1)[1]
    number_range = re.fullmatch(r"a number from (\S+) to (\S+)", allowed)
    return f"{number_range[1]}..{number_range[2]}" if number_range else allowed


@pytest.mark.parametrize("stage", stack_config.STAGES)
def test_the_ranges_and_short_choices_in_the_table_are_enforced(stage: str) -> None:
    wrong = {}
    for key, row in table().items():
        if key in ("stage", "aws:region"):
            continue
        allowed = _enforced(stage, key)
        is_range = re.fullmatch(r"\d+\.\.\d+", allowed)
        is_short_choice = re.fullmatch(r"[a-z]+(, [a-z]+){1,3}", allowed)
        if (is_range or is_short_choice) and allowed not in row["allowed"]:
            if allowed == "true, false" and row["allowed"].startswith("bool"):
                continue
            wrong[key] = f"README allows {row['allowed']!r}, the parser {allowed!r}"
    assert wrong == {}

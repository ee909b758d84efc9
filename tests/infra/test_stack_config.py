"""The typed stack config: stage defaults, coercion of Pulumi's string values, and errors that name
the key and the allowed values."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest
import yaml

from offline.harness import ROOT, ProgramFailed, run_program
from stack_config import PROD_MIN_BACKUP_DAYS, StackConfig, StackConfigError


def load(region: str | None = "eu-west-1", **values: Any) -> StackConfig:
    return StackConfig.from_mapping(values, region=region)


def problem(region: str | None = "eu-west-1", **values: Any) -> str:
    with pytest.raises(StackConfigError) as error:
        load(region, **values)
    return str(error.value)


def test_dev_defaults_are_the_cheapest_platform() -> None:
    config = load(stage="dev")
    assert config.network.nat_strategy == "instance"
    assert config.network.az_count == 2
    assert config.network.flow_logs is False
    assert config.instance_types.nat == "t4g.nano"
    assert config.database.instance_class == "db.t4g.micro"
    assert config.database.multi_az is False
    assert config.database.deletion_protection is False
    assert config.database.final_snapshot is False
    assert config.database.backup_retention_days == 1
    assert config.cache.engine == "valkey"
    assert config.cache.nodes == 1
    assert config.pause_schedule is not None  # dev sleeps at night by default


def test_prod_defaults_harden_the_data_and_the_network() -> None:
    config = load(stage="prod")
    assert config.database.multi_az is True
    assert config.database.deletion_protection is True
    assert config.database.final_snapshot is True
    assert config.database.backup_retention_days >= PROD_MIN_BACKUP_DAYS
    assert config.network.flow_logs is True
    assert config.network.nat_strategy == "gateway"
    assert config.cache.nodes == 2
    assert config.pause_schedule is None  # prod runs around the clock unless told otherwise


def test_tags_and_prefix_follow_the_stage() -> None:
    config = load(stage="prod")
    assert config.tags == {"Project": "streamr", "Stage": "prod", "ManagedBy": "pulumi"}
    assert config.prefix == "streamr-prod"


def test_pulumi_string_values_are_coerced() -> None:
    """The Pulumi CLI hands a program strings; structured values arrive as JSON."""
    config = load(
        stage="dev",
        azCount="3",
        dbMultiAz="true",
        paused="false",
        monthlyBudgetUsd="55.5",
        pauseWeekdays='["fri", "mon"]',
        pauseAt="21:30",
        resumeAt="06:45",
        timezone="America/New_York",
    )
    assert config.network.az_count == 3
    assert config.database.multi_az is True
    assert config.paused is False
    assert config.monthly_budget_usd == 55.5
    assert config.pause_schedule is not None
    assert config.pause_schedule.weekdays == ("mon", "fri")
    assert config.pause_schedule.pause_at == time(21, 30)
    assert config.pause_schedule.resume_at == time(6, 45)
    assert config.pause_schedule.timezone == "America/New_York"


def test_comma_separated_weekdays_are_accepted() -> None:
    config = load(stage="dev", pauseWeekdays="sat, sun")
    assert config.pause_schedule is not None
    assert config.pause_schedule.weekdays == ("sat", "sun")


@pytest.mark.parametrize(
    ("values", "key", "allowed"),
    [
        ({"stage": "staging"}, "streamr:stage", "dev, prod"),
        ({"stage": "dev", "natStrategy": "nat"}, "streamr:natStrategy", "none, instance, gateway"),
        ({"stage": "dev", "azCount": 4}, "streamr:azCount", "2..3"),
        ({"stage": "dev", "azCount": "two"}, "streamr:azCount", "2..3"),
        (
            {"stage": "dev", "dbInstanceClass": "db.r7g.large"},
            "streamr:dbInstanceClass",
            "db.t4g.micro",
        ),
        (
            {"stage": "prod", "dbInstanceClass": "db.t4g.micro"},
            "streamr:dbInstanceClass",
            "db.t4g.small",
        ),
        (
            {"stage": "dev", "coordinatorInstanceType": "t3.micro"},
            "streamr:coordinatorInstanceType",
            "t4g.nano",
        ),
        ({"stage": "dev", "srsInstanceType": "c7g.large"}, "streamr:srsInstanceType", "t4g.medium"),
        (
            {"stage": "dev", "cacheNodeType": "cache.r7g.large"},
            "streamr:cacheNodeType",
            "cache.t4g.micro",
        ),
        ({"stage": "dev", "cacheEngine": "memcached"}, "streamr:cacheEngine", "valkey, redis"),
        ({"stage": "dev", "cacheNodes": 0}, "streamr:cacheNodes", "1..3"),
        ({"stage": "dev", "dbAllocatedStorageGb": 10}, "streamr:dbAllocatedStorageGb", "20..1024"),
        (
            {"stage": "dev", "dbEngineVersion": "15.4"},
            "streamr:dbEngineVersion",
            "PostgreSQL 16, 17",
        ),
        ({"stage": "prod", "dbBackupRetentionDays": 7}, "streamr:dbBackupRetentionDays", "14..35"),
        ({"stage": "dev", "dbMultiAz": "yes"}, "streamr:dbMultiAz", "true, false"),
        ({"stage": "dev", "paused": 1}, "streamr:paused", "true, false"),
        ({"stage": "dev", "vpcCidr": "8.8.0.0/16"}, "streamr:vpcCidr", "RFC 1918"),
        ({"stage": "dev", "vpcCidr": "10.0.0.0/24"}, "streamr:vpcCidr", "/16 to /18"),
        ({"stage": "dev", "domain": "Not A Domain"}, "streamr:domain", "DNS name"),
        ({"stage": "dev", "alertEmail": "ops-at-example"}, "streamr:alertEmail", "e-mail"),
        ({"stage": "dev", "pauseAt": "25:00"}, "streamr:pauseAt", "HH:MM"),
        (
            {"stage": "dev", "resumeAt": "23:00", "pauseAt": "23:00"},
            "streamr:resumeAt",
            "other than",
        ),
        ({"stage": "dev", "pauseWeekdays": ["mon", "funday"]}, "streamr:pauseWeekdays", "mon, tue"),
        (
            {"stage": "dev", "pauseWeekdays": ["mon", "mon"]},
            "streamr:pauseWeekdays",
            "without repeats",
        ),
        ({"stage": "dev", "pauseWeekdays": []}, "streamr:pauseWeekdays", "non-empty"),
        ({"stage": "dev", "timezone": "Mars/Olympus"}, "streamr:timezone", "IANA timezone"),
        ({"stage": "dev", "monthlyBudgetUsd": -5}, "streamr:monthlyBudgetUsd", "a number from 1"),
    ],
)
def test_a_bad_value_names_its_key_and_the_allowed_values(
    values: dict[str, Any], key: str, allowed: str
) -> None:
    message = problem(**values)
    assert message.startswith(key), message
    assert "allowed values:" in message
    assert allowed in message


def test_a_missing_stage_is_required() -> None:
    message = problem()
    assert message == "streamr:stage is required; allowed values: dev, prod"


def test_a_bad_region_names_aws_region_and_the_allowed_list() -> None:
    message = problem(region="eu-west-9", stage="dev")
    assert message.startswith("aws:region: 'eu-west-9' is not allowed; allowed values: ")
    assert "eu-west-1" in message


def test_a_missing_region_is_required() -> None:
    assert problem(region=None, stage="dev").startswith("aws:region is required")


def test_half_a_pause_schedule_names_the_missing_key() -> None:
    message = problem(stage="prod", pauseAt="22:00")
    assert message.startswith("streamr:resumeAt is required")


def test_an_unknown_key_suggests_the_closest_known_one() -> None:
    message = problem(stage="dev", natStrategey="gateway")
    assert message.startswith("streamr:natStrategey is not a known config key")
    assert "did you mean streamr:natStrategy?" in message


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(StackConfigError) as error:
        load(stage="dev", natStrategy="nat", azCount=9, cacheEngine="memcached")
    assert [p.split(":")[1] for p in error.value.problems] == [
        "azCount",
        "natStrategy",
        "cacheEngine",
    ]
    assert str(error.value).startswith("3 problems in the stack configuration:")


def test_a_deep_pause_drops_what_bills_by_the_hour() -> None:
    paused = load(stage="prod", paused=True)
    assert paused.effective_nat_strategy == "none"
    assert paused.cache_enabled is False
    # With the coordinator at zero nothing needs NAT: even a NAT instance's disk is saved.
    assert load(stage="dev", paused=True, natStrategy="instance").effective_nat_strategy == "none"
    running = load(stage="prod")
    assert running.effective_nat_strategy == "gateway"
    assert running.cache_enabled is True


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_stack_files_hold_only_known_valid_keys(stack: str) -> None:
    document = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    values = {
        key.split(":", 1)[1]: value
        for key, value in document["config"].items()
        if key.startswith("streamr:")
    }
    config = StackConfig.from_mapping(values, region=document["config"]["aws:region"])
    assert config.stage == stack
    assert config.region == "eu-west-1"


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"stage": "qa"}, "streamr:stage"),
        ({"aws:region": "moon-1"}, "aws:region"),
        ({"natStrategy": "nat"}, "streamr:natStrategy"),
        ({"dbInstanceClass": "db.x2g.16xlarge"}, "streamr:dbInstanceClass"),
        ({"natStrategey": "gateway"}, "streamr:natStrategey"),
    ],
)
def test_the_program_fails_on_bad_config_before_any_resource_registers(
    overrides: dict[str, str], key: str, preview: bool
) -> None:
    with pytest.raises(ProgramFailed) as failure:
        run_program("dev", overrides, preview=preview)
    assert isinstance(failure.value.__cause__, StackConfigError)
    assert str(failure.value).startswith(key)
    assert failure.value.resources == []

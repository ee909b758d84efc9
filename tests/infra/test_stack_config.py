"""The typed stack config: stage defaults, coercion of Pulumi's string values, and errors that name
the key and the allowed values."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest
import yaml

import stack_config
from offline.harness import ROOT, ProgramFailed, run_program
from stack_config import PROD_MIN_BACKUP_DAYS, StackConfig, StackConfigError

# What prod requires of its operator, as the offline harness fills it in: a documentation name,
# accepted only because it is declared as one (the operator's own values never are).
PROD_OPERATOR = {"domain": "stream.example.org", "hostedZoneId": "Z0DOCUMENTATION0EXAMPLE"}


def load(region: str | None = "eu-west-1", **values: Any) -> StackConfig:
    if values.get("stage") == "prod" and "domain" not in values:
        values = {**PROD_OPERATOR, **values}
        return StackConfig.from_mapping(values, region, documentation_keys=frozenset({"domain"}))
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
        ({"stage": "dev", "acmeEmail": "acme@x"}, "streamr:acmeEmail", "e-mail"),
        ({"stage": "dev", "domain": "stream.example.com"}, "streamr:domain", "RFC 2606"),
        ({"stage": "dev", "alertEmail": "ops@example.com"}, "streamr:alertEmail", "RFC 2606"),
        ({"stage": "dev", "acmeEmail": "ops@EXAMPLE.NET"}, "streamr:acmeEmail", "RFC 2606"),
        ({"stage": "dev", "hostedZoneId": "zone-1"}, "streamr:hostedZoneId", "Route 53"),
        ({"stage": "dev", "hostedZoneId": "Z123"}, "streamr:hostedZoneId", "set both or neither"),
        (
            {"stage": "prod", "domain": "stream.streamr.dev"},
            "prod serves HTTPS only",
            "the Route 53 zone of stream.streamr.dev, or an ACM certificate for it",
        ),
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
        # Never faster than the configured minimum.
        ({"stage": "dev", "idlePauseMinutes": 5}, "streamr:idlePauseMinutes", "15..1440"),
        ({"stage": "prod", "idlePauseMinutes": "soon"}, "streamr:idlePauseMinutes", "15..1440"),
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


def test_reserved_names_are_refused_whatever_their_case_or_depth() -> None:
    """Issue 18, finding 8: Let's Encrypt refuses example.com contacts, so the mesh would never
    get a certificate; RFC 2606's names are refused wherever a domain or e-mail goes."""
    for name in (
        "example.com",
        "a.b.example.org",
        "Example.Net",
        "x.example",
        "box.test",
        "y.invalid",
        "localhost",
    ):
        assert stack_config.reserved_name(name), name
    for name in (
        "example.co",
        "notexample.com",
        "example.com.au",
        "stream.streamr.dev",
        "testing.io",
    ):
        assert not stack_config.reserved_name(name), name


def test_the_acme_contact_is_not_the_alert_address() -> None:
    config = load(stage="dev", alertEmail="alarms@ops.streamr.dev")
    assert (config.alert_email, config.acme_email) == ("alarms@ops.streamr.dev", None)
    both = load(stage="dev", alertEmail="alarms@ops.streamr.dev", acmeEmail="tls@streamr.dev")
    assert both.acme_email == "tls@streamr.dev"


def test_prod_requires_a_domain_and_https() -> None:
    """Finding 9: no sslip.io in prod; a domain, and a zone or certificate for HTTPS."""
    with pytest.raises(StackConfigError) as error:
        StackConfig.from_mapping({"stage": "prod"}, "eu-west-1")
    (problem,) = error.value.problems
    assert problem.startswith("streamr:domain is required in prod")
    assert "sslip.io" in problem and "RFC 2606" in problem
    config = load(stage="prod")
    assert config.domain == "stream.example.org" and config.coordinator.https
    certificate = (
        "arn:aws:acm:eu-west-1:123456789012:certificate/0b1c2d3e-0000-4000-8000-123456789abc"
    )
    with pytest.raises(StackConfigError) as error:
        load(stage="prod", certificateArn=certificate)
    assert "set one of them" in str(error.value)
    # Only the keys declared as documentation values may hold such names.
    with pytest.raises(StackConfigError):
        StackConfig.from_mapping(
            {**PROD_OPERATOR, "stage": "prod", "alertEmail": "ops@example.org"},
            "eu-west-1",
            documentation_keys=frozenset({"domain"}),
        )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_stack_files_hold_only_known_valid_keys(stack: str) -> None:
    document = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    values = {
        key.split(":", 1)[1]: value
        for key, value in document["config"].items()
        if key.startswith("streamr:")
    }
    if stack == "prod":  # the operator's domain and zone, as the offline harness fills them in
        values = {**PROD_OPERATOR, **values}
    config = StackConfig.from_mapping(
        values, document["config"]["aws:region"], documentation_keys=frozenset({"domain"})
    )
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


def test_an_idle_pause_is_off_unless_set() -> None:
    assert load(stage="dev").idle_pause_minutes is None
    assert load(stage="prod", idlePauseMinutes="45").idle_pause_minutes == 45

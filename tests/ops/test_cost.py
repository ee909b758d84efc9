"""The cost model on hand-built resource lists: per-type arithmetic, modes, schedule, unpriced."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from ops.cost import estimate, running_fraction
from ops.schedule import Schedule


@dataclass
class Planned:
    type: str
    inputs: dict[str, Any]
    name: str = "r"
    component: str = "-"
    extra: dict[str, Any] = field(default_factory=dict)


def dev_platform() -> list[Planned]:
    """What the dev stack will hold once every component has landed."""
    template = {
        "name": "coordinator-lt",
        "instanceType": "t4g.micro",
        "blockDeviceMappings": [{"ebs": {"volumeSize": 8, "volumeType": "gp3"}}],
    }
    return [
        Planned("aws:ec2/vpc:Vpc", {}, "vpc", "network"),
        Planned(
            "aws:ec2/instance:Instance",
            {
                "instanceType": "t4g.nano",
                "associatePublicIpAddress": True,
                "rootBlockDevice": {"volumeType": "gp3"},
            },
            "nat",
            "network",
        ),
        Planned(
            "aws:rds/instance:Instance",
            {
                "instanceClass": "db.t4g.micro",
                "allocatedStorage": 20,
                "storageType": "gp3",
                "multiAz": False,
                "manageMasterUserPassword": True,
            },
            "db",
            "database",
        ),
        Planned(
            "aws:elasticache/replicationGroup:ReplicationGroup",
            {"engine": "valkey", "nodeType": "cache.t4g.micro", "numCacheClusters": 1},
            "cache",
            "cache",
        ),
        Planned("aws:ec2/launchTemplate:LaunchTemplate", template, "lt", "coordinator"),
        Planned(
            "aws:autoscaling/group:Group",
            {"desiredCapacity": 1, "minSize": 1, "launchTemplate": {"name": "coordinator-lt"}},
            "asg",
            "coordinator",
        ),
        Planned(
            "aws:lb/loadBalancer:LoadBalancer",
            {"loadBalancerType": "application", "subnets": ["a", "b"]},
            "alb",
            "coordinator",
        ),
        Planned("aws:ssm/parameter:Parameter", {"tier": "Standard"}, "signing", "coordinator"),
        Planned("aws:ssm/parameter:Parameter", {"tier": "Standard"}, "hook", "coordinator"),
        Planned(
            "aws:ec2/instance:Instance", {"instanceType": "t4g.micro"}, "headscale", "headscale"
        ),
        Planned("aws:ec2/eip:Eip", {"domain": "vpc"}, "headscale-ip", "headscale"),
        Planned("aws:ebs/volume:Volume", {"size": 8, "type": "gp3"}, "headscale-data", "headscale"),
        Planned("aws:ssm/parameter:Parameter", {}, "api-key", "headscale"),
        Planned("aws:ec2/instance:Instance", {"instanceType": "t4g.small"}, "srs", "srs"),
        Planned("aws:ec2/eip:Eip", {"domain": "vpc"}, "srs-ip", "srs"),
        *[
            Planned("aws:cloudwatch/metricAlarm:MetricAlarm", {}, f"alarm{n}", "monitoring")
            for n in range(5)
        ],
    ]


def test_each_type_is_priced_from_the_table():
    items = {item.name: item for item in estimate(dev_platform(), "eu-west-1").items}
    # t4g.nano 0.0046/h + 8 GB gp3 at 0.088 + public IPv4 0.005/h; stopped keeps the disk.
    assert items["nat"].running == pytest.approx(0.0046 * 730 + 8 * 0.088 + 0.005 * 730)
    assert items["nat"].stopped == pytest.approx(8 * 0.088)
    # db.t4g.micro 0.018/h + 20 GB gp3 at 0.127 + the RDS-managed secret.
    assert items["db"].running == pytest.approx(0.018 * 730 + 20 * 0.127 + 0.40)
    assert items["db"].stopped == items["db"].deep_paused == pytest.approx(20 * 0.127 + 0.40)
    # Valkey nodes cost 80% of Redis OSS nodes; the cache cannot stop, deep pause removes it.
    assert items["cache"].running == items["cache"].stopped == pytest.approx(0.018 * 0.8 * 730)
    assert items["cache"].deep_paused == 0
    assert items["asg"].running == pytest.approx(0.0092 * 730 + 8 * 0.088)
    assert items["asg"].stopped == 0
    assert items["alb"].running == items["alb"].stopped == pytest.approx(0.0252 * 730 + 2 * 3.65)
    assert items["alb"].deep_paused == 0
    assert items["headscale-ip"].deep_paused == pytest.approx(3.65)
    assert items["vpc"].running == 0 and items["vpc"].priced


def test_dev_deep_pause_keeps_only_storage_addresses_and_alarms():
    dev = estimate(dev_platform(), "eu-west-1")
    running, stopped, deep = (dev.total(mode) for mode in ("running", "stopped", "deep_paused"))
    assert deep < stopped < running
    disks = 4 * 8 * 0.088  # NAT, Headscale and SRS root volumes + Headscale data volume
    database = 20 * 0.127 + 0.40
    addresses = 2 * 0.005 * 730  # Headscale and SRS Elastic IPs
    # The secrets are standard SecureString parameters: free.
    assert deep == pytest.approx(disks + database + addresses + 5 * 0.10)
    assert dev.unpriced == []


def test_standard_parameters_are_free_advanced_ones_are_not_and_secrets_manager_bills():
    result = estimate(
        [
            Planned("aws:ssm/parameter:Parameter", {"tier": "Standard"}, "standard"),
            Planned("aws:ssm/parameter:Parameter", {}, "default"),
            Planned("aws:ssm/parameter:Parameter", {"tier": "Advanced"}, "advanced"),
            Planned("aws:ssm/parameter:Parameter", {"tier": "Intelligent-Tiering"}, "unknown"),
            Planned("aws:secretsmanager/secret:Secret", {}, "secret"),
        ],
        "eu-west-1",
    )
    items = {item.name: item for item in result.items}
    assert items["standard"].running == items["default"].deep_paused == 0
    assert items["advanced"].running == items["advanced"].deep_paused == pytest.approx(0.05)
    assert items["secret"].deep_paused == pytest.approx(0.40)
    assert [item.name for item in result.unpriced] == ["unknown"]


def test_multi_az_doubles_the_database_and_us_east_1_is_cheaper():
    single = {"instanceClass": "db.t4g.small", "allocatedStorage": 50, "storageType": "gp3"}
    one = estimate([Planned("aws:rds/instance:Instance", single)], "eu-west-1").total("running")
    two = estimate(
        [Planned("aws:rds/instance:Instance", {**single, "multiAz": True})], "eu-west-1"
    ).total("running")
    assert two == pytest.approx(2 * one)
    virginia = estimate([Planned("aws:rds/instance:Instance", single)], "us-east-1")
    assert virginia.total("running") < one


def test_unknown_types_and_sizes_cost_nothing_but_are_listed_as_unpriced():
    result = estimate(
        [
            Planned("aws:opensearch/domain:Domain", {}, "search"),
            Planned("aws:ec2/instance:Instance", {"instanceType": "x2iedn.32xlarge"}, "big"),
            Planned("aws:ec2/natGateway:NatGateway", {}, "nat"),
        ],
        "eu-west-1",
    )
    assert [(item.name, item.note) for item in result.unpriced] == [
        ("search", "unpriced: unknown type"),
        ("big", "unpriced: no ec2_hourly price for 'x2iedn.32xlarge'"),
    ]
    assert result.total("running") == pytest.approx(0.048 * 730)


def test_an_unknown_region_or_mode_is_named():
    with pytest.raises(ValueError, match="no price table for region 'mars-1'"):
        estimate([], "mars-1")
    with pytest.raises(ValueError, match="mode 'idle'; allowed values"):
        estimate([], "eu-west-1").total("idle")


def test_scheduled_cost_mixes_running_and_stopped_hours():
    evenings = Schedule.parse("23:00", "18:00", "mon,tue,wed,thu,fri,sat,sun", "UTC")
    week = datetime(2026, 11, 23, tzinfo=UTC)
    assert running_fraction(evenings, week) == pytest.approx(5 / 24)
    weekend = Schedule.parse("23:00", "10:00", "sat,sun", "Europe/Amsterdam")
    assert running_fraction(weekend, week) == pytest.approx(2 * 13 / (7 * 24))

    dev = estimate(dev_platform(), "eu-west-1", schedule=evenings, week_start=week)
    expected = 5 / 24 * dev.total("running") + 19 / 24 * dev.total("stopped")
    assert dev.total("scheduled") == pytest.approx(expected)


def test_components_add_up_to_the_total():
    dev = estimate(dev_platform(), "eu-west-1")
    groups = dev.by_component()
    assert set(groups) == {
        "network",
        "database",
        "cache",
        "coordinator",
        "headscale",
        "srs",
        "monitoring",
    }
    for mode in ("running", "stopped", "deep_paused"):
        assert sum(group[mode] for group in groups.values()) == pytest.approx(dev.total(mode))

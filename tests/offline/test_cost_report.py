"""`make cost`: the Markdown report over the offline program, for every stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from offline.cost_report import build_report, planned_resources
from ops import prices
from ops.cost import MODES
from tests.infra.support import evaluated

ROOT = Path(__file__).resolve().parents[2]
HOURLY_UNSTOPPABLE = {
    "aws:lb/loadBalancer:LoadBalancer",
    "aws:ec2/natGateway:NatGateway",
    "aws:elasticache/replicationGroup:ReplicationGroup",
}


@pytest.fixture(scope="module", params=["dev", "prod"])
def report(request):
    return build_report(request.param)


def test_report_prices_every_mode_per_component_and_totals_add_up(report):
    totals = report.totals()
    components = report.by_component()
    assert {"network", "database", "coordinator"} <= set(components)
    for mode in MODES:
        assert sum(costs[mode] for costs in components.values()) == pytest.approx(totals[mode])
    assert totals["deep_paused"] < totals["stopped"] < totals["running"]
    markdown = report.markdown()
    assert f"| **total** | **{totals['running']:.2f}** |" in markdown
    for item in [*report.active.unpriced, *report.deep.unpriced]:
        assert item.name in markdown


def test_deep_paused_program_has_no_hourly_unstoppables_and_keeps_the_database(report):
    paused_types = {item.type for item in report.deep.items}
    assert not paused_types & HOURLY_UNSTOPPABLE
    assert "aws:rds/instance:Instance" in paused_types
    assert report.deep.total("deep_paused") == pytest.approx(report.deep.total("stopped"))


def test_dev_schedule_is_priced_between_stopped_and_running():
    dev = build_report("dev")
    assert dev.schedule is not None
    assert dev.active.running_fraction == pytest.approx(14 / 24)  # resume 08:00, pause 22:00
    totals = dev.totals()
    assert totals["stopped"] < totals["scheduled"] < totals["running"]


def test_resources_are_grouped_by_the_component_that_registered_them():
    planned = planned_resources(evaluated("dev"))
    database = next(r for r in planned if r.type == "aws:rds/instance:Instance")
    assert database.component == "database"
    assert {r.component for r in planned} >= {"network", "database", "cache"}


def test_make_cost_prints_the_markdown_report():
    result = subprocess.run(
        [sys.executable, "-m", "offline.cost_report", "--stack", "dev"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert result.stdout.startswith("# Monthly cost: dev (eu-west-1)")
    assert "| component | running | stop-paused | deep-paused |" in result.stdout
    assert "on demand, 12 h of streaming a week" in result.stdout


def test_the_whole_bill_has_a_line_per_way_of_running_with_usage_on_top():
    dev = build_report("dev")
    bill = {line.name.split(" (")[0].split(",")[0]: line for line in dev.bill()}
    ways = {"running", "stop-paused", "deep-paused", "on its stop schedule", "on demand"}
    assert set(bill) == ways
    lines = dev.bill()
    running, stopped, deep, scheduled, on_stop, on_deep = lines
    assert running.capacity == pytest.approx(dev.totals()["running"])
    assert stopped.usage.total == deep.usage.total == 0
    assert running.usage.video_egress > scheduled.usage.video_egress * 0.99
    assert scheduled.usage.other < running.usage.other
    # On demand: 12 h of streaming a week, 30-minute idle pause after each 3-hour session.
    share = 14 / 168
    totals = dev.totals()
    assert on_stop.capacity == pytest.approx(
        share * totals["running"] + (1 - share) * totals["stopped"]
    )
    # Deep-paused when idle: dev sets no idleDeepPauseHours, so the report assumes the minimum,
    # 1 h stop-paused after each of the 4 sessions' idle pause, then deep-paused.
    assert on_deep.name.endswith(
        "deep-paused 1 h after the idle pause (assumed: idleDeepPauseHours unset)"
    )
    stopped_share = 4 / 168
    assert on_deep.capacity == pytest.approx(
        share * totals["running"]
        + stopped_share * totals["stopped"]
        + (1 - share - stopped_share) * totals["deep_paused"]
    )
    assert on_deep.without_video < on_stop.without_video < scheduled.without_video
    for line in lines:
        assert line.total == pytest.approx(line.without_video + line.usage.video_egress)


def test_with_https_the_load_balancer_carries_the_origins_viewers_and_bills_lcus_for_it():
    """Prod (HTTPS) plays the origin through its ALB; dev plays it directly."""
    notes = {}
    for stack in ("dev", "prod"):
        running = build_report(stack).bill()[0]
        units = next(u for u in running.usage.lines if u.name == "load balancer capacity units")
        notes[stack] = units.note
    assert "while streaming" not in notes["dev"]
    # 5 viewers at 3 Mbps, half of them on friends' edges: 3.375 GB/h through the ALB.
    assert "3.38 while streaming" in notes["prod"]


def test_make_cost_prints_the_on_demand_figures_and_takes_usage_on_the_command_line():
    result = subprocess.run(
        [
            sys.executable, "-m", "offline.cost_report", "--stack", "dev",
            "--viewers", "20", "--friend-share", "0", "--on-demand-hours", "6",
        ],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    assert (
        "| on demand, 6 h of streaming a week, deep-paused 1 h after the idle pause"
        in result.stdout
    )
    assert "20 viewers x 3000 kbps" in result.stdout
    assert "| friends saved (origin egress they served) | 0.00 |" in result.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--friend-share", "2"], "friend_share is 2.0; allowed values: 0 to 1"),
        (["--set", "githubRepository"], "--set expects KEY=VALUE, got 'githubRepository'"),
        (
            ["--set", "githubRepository=a/b"],
            "make cost: 2 problems in the stack configuration:\n"
            "  - streamr:stateBucket is required when streamr:githubRepository is set",
        ),
    ],
    ids=["usage-out-of-range", "set-without-value", "set-refused-by-the-config"],
)
def test_make_cost_names_a_bad_argument(arguments: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "offline.cost_report", *arguments],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# dev as it would be with the deploy workflow and a hosted zone (issue 22's stable endpoints): keys
# its stack file cannot hold without an operator's repository, bucket, key and zone.
WITH_ZONE = {
    "githubRepository": "streamer/streamr",
    "stateBucket": "streamer-pulumi-state",
    "secretsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/0b1c2d3e-0000-4000-8000-123456789abc",
    "idleDeepPauseHours": "1",
    "domain": "stream.streamer.net",
    "hostedZoneId": "Z0123456789ABCDEFGHIJ",
}


def test_make_cost_prices_config_keys_set_on_the_command_line():
    dev, zoned = build_report("dev"), build_report("dev", overrides=WITH_ZONE)
    # The deep pause releases the SRS origin's address (the zone keeps its name); the wake
    # endpoint gains the GitHub token's parameter, which costs nothing (standard tier).
    address = prices.PUBLIC_IPV4_HOURLY * 730
    assert zoned.totals()["deep_paused"] == pytest.approx(
        dev.totals()["deep_paused"] - address + prices.SSM_PARAMETER_MONTHLY["Standard"]
    )
    assert "streamr-dev-wake-github-token" in {item.name for item in zoned.deep.items}
    markdown = zoned.markdown()
    assert markdown.startswith(
        "# Monthly cost: dev (eu-west-1), githubRepository=streamer/streamr, "
    )
    assert "domain=stream.streamer.net, hostedZoneId=Z0123456789ABCDEFGHIJ\n" in markdown
    # Set, the key is no longer assumed.
    (on_demand,) = [line for line in zoned.bill() if "deep-paused 1 h after" in line.name]
    assert "assumed" not in on_demand.name

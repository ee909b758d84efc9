"""Usage pricing: video egress with and without friends, ALB LCUs, NAT data, logs, on demand."""

from __future__ import annotations

import pytest

from ops import prices
from ops.usage import (
    VIDEO_EGRESS,
    Usage,
    UsageError,
    on_demand_running_hours,
    on_demand_stopped_hours,
    usage_cost,
)

TABLE = prices.PRICES["eu-west-1"]
MONTH = prices.HOURS_PER_MONTH


def line(cost, name):
    return next(item for item in cost.lines if item.name == name)


def test_a_3_mbps_stream_is_1_35_gb_per_viewer_hour():
    assert Usage(bitrate_kbps=3000).gb_per_viewer_hour == pytest.approx(1.35)


def test_egress_without_friends_matches_the_issue_figures():
    """5 viewers at 3 h/day: about $46 a month; 20: $213 (the issue rounds to $210). 100 GB free."""
    for viewers, expected in ((5, 46.44), (20, 212.74)):
        usage = Usage(viewers=viewers, friend_share=0.0)
        cost = usage_cost(
            usage, TABLE, MONTH, usage.streaming_hours_per_month(),
            load_balancer=True, nat_gateway=False,
        )  # fmt: skip
        watched = viewers * 1.35 * 3 * MONTH / 24
        assert cost.video_egress == pytest.approx((watched - 100) * 0.09)
        assert cost.video_egress == pytest.approx(expected, abs=0.5)
        assert cost.friends_saved == 0


def test_friends_take_their_share_off_the_origin_but_their_edges_pull_a_copy():
    usage = Usage(viewers=20, friend_share=0.75, friend_edges=3)
    hours = usage.streaming_hours_per_month()
    cost = usage_cost(usage, TABLE, MONTH, hours, load_balancer=True, nat_gateway=False)
    per_viewer = 1.35 * hours
    origin = 20 * per_viewer * 0.25 + 3 * per_viewer
    assert cost.video_egress == pytest.approx((origin - 100) * 0.09)
    alone = (20 * per_viewer - 100) * 0.09
    assert cost.friends_saved == pytest.approx(alone - cost.video_egress)
    assert "3 edge(s) pull a copy" in line(cost, VIDEO_EGRESS).note


def test_capacity_units_nat_data_and_logs_bill_only_while_running_and_only_if_present():
    usage = Usage(alb_lcu=2, nat_gb_per_day=3, log_gb_per_day=0.5)
    running = usage_cost(usage, TABLE, 100, 10, load_balancer=True, nat_gateway=True)
    assert line(running, "load balancer capacity units").monthly == pytest.approx(2 * 100 * 0.008)
    assert line(running, "NAT data processing").monthly == pytest.approx(3 * 100 / 24 * 0.048)
    assert line(running, "log ingestion").monthly == pytest.approx(0.5 * 100 / 24 * 0.57)
    without = usage_cost(usage, TABLE, 100, 10, load_balancer=False, nat_gateway=False)
    assert line(without, "load balancer capacity units").monthly == 0
    assert line(without, "NAT data processing").monthly == 0
    paused = usage_cost(usage, TABLE, 0, 0, load_balancer=True, nat_gateway=True)
    assert paused.total == 0


def test_with_the_origins_video_through_the_load_balancer_its_gb_per_hour_are_the_lcus():
    """1 LCU processes 1 GB an hour: 20 viewers at 3 Mbps, half on friends' edges, send 13.5 GB
    an hour through the ALB while streaming; the 1 LCU of everything else while not."""
    usage = Usage(viewers=20, friend_share=0.5, alb_lcu=1)
    cost = usage_cost(
        usage, TABLE, 100, 10, load_balancer=True, nat_gateway=False,
        video_through_load_balancer=True,
    )  # fmt: skip
    units = line(cost, "load balancer capacity units")
    assert units.monthly == pytest.approx((1 * 90 + 13.5 * 10) * 0.008)
    assert "13.50 while streaming" in units.note
    # A trickle of video below the other dimensions' LCU adds nothing.
    trickle = Usage(viewers=1, bitrate_kbps=500, friend_share=0.5, alb_lcu=1)
    cost = usage_cost(
        trickle, TABLE, 100, 10, load_balancer=True, nat_gateway=False,
        video_through_load_balancer=True,
    )  # fmt: skip
    assert line(cost, "load balancer capacity units").monthly == pytest.approx(100 * 0.008)
    # Egress is the same per GB whether the ALB or the origin sends it.
    direct = usage_cost(usage, TABLE, 100, 10, load_balancer=True, nat_gateway=False)
    through = usage_cost(
        usage, TABLE, 100, 10, load_balancer=True, nat_gateway=False,
        video_through_load_balancer=True,
    )  # fmt: skip
    assert through.video_egress == pytest.approx(direct.video_egress)


def test_streaming_more_hours_than_the_platform_runs_is_refused():
    with pytest.raises(UsageError, match=r"exceeds the 10\.0 h the platform runs"):
        usage_cost(Usage(), TABLE, 10, 20, load_balancer=True, nat_gateway=False)


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [("friend_share", 1.5, "0 to 1"), ("viewers", -1, "0 to 100000"), ("bitrate_kbps", 10, "100")],
)
def test_out_of_range_parameters_name_the_field_and_the_allowed_values(field, value, allowed):
    with pytest.raises(UsageError, match=f"{field} is .*allowed values: {allowed}"):
        Usage(**{field: value})


def test_on_demand_runs_the_streaming_hours_plus_the_idle_time_before_each_pause():
    # 12 h a week in 3-hour sessions, paused 30 minutes after each: 14 h a week.
    assert on_demand_running_hours(12, 30, 3) == pytest.approx(14 * MONTH / 168)
    assert on_demand_running_hours(168, 30, 3) == pytest.approx(MONTH)
    with pytest.raises(UsageError, match="allowed values: 0 to 168"):
        on_demand_running_hours(200, 30, 3)


def test_on_demand_waits_stop_paused_after_each_idle_pause_before_the_deep_pause():
    # 4 sessions a week, each idle pause followed by 2 h stop-paused: 8 h a week.
    assert on_demand_stopped_hours(12, 30, 3, 2) == pytest.approx(8 * MONTH / 168)
    assert on_demand_stopped_hours(12, 30, 3, 0) == 0
    # Never more than the hours it does not run: a day's wait after 3-hour daily sessions.
    running = on_demand_running_hours(84, 30, 3)
    assert on_demand_stopped_hours(84, 30, 3, 24) == pytest.approx(MONTH - running)
    with pytest.raises(UsageError, match="allowed values: 0 or more"):
        on_demand_stopped_hours(12, 30, 3, -1)

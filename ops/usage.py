"""What the platform costs by use, not by the clock: video egress, ALB capacity, NAT data, logs.

Pure: every figure is a function of a `Usage` (how much is streamed and watched) and the hours a
month the platform runs, priced with `ops/prices.py`. The capacity side (instances, databases...) is
`ops/cost.py`'s; `on_demand_running_hours` says how many hours "on demand" keeps it running and
`on_demand_stopped_hours` how many of the rest it waits stop-paused before the idle deep pause.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ops import prices

HOURS_PER_WEEK = 7 * 24
WEEKS_PER_MONTH = prices.HOURS_PER_MONTH / HOURS_PER_WEEK


class UsageError(ValueError):
    """A usage parameter is out of range; the message names it and the allowed values."""


@dataclass(frozen=True)
class Usage:
    """How the platform is used. The defaults are a small streamer: 5 viewers, 3 Mbps, 3 h a day.

    `friend_share` is the share of viewer traffic friends' edges serve; each of `friend_edges`
    pulls one copy of the stream from the origin while it is live. `alb_lcu`, `nat_gb_per_day`
    and `log_gb_per_day` are what the platform consumes while it runs (not while paused);
    `alb_lcu` without the origin's video, which a stack with HTTPS sends through the load balancer
    (`usage_cost`'s `video_through_load_balancer`).
    """

    viewers: int = 5
    bitrate_kbps: int = 3000
    hours_per_day: float = 3.0
    friend_share: float = 0.5
    friend_edges: int = 2
    alb_lcu: float = 1.0
    nat_gb_per_day: float = 1.0
    log_gb_per_day: float = 0.05

    def __post_init__(self) -> None:
        bounds: dict[str, tuple[float, float]] = {
            "viewers": (0, 100_000),
            "bitrate_kbps": (100, 50_000),
            "hours_per_day": (0, 24),
            "friend_share": (0, 1),
            "friend_edges": (0, 1000),
            "alb_lcu": (0, 1000),
            "nat_gb_per_day": (0, 100_000),
            "log_gb_per_day": (0, 100_000),
        }
        for field in fields(self):
            value: Any = getattr(self, field.name)
            low, high = bounds[field.name]
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not (low <= value <= high)
            ):
                raise UsageError(f"{field.name} is {value!r}; allowed values: {low:g} to {high:g}")

    @property
    def gb_per_viewer_hour(self) -> float:
        """A stream at `bitrate_kbps` for one viewer for an hour (3000 kbps: 1.35 GB)."""
        return self.bitrate_kbps * 1000 / 8 * 3600 / 1e9

    def streaming_hours_per_month(self) -> float:
        return self.hours_per_day * prices.DAYS_PER_MONTH


@dataclass(frozen=True)
class UsageLine:
    name: str
    monthly: float
    note: str


@dataclass(frozen=True)
class UsageCost:
    """Usage lines for one way of running; `video_egress` apart (the cost goal excludes it)."""

    lines: tuple[UsageLine, ...]
    friends_saved: float

    @property
    def video_egress(self) -> float:
        return sum(line.monthly for line in self.lines if line.name == VIDEO_EGRESS)

    @property
    def other(self) -> float:
        return sum(line.monthly for line in self.lines if line.name != VIDEO_EGRESS)

    @property
    def total(self) -> float:
        return self.video_egress + self.other


VIDEO_EGRESS = "video egress from the origin"


def usage_cost(
    usage: Usage,
    table: dict[str, Any],
    running_hours_per_month: float,
    streaming_hours_per_month: float,
    *,
    load_balancer: bool,
    nat_gateway: bool,
    video_through_load_balancer: bool = False,
) -> UsageCost:
    """Usage priced for a platform running `running_hours_per_month` and streaming for
    `streaming_hours_per_month` of them (the ALB and NAT gateway only when the plan has them).

    `video_through_load_balancer`: viewers play the origin through the ALB (a stack with HTTPS,
    components/srs_origin.py). An LCU is the largest of its dimensions in each hour, and for
    instance targets one LCU processes 1 GB an hour: while streaming the ALB bills the origin's
    viewer GB per hour or `alb_lcu`, whichever is more. Edges pull over the mesh, not through it.
    """
    if streaming_hours_per_month > running_hours_per_month + 1e-9:
        raise UsageError(
            f"streaming {streaming_hours_per_month:.1f} h/month exceeds the "
            f"{running_hours_per_month:.1f} h the platform runs"
        )
    per_viewer = usage.gb_per_viewer_hour * streaming_hours_per_month
    watched_gb = usage.viewers * per_viewer
    edges = usage.friend_edges if usage.friend_share > 0 and usage.viewers > 0 else 0
    origin_gb = watched_gb * (1 - usage.friend_share) + edges * per_viewer
    billed_gb = max(0.0, origin_gb - prices.FREE_EGRESS_GB_MONTH)
    egress_price = table["internet_egress_gb"]
    # What the origin would send without friends, minus what it sends with them, at the same price.
    alone_gb = max(0.0, watched_gb - prices.FREE_EGRESS_GB_MONTH)
    friends_saved = (alone_gb - billed_gb) * egress_price
    running_days = running_hours_per_month / 24
    lines = [
        UsageLine(
            VIDEO_EGRESS,
            billed_gb * egress_price,
            f"{usage.viewers} viewers x {usage.bitrate_kbps} kbps x "
            f"{streaming_hours_per_month:.0f} h: {watched_gb:.0f} GB watched, friends serve "
            f"{usage.friend_share:.0%} and {edges} edge(s) pull a copy: {origin_gb:.0f} GB from "
            f"the origin, {prices.FREE_EGRESS_GB_MONTH} GB free",
        ),
        _capacity_units(
            usage,
            table,
            running_hours_per_month,
            streaming_hours_per_month,
            load_balancer=load_balancer,
            video=video_through_load_balancer,
        ),
        UsageLine(
            "NAT data processing",
            usage.nat_gb_per_day * running_days * table["nat_gateway_gb"] if nat_gateway else 0.0,
            f"{usage.nat_gb_per_day:g} GB/day through the NAT gateway while running"
            if nat_gateway
            else "no NAT gateway (a NAT instance charges no processing)",
        ),
        UsageLine(
            "log ingestion",
            usage.log_gb_per_day * running_days * table["log_ingestion_gb"],
            f"{usage.log_gb_per_day:g} GB/day into CloudWatch Logs while running",
        ),
    ]
    return UsageCost(tuple(lines), friends_saved)


def _capacity_units(
    usage: Usage,
    table: dict[str, Any],
    running_hours: float,
    streaming_hours: float,
    *,
    load_balancer: bool,
    video: bool,
) -> UsageLine:
    name = "load balancer capacity units"
    if not load_balancer:
        return UsageLine(name, 0.0, "no load balancer")
    if not video:
        monthly = usage.alb_lcu * running_hours * table["alb_lcu_hourly"]
        return UsageLine(name, monthly, f"{usage.alb_lcu:g} LCU while running")
    # 1 LCU processes 1 GB an hour (instance targets): the origin's viewers' GB per hour.
    video_lcu = usage.viewers * (1 - usage.friend_share) * usage.gb_per_viewer_hour
    streaming_lcu = max(usage.alb_lcu, video_lcu)
    lcu_hours = usage.alb_lcu * (running_hours - streaming_hours) + streaming_lcu * streaming_hours
    return UsageLine(
        name,
        lcu_hours * table["alb_lcu_hourly"],
        f"{usage.alb_lcu:g} LCU while running, {streaming_lcu:.2f} while streaming (the "
        f"origin's viewers' video through it: {video_lcu:.2f} GB/h)",
    )


def on_demand_running_hours(
    streaming_hours_per_week: float, idle_pause_minutes: int, session_hours: float
) -> float:
    """Hours a month the platform runs "on demand": each streaming session (of `session_hours`)
    plus the idle time before the idle pause stops it again."""
    if not 0 <= streaming_hours_per_week <= HOURS_PER_WEEK:
        raise UsageError(
            f"on-demand hours per week is {streaming_hours_per_week!r}; allowed values: 0 to 168"
        )
    if session_hours <= 0:
        raise UsageError(f"session hours is {session_hours!r}; allowed values: more than 0")
    sessions = streaming_hours_per_week / session_hours
    weekly = min(HOURS_PER_WEEK, streaming_hours_per_week + sessions * idle_pause_minutes / 60)
    return weekly * WEEKS_PER_MONTH


def on_demand_stopped_hours(
    streaming_hours_per_week: float,
    idle_pause_minutes: int,
    session_hours: float,
    idle_deep_pause_hours: float,
) -> float:
    """Hours a month "on demand, deep-paused when idle" spends stop-paused: after each session's
    idle pause, `idle_deep_pause_hours` until the deep pause (never more than the time left)."""
    if idle_deep_pause_hours < 0:
        raise UsageError(
            f"idle deep pause hours is {idle_deep_pause_hours!r}; allowed values: 0 or more"
        )
    running = on_demand_running_hours(streaming_hours_per_week, idle_pause_minutes, session_hours)
    sessions = streaming_hours_per_week / session_hours
    weekly = sessions * idle_deep_pause_hours * WEEKS_PER_MONTH
    return min(weekly, prices.HOURS_PER_MONTH - running)

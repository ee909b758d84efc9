"""`make cost STACK=dev`: the stack's monthly cost as Markdown, from the offline program run.

Prices the resources `offline.harness.run_program` registers (running and stop-paused), and the
resources of the same program with `paused: true` (deep-paused), per component, with `ops/cost.py`;
then the whole bill of each way to run it (always on, paused, the configured stop schedule, on
demand) with the usage `ops/usage.py` prices: video egress, ALB capacity units, NAT data, logs.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from offline.harness import ProgramFailed, run_program
from ops import prices
from ops.arguments import Parser
from ops.cost import MODES, REFERENCE_WEEK, Estimate, estimate
from ops.idle import DEFAULT_IDLE_PAUSE_MINUTES
from ops.idle_deep import MINIMUM_IDLE_DEEP_PAUSE_HOURS
from ops.schedule import Schedule
from ops.stack_file import NAMESPACE, StackFileError, schedule_of, stack_config
from ops.usage import (
    Usage,
    UsageCost,
    UsageError,
    on_demand_running_hours,
    on_demand_stopped_hours,
    usage_cost,
)
from stack_config import StackConfigError

MODE_TITLES = {"running": "running", "stopped": "stop-paused", "deep_paused": "deep-paused"}


@dataclass(frozen=True)
class PlannedResource:
    type: str
    name: str
    component: str
    inputs: Mapping[str, Any]
    id: str | None


def planned_resources(run: Any) -> list[PlannedResource]:
    """The run's cloud resources, each with the program's component that holds it (the outermost
    below the stack: a parameter made by SecureParameter inside the coordinator is the
    coordinator's)."""
    by_urn = {resource.urn: resource for resource in run.resources}

    def component_of(resource: Any) -> str:
        outermost = None
        parent = by_urn.get(resource.parent)
        while parent is not None and parent.type != "pulumi:pulumi:Stack":
            if not parent.custom:
                outermost = parent
            parent = by_urn.get(parent.parent)
        if outermost is None:
            return "stack"
        return outermost.type.split(":")[1]

    return [
        PlannedResource(r.type, r.name, component_of(r), r.inputs, r.id)
        for r in run.resources
        if r.custom
    ]


@dataclass(frozen=True)
class OnDemand:
    """Streaming `hours_per_week` in sessions of `session_hours`, idle-paused after
    `idle_pause_minutes` and deep-paused `idle_deep_pause_hours` later (each configured, or the
    default when the stack sets none: `deep_pause_configured` says which)."""

    hours_per_week: float = 12.0
    session_hours: float = 3.0
    idle_pause_minutes: int = DEFAULT_IDLE_PAUSE_MINUTES
    idle_deep_pause_hours: int = MINIMUM_IDLE_DEEP_PAUSE_HOURS
    deep_pause_configured: bool = False

    @property
    def deep_pause_description(self) -> str:
        hours = f"{self.idle_deep_pause_hours} h"
        if self.deep_pause_configured:
            return f"deep-paused {hours} after the idle pause"
        return f"deep-paused {hours} after the idle pause (assumed: idleDeepPauseHours unset)"


@dataclass(frozen=True)
class BillLine:
    """One way of running the platform: capacity from the plan, usage on top."""

    name: str
    capacity: float
    usage: UsageCost

    @property
    def without_video(self) -> float:
        return self.capacity + self.usage.other

    @property
    def total(self) -> float:
        return self.capacity + self.usage.total


@dataclass(frozen=True)
class Report:
    stack: str
    active: Estimate
    deep: Estimate
    schedule: Schedule | None
    usage: Usage = field(default_factory=Usage)
    on_demand: OnDemand = field(default_factory=OnDemand)
    # Config keys priced on top of the stack file (`--set`), named in the title.
    overrides: Mapping[str, str] = field(default_factory=dict)

    def bill(self) -> list[BillLine]:
        """Running, paused, on the configured schedule and on demand, each with its usage.

        Paused lines stream nothing. A schedule's or on demand's streaming fits in its running
        hours; an idle pause is the stop pause the enforcement run makes, and on demand from a
        deep pause is the cheapest way (the wake endpoint triggers the un-pause).
        """
        totals = self.totals()
        table = prices.PRICES[self.active.region]
        types = {item.type for item in self.active.items}
        has = {
            "load_balancer": bool(types & {"aws:lb/loadBalancer:LoadBalancer"}),
            "nat_gateway": "aws:ec2/natGateway:NatGateway" in types,
            # The only listener rule: the origin's play paths (a stack with HTTPS).
            "video_through_load_balancer": "aws:lb/listenerRule:ListenerRule" in types,
        }
        month = prices.HOURS_PER_MONTH
        watched = self.usage.streaming_hours_per_month()

        def priced(running_hours: float, streaming: float) -> UsageCost:
            return usage_cost(self.usage, table, running_hours, streaming, **has)

        lines = [
            BillLine("running", totals["running"], priced(month, watched)),
            BillLine("stop-paused", totals["stopped"], priced(0, 0)),
            BillLine("deep-paused", totals["deep_paused"], priced(0, 0)),
        ]
        if self.schedule is not None:
            hours = (self.active.running_fraction or 0.0) * month
            lines.append(
                BillLine(
                    f"on its stop schedule ({self.schedule.describe()})",
                    totals["scheduled"],
                    priced(hours, min(watched, hours)),
                )
            )
        demand = self.on_demand
        running_hours = on_demand_running_hours(
            demand.hours_per_week, demand.idle_pause_minutes, demand.session_hours
        )
        share = running_hours / month
        streaming = demand.hours_per_week * month / (7 * 24)
        stopped_share = (
            on_demand_stopped_hours(
                demand.hours_per_week,
                demand.idle_pause_minutes,
                demand.session_hours,
                demand.idle_deep_pause_hours,
            )
            / month
        )
        on_demand = f"on demand, {demand.hours_per_week:g} h of streaming a week"
        lines += [
            BillLine(
                f"{on_demand}, stop-paused when idle",
                share * totals["running"] + (1 - share) * totals["stopped"],
                priced(running_hours, streaming),
            ),
            BillLine(
                f"{on_demand}, {demand.deep_pause_description}",
                share * totals["running"]
                + stopped_share * totals["stopped"]
                + (1 - share - stopped_share) * totals["deep_paused"],
                priced(running_hours, streaming),
            ),
        ]
        return lines

    def totals(self) -> dict[str, float]:
        totals = {
            "running": self.active.total("running"),
            "stopped": self.active.total("stopped"),
            "deep_paused": self.deep.total("deep_paused"),
        }
        if self.schedule is not None:
            totals["scheduled"] = self.active.total("scheduled")
        return totals

    def by_component(self) -> dict[str, dict[str, float]]:
        active, deep = self.active.by_component(), self.deep.by_component()
        return {
            name: {
                "running": active.get(name, {}).get("running", 0.0),
                "stopped": active.get(name, {}).get("stopped", 0.0),
                "deep_paused": deep.get(name, {}).get("deep_paused", 0.0),
            }
            for name in sorted({*active, *deep})
        }

    def markdown(self) -> str:
        totals = self.totals()
        lines = [
            f"# Monthly cost: {self.stack} ({self.active.region})"
            + "".join(f", {key}={value}" for key, value in self.overrides.items()),
            "",
            "On-demand USD, 730 h/month, prices from `ops/prices.py` (source and date there). "
            "Capacity only; usage is priced under *The whole bill*.",
            "",
            "| component | running | stop-paused | deep-paused |",
            "| --- | ---: | ---: | ---: |",
        ]
        for name, costs in self.by_component().items():
            lines.append(f"| {name} | " + " | ".join(f"{costs[m]:.2f}" for m in MODES) + " |")
        lines.append("| **total** | " + " | ".join(f"**{totals[m]:.2f}**" for m in MODES) + " |")
        lines.append("")
        share = totals["deep_paused"] / totals["running"] if totals["running"] else 0.0
        lines.append(f"Deep-paused costs {share:.0%} of running.")
        if self.schedule is not None:
            fraction = self.active.running_fraction or 0.0
            lines.append(
                f"On the stop schedule (resume {self.schedule.resume_at:%H:%M}, pause "
                f"{self.schedule.pause_at:%H:%M} {self.schedule.timezone}, "
                f"{','.join(self.schedule.weekdays)}: running {fraction:.0%} of the week): "
                f"{totals['scheduled']:.2f}/month."
            )
        unpriced = [*self.active.unpriced, *self.deep.unpriced]
        names = sorted({f"{item.name} ({item.type})" for item in unpriced})
        lines.append(f"Unpriced: {', '.join(names) if names else 'none'}.")
        lines += self._bill_markdown()
        lines += [
            "",
            "| resource | component | running | stop-paused | note |",
            "| --- | --- | ---: | ---: | --- |",
        ]
        for item in self.active.items:
            if item.running or item.stopped or not item.priced:
                lines.append(
                    f"| {item.name} | {item.component} | {item.running:.2f} | "
                    f"{item.stopped:.2f} | {item.note} |"
                )
        return "\n".join(lines) + "\n"

    def _bill_markdown(self) -> list[str]:
        usage, demand = self.usage, self.on_demand
        lines = [
            "",
            "## The whole bill",
            "",
            f"Usage: {usage.viewers} viewers at {usage.bitrate_kbps} kbps "
            f"({usage.gb_per_viewer_hour:.2f} GB per viewer-hour), {usage.hours_per_day:g} h of "
            f"streaming a day, friends serving {usage.friend_share:.0%} through "
            f"{usage.friend_edges} edge(s); {usage.alb_lcu:g} ALB LCU, "
            f"{usage.nat_gb_per_day:g} GB/day NAT data, {usage.log_gb_per_day:g} GB/day of logs "
            "while running. On demand: sessions of "
            f"{demand.session_hours:g} h, idle pause after {demand.idle_pause_minutes} min. "
            "Change them on the command line (`python -m offline.cost_report --help`).",
            "",
            "| way of running | capacity | usage without video | video egress | "
            "total without video egress | total |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for line in self.bill():
            lines.append(
                f"| {line.name} | {line.capacity:.2f} | {line.usage.other:.2f} | "
                f"{line.usage.video_egress:.2f} | {line.without_video:.2f} | {line.total:.2f} |"
            )
        running = self.bill()[0]
        lines += ["", "| usage while always running | monthly | note |", "| --- | ---: | --- |"]
        for item in running.usage.lines:
            lines.append(f"| {item.name} | {item.monthly:.2f} | {item.note} |")
        lines.append(
            f"| friends saved (origin egress they served) | {running.usage.friends_saved:.2f} | "
            "at the same egress price |"
        )
        return lines


def summary(run: Any) -> str:
    """One line for the offline plan: what this program run costs a month."""
    config = run.config
    schedule = schedule_of(config)
    priced = estimate(
        planned_resources(run), config.get("aws:region", "eu-west-1"), schedule, REFERENCE_WEEK
    )
    if config.get("streamr:paused") == "true":
        return f"Monthly cost, deep-paused: {priced.total('deep_paused'):.2f} USD."
    line = (
        f"Monthly cost: running {priced.total('running'):.2f} USD, "
        f"stop-paused {priced.total('stopped'):.2f}"
    )
    if schedule is not None:
        line += f", on the stop schedule {priced.total('scheduled'):.2f}"
    return line + "."


def build_report(
    stack: str,
    usage: Usage | None = None,
    hours_per_week: float = OnDemand.hours_per_week,
    session_hours: float = OnDemand.session_hours,
    overrides: Mapping[str, str] | None = None,
) -> Report:
    """`overrides`: config keys (bare ones in the `streamr:` namespace) as if in the stack file."""
    overrides = dict(overrides or {})
    config = stack_config(stack, overrides)
    region = config.get("aws:region", "eu-west-1")
    schedule = schedule_of(config)
    active = estimate(
        planned_resources(run_program(stack, overrides=overrides)),
        region,
        schedule,
        week_start=REFERENCE_WEEK,
    )
    paused = run_program(stack, overrides={**overrides, "paused": True})
    deep = estimate(planned_resources(paused), region)
    idle = int(config.get(f"{NAMESPACE}:idlePauseMinutes", DEFAULT_IDLE_PAUSE_MINUTES))
    deep_hours = config.get(f"{NAMESPACE}:idleDeepPauseHours")
    on_demand = OnDemand(
        hours_per_week,
        session_hours,
        idle,
        int(deep_hours) if deep_hours else MINIMUM_IDLE_DEEP_PAUSE_HOURS,
        deep_pause_configured=bool(deep_hours),
    )
    return Report(stack, active, deep, schedule, usage or Usage(), on_demand, overrides)


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="make cost", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack file under stacks/ (dev, prod)")
    defaults = Usage()
    for name, kind, help_text in (
        ("viewers", int, "viewers watching each stream"),
        ("bitrate_kbps", int, "the stream's bitrate"),
        ("hours_per_day", float, "hours of streaming a day (always running, on a schedule)"),
        ("friend_share", float, "share of viewer traffic friends' edges serve (0 to 1)"),
        ("friend_edges", int, "friends' edges, each pulling one copy from the origin"),
        ("alb_lcu", float, "load balancer capacity units used while running"),
        ("nat_gb_per_day", float, "GB a day through the NAT gateway while running"),
        ("log_gb_per_day", float, "GB a day of logs ingested while running"),
    ):
        default = getattr(defaults, name)
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=kind, default=default,
            help=f"{help_text} (default {default:g})",
        )  # fmt: skip
    parser.add_argument(
        "--on-demand-hours", type=float, default=OnDemand.hours_per_week,
        help=f"on demand: hours of streaming a week (default {OnDemand.hours_per_week:g})",
    )  # fmt: skip
    parser.add_argument(
        "--session-hours", type=float, default=OnDemand.session_hours,
        help=f"on demand: hours one streaming session lasts (default {OnDemand.session_hours:g})",
    )  # fmt: skip
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="price the stack with this config key as if in its stack file (bare keys are "
        f"{NAMESPACE}:; repeatable), e.g. --set githubRepository=you/streamr",
    )  # fmt: skip
    args = parser.parse_args(argv)
    overrides = parser.key_values("--set", args.set)
    try:
        usage = Usage(**{item.name: getattr(args, item.name) for item in fields(Usage)})
        report = build_report(
            args.stack, usage, args.on_demand_hours, args.session_hours, overrides
        )
        report.bill()
    except UsageError as error:
        parser.error(str(error))
    except StackFileError as error:
        print(f"make cost: {error}", file=sys.stderr)
        return 2
    except ProgramFailed as failure:
        # A stack file or `--set` the program refuses (as `pulumi preview` would).
        if isinstance(failure.__cause__, StackConfigError):
            print(f"make cost: {failure}", file=sys.stderr)
            return 2
        raise
    sys.stdout.write(report.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make cost STACK=dev`: the stack's monthly cost as Markdown, from the offline program run.

Prices the resources `offline.harness.run_program` registers (running and stop-paused), and the
resources of the same program with `paused: true` (deep-paused), per component, with `ops/cost.py`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from offline.harness import run_program
from ops.arguments import Parser
from ops.cost import MODES, REFERENCE_WEEK, Estimate, estimate
from ops.schedule import Schedule
from ops.stack_file import StackFileError, schedule_of, stack_config

MODE_TITLES = {"running": "running", "stopped": "stop-paused", "deep_paused": "deep-paused"}


@dataclass(frozen=True)
class PlannedResource:
    type: str
    name: str
    component: str
    inputs: Mapping[str, Any]
    id: str | None


def planned_resources(run: Any) -> list[PlannedResource]:
    """The run's cloud resources, each with the component that registered it."""
    by_urn = {resource.urn: resource for resource in run.resources}

    def component_of(resource: Any) -> str:
        parent = by_urn.get(resource.parent)
        while parent is not None and parent.custom:
            parent = by_urn.get(parent.parent)
        if parent is None or parent.type == "pulumi:pulumi:Stack":
            return "stack"
        return parent.type.split(":")[1]

    return [
        PlannedResource(r.type, r.name, component_of(r), r.inputs, r.id)
        for r in run.resources
        if r.custom
    ]


@dataclass(frozen=True)
class Report:
    stack: str
    active: Estimate
    deep: Estimate
    schedule: Schedule | None

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
            f"# Monthly cost: {self.stack} ({self.active.region})",
            "",
            "On-demand USD, 730 h/month, prices from `ops/prices.py` (source and date there). "
            "Traffic, log ingestion and other usage are not included.",
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


def build_report(stack: str) -> Report:
    config = stack_config(stack)
    region = config.get("aws:region", "eu-west-1")
    schedule = schedule_of(config)
    active = estimate(
        planned_resources(run_program(stack)), region, schedule, week_start=REFERENCE_WEEK
    )
    deep = estimate(planned_resources(run_program(stack, overrides={"paused": True})), region)
    return Report(stack, active, deep, schedule)


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="make cost", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack file under stacks/ (dev, prod)")
    args = parser.parse_args(argv)
    try:
        report = build_report(args.stack)
    except StackFileError as error:
        print(f"make cost: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(report.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())

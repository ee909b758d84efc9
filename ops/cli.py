"""Operator CLI: `python -m ops pause|resume|status --stack dev [--dry-run]`.

`--stack` reads the stage, region and stop schedule from `stacks/Pulumi.<stack>.yaml`; `--stage`
(with `--region`, `--schedule`) works without the repository's stack files.

Exit codes: 0 every resource is where it should be (or would be, in a dry run); 1 a resource
failed; 2 bad usage or settings; 3 no resource of this stack was found; 4 some resource was
skipped (busy, or nothing to restore) and is not yet where it should be; 5 AWS could not be asked
(no credentials, no permission to list the stack's resources).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from ops.arguments import Parser
from ops.discovery import Clients, StackTags
from ops.executor import RunResult, run
from ops.schedule import Schedule, ScheduleError
from ops.stack_file import StackFileError, schedule_of, stack_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOTHING_FOUND, EXIT_SKIPPED, EXIT_AWS = 0, 1, 2, 3, 4, 5
COLUMNS = ("kind", "name", "id", "before", "action", "outcome", "after", "note")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = Parser(prog="streamr-ops", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=("pause", "resume", "status"))
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--stack", help="stack file to read stage, region and schedule from (dev, prod)"
    )
    target.add_argument("--stage", help="stage whose resources to act on (dev, prod)")
    parser.add_argument("--project", default="streamr", help="Project tag value (default streamr)")
    parser.add_argument("--region", help="AWS region (default: the AWS CLI configuration)")
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would change; change nothing"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--schedule",
        metavar="PAUSE,RESUME,DAYS,TZ",
        default=os.environ.get("STREAMR_SCHEDULE"),
        help="for status: schedule to compare with (without one, status shows what resume "
        "would do), e.g. '22:00,08:00,mon+tue,Europe/Amsterdam' "
        "(default $STREAMR_SCHEDULE)",
    )
    return parser.parse_args(argv)


def parse_schedule(text: str) -> Schedule:
    parts = text.split(",")
    if len(parts) != 4:
        raise ScheduleError(
            f"--schedule is {text!r}; expected PAUSE,RESUME,DAYS,TZ e.g. 22:00,08:00,mon+fri,UTC"
        )
    pause_at, resume_at, days, timezone = parts
    return Schedule.parse(pause_at, resume_at, days.replace("+", ","), timezone)


def main(
    argv: Sequence[str] | None = None,
    clients: Clients | None = None,
    now: datetime | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        schedule = parse_schedule(args.schedule) if args.schedule else None
        if args.stack is not None:
            schedule = _from_stack_file(args) or schedule
    except (ScheduleError, LookupError) as error:
        print(f"streamr-ops: {error}", file=err)
        return EXIT_USAGE
    if clients is None:
        clients = Clients.from_session(boto3.Session(region_name=args.region))
    stack = StackTags(args.project, args.stage)
    if args.command == "status" and not args.json:
        # What the stack file (or --schedule) says, even when AWS cannot be asked below.
        print(describe_settings(args, stack, schedule), file=out)
    moment = now or datetime.now(UTC)
    try:
        result = _run_command(args, clients, stack, schedule, moment, err)
    except (BotoCoreError, ClientError) as error:
        hint = (
            " (set AWS credentials: aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID)"
            if isinstance(error, NoCredentialsError)
            else ""
        )
        print(
            f"streamr-ops: cannot list {stack.project}/{stack.stage} resources: {error}{hint}",
            file=err,
        )
        return EXIT_AWS
    print(result.to_json() if args.json else render_table(result), file=out)
    return exit_code(result)


def describe_settings(args: argparse.Namespace, stack: StackTags, schedule: Schedule | None) -> str:
    source = f" (from stacks/Pulumi.{args.stack}.yaml)" if args.stack else ""
    region = args.region or "the AWS configuration's region"
    plan = schedule.describe() if schedule else "no stop schedule"
    return f"{stack.project}/{stack.stage} in {region}{source}: {plan}"


def _from_stack_file(args: argparse.Namespace) -> Schedule | None:
    """Fill stage and region from the stack file; return its stop schedule (if it has one)."""
    try:
        config = stack_config(args.stack)
    except StackFileError as error:
        raise LookupError(f"--stack: {error}") from error
    args.stage = config["streamr:stage"]
    args.region = args.region or config.get("aws:region")
    return schedule_of(config)


def _run_command(
    args: argparse.Namespace,
    clients: Clients,
    stack: StackTags,
    schedule: Schedule | None,
    now: datetime,
    err: TextIO,
) -> RunResult:
    common = {"operation": args.command, "progress": lambda message: print(message, file=err)}
    if args.command == "status":
        if schedule is None:
            # Without a schedule, show what a resume would do (the states are the point).
            return run(clients, stack, None, now, requested="running", dry_run=True, **common)
        return run(clients, stack, schedule, now, enforced=True, dry_run=True, **common)
    requested = "paused" if args.command == "pause" else "running"
    return run(clients, stack, schedule, now, requested=requested, dry_run=args.dry_run, **common)


def exit_code(result: RunResult) -> int:
    if not result.items:
        return EXIT_NOTHING_FOUND
    if result.failed:
        return EXIT_FAILED
    if result.skipped:
        return EXIT_SKIPPED
    return EXIT_OK


def render_table(result: RunResult) -> str:
    """A fixed-width table of every resource, then a one-line summary."""
    rows = [
        (
            item.kind,
            item.name,
            item.id,
            item.before,
            item.action,
            item.outcome,
            item.after or "",
            item.error or item.reason,
        )
        for item in result.items
    ]
    widths = [
        max([len(column), *(len(row[i]) for row in rows)]) for i, column in enumerate(COLUMNS)
    ]
    lines = [
        "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip()
        for row in [COLUMNS, *rows]
    ]
    mode = " (dry run)" if result.dry_run else ""
    lines.append(
        f"{result.operation}{mode} {result.project}/{result.stage}: "
        f"{len(result.items)} resource(s), {len(result.failed)} failed, "
        f"{len(result.skipped)} skipped"
    )
    return "\n".join(lines)

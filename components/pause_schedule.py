"""The stop schedule: EventBridge Scheduler runs `ops/` in a Lambda that pauses and resumes.

Three schedules in the operator's timezone: `pause` and `resume` at the configured local times and
weekdays, and `enforce` every few hours, which re-applies the schedule's state (e.g. stops a
database AWS started by itself after 7 days). On a deep pause there is one schedule instead, which
holds everything paused. With an idle pause, `enforce` runs every few minutes and pauses when the
coordinator reports no activity for `idle_pause_minutes` (inside the stop window also when it does
not answer, i.e. is paused: a platform woken at night stays while in use); the function may then
read the ops token's parameter, and nothing else; for an idle deep pause it also keeps when it
idle-paused in one SSM parameter, which the wake endpoint reads (ops/idle_deep.py). The function
may change only resources tagged with this stack's `Project` and `Stage`; the scheduler may only
invoke the function. Failed runs are retried, then land in a dead-letter queue, and either raises
an alarm.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.iam import assumed_by
from components.pause_permissions import function_policy, scheduler_policy

OPS_DIR = Path(__file__).resolve().parent.parent / "ops"
HANDLER = "ops.handler.lambda_handler"
# Lambda stops a run at 15 minutes; the executor's phases must finish well inside that.
TIMEOUT_SECONDS = 900
RDS_WAIT_SECONDS = 480
EC2_WAIT_SECONDS = 240
# Days: EventBridge Scheduler's cron weekday names.
CRON_DAYS = {
    "mon": "MON",
    "tue": "TUE",
    "wed": "WED",
    "thu": "THU",
    "fri": "FRI",
    "sat": "SAT",
    "sun": "SUN",
}


@dataclass
class PauseScheduleArgs:
    project: str
    stage: str
    timezone: str
    # Topic the error alarms notify (monitoring's).
    alarm_topic_arn: pulumi.Input[str]
    tags: Mapping[str, str]
    # Local times and weekdays of the stop schedule; None with `deep_pause` only.
    pause_at: time | None = None
    resume_at: time | None = None
    weekdays: tuple[str, ...] = ()
    # Deep pause: hold everything paused (one enforcement schedule, nothing resumes).
    deep_pause: bool = False
    enforce_every_hours: int = 3
    # Idle pause: after this many minutes without activity, as the coordinator at
    # `coordinator_url` reports it to the token in the parameter `ops_token_parameter` (its name;
    # all three or none).
    idle_pause_minutes: int | None = None
    coordinator_url: pulumi.Input[str] | None = None
    ops_token_parameter: pulumi.Input[str] | None = None
    idle_check_every_minutes: int = 5
    # Keep when the idle pause happened (and clear it on resume) for the idle deep pause.
    record_idle_pauses: bool = False
    log_retention_days: int = 30


@dataclass(frozen=True)
class ScheduleSpec:
    """One EventBridge schedule: when, and what the function is asked to do."""

    purpose: str
    expression: str
    action: str
    description: str


def schedule_specs(args: PauseScheduleArgs) -> list[ScheduleSpec]:
    """The schedules for these settings (a decision, no resources)."""
    every = f"rate({args.enforce_every_hours} hours)"
    if args.deep_pause:
        return [
            ScheduleSpec(
                "hold-paused", every, "pause", "Deep pause: keep everything stopped (idempotent)"
            )
        ]
    idle = args.idle_pause_minutes is not None
    if idle:
        every = f"rate({args.idle_check_every_minutes} minutes)"
    enforce = ScheduleSpec(
        "enforce",
        every,
        "enforce",
        "Re-apply the schedule's state; pause when idle"
        if idle
        else "Re-apply the schedule's state",
    )
    if idle and args.pause_at is None and args.resume_at is None:
        return [enforce]
    if args.pause_at is None or args.resume_at is None or not args.weekdays:
        raise ValueError("a stop schedule needs pause_at, resume_at and weekdays")
    unknown = [day for day in args.weekdays if day not in CRON_DAYS]
    if unknown:
        raise ValueError(f"unknown weekday(s) {unknown}; allowed values: {', '.join(CRON_DAYS)}")
    days = ",".join(CRON_DAYS[day] for day in args.weekdays)
    return [
        ScheduleSpec("pause", _cron(args.pause_at, days), "pause", "Stop the platform"),
        ScheduleSpec("resume", _cron(args.resume_at, days), "resume", "Start the platform"),
        enforce,
    ]


def _cron(at: time, days: str) -> str:
    return f"cron({at.minute} {at.hour} ? * {days} *)"


def idle_record_parameter_name(project: str, stage: str) -> str:
    return f"/{project}/{stage}/idle-pause-record"


def ops_archive() -> pulumi.AssetArchive:
    """`ops/` as the package the handler imports (sources only, no bytecode caches)."""
    return pulumi.AssetArchive(
        {f"ops/{path.name}": pulumi.FileAsset(str(path)) for path in sorted(OPS_DIR.glob("*.py"))}
    )


class PauseSchedule(pulumi.ComponentResource):
    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    dead_letter_queue_url: pulumi.Output[str]
    # The idle pause's record (with `record_idle_pauses`), for the wake endpoint to read.
    idle_record_parameter: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: PauseScheduleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        idle = (args.idle_pause_minutes, args.coordinator_url, args.ops_token_parameter)
        if any(value is not None for value in idle) and any(value is None for value in idle):
            raise ValueError(
                "an idle pause needs idle_pause_minutes, coordinator_url and ops_token_parameter"
            )
        if args.record_idle_pauses and (args.idle_pause_minutes is None or args.deep_pause):
            raise ValueError("record_idle_pauses needs an idle pause (and no deep pause)")
        super().__init__("streamr:ops:PauseSchedule", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        specs = schedule_specs(args)
        partition = aws.get_partition(opts=invoke).partition
        region = aws.get_region(opts=invoke).region
        account = aws.get_caller_identity(opts=invoke).account_id

        # Created before the function so Lambda never makes its own, retention-less group.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            retention_in_days=args.log_retention_days,
            tags=_tagged(args.tags, f"{name}-logs"),
            opts=child,
        )
        dead_letters = aws.sqs.Queue(
            f"{name}-dlq",
            message_retention_seconds=14 * 24 * 3600,
            sqs_managed_sse_enabled=True,
            tags=_tagged(args.tags, f"{name}-dlq"),
            opts=child,
        )
        idle_record = None
        idle_record_arn = None
        if args.record_idle_pauses:
            parameter_name = idle_record_parameter_name(args.project, args.stage)
            idle_record = aws.ssm.Parameter(
                f"{name}-idle-record",
                name=parameter_name,
                type="String",
                value="{}",
                description="When the idle pause stopped the platform (the function writes it)",
                tags=_tagged(args.tags, f"{name}-idle-record"),
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["value"]),
            )
            idle_record_arn = f"arn:{partition}:ssm:{region}:{account}:parameter{parameter_name}"
        function_role = aws.iam.Role(
            f"{name}-function-role",
            assume_role_policy=assumed_by("lambda.amazonaws.com"),
            tags=_tagged(args.tags, f"{name}-function-role"),
            opts=child,
        )
        function_role_policy = aws.iam.RolePolicy(
            f"{name}-function-policy",
            role=function_role.id,
            policy=pulumi.Output.all(
                log_group.arn, dead_letters.arn, args.ops_token_parameter
            ).apply(
                lambda arns: function_policy(
                    args.project,
                    args.stage,
                    arns[0],
                    arns[1],
                    partition,
                    region,
                    account,
                    None
                    if arns[2] is None
                    else f"arn:{partition}:ssm:{region}:{account}:parameter{arns[2]}",
                    idle_record_arn,
                )
            ),
            opts=child,
        )
        environment: dict[str, pulumi.Input[str]] = {
            "PROJECT": args.project,
            "STAGE": args.stage,
            "TIMEZONE": args.timezone,
            "RDS_WAIT_SECONDS": str(RDS_WAIT_SECONDS),
            "EC2_WAIT_SECONDS": str(EC2_WAIT_SECONDS),
        }
        if not args.deep_pause and args.pause_at is not None and args.resume_at is not None:
            environment |= {
                "PAUSE_AT": f"{args.pause_at:%H:%M}",
                "RESUME_AT": f"{args.resume_at:%H:%M}",
                "WEEKDAYS": ",".join(args.weekdays),
            }
        if not args.deep_pause and args.idle_pause_minutes is not None:
            assert args.coordinator_url is not None and args.ops_token_parameter is not None
            environment |= {
                "IDLE_PAUSE_MINUTES": str(args.idle_pause_minutes),
                "COORDINATOR_URL": args.coordinator_url,
                "OPS_TOKEN_PARAMETER": args.ops_token_parameter,
            }
        if idle_record is not None:
            environment["IDLE_RECORD_PARAMETER"] = idle_record.name
        function = aws.lambda_.Function(
            f"{name}-function",
            description=f"Pause and resume {args.project}-{args.stage} (ops/)",
            runtime="python3.12",
            architectures=["arm64"],
            handler=HANDLER,
            code=ops_archive(),
            role=function_role.arn,
            timeout=TIMEOUT_SECONDS,
            memory_size=256,
            environment={"variables": environment},
            logging_config={"log_format": "JSON", "log_group": log_group.name},
            dead_letter_config={"target_arn": dead_letters.arn},
            tags=_tagged(args.tags, f"{name}-function"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[function_role_policy]),
        )
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-retries",
            function_name=function.name,
            maximum_retry_attempts=2,
            maximum_event_age_in_seconds=3600,
            opts=child,
        )

        scheduler_role = aws.iam.Role(
            f"{name}-scheduler-role",
            assume_role_policy=assumed_by("scheduler.amazonaws.com", account),
            tags=_tagged(args.tags, f"{name}-scheduler-role"),
            opts=child,
        )
        scheduler_role_policy = aws.iam.RolePolicy(
            f"{name}-scheduler-policy",
            role=scheduler_role.id,
            policy=pulumi.Output.all(function.arn, dead_letters.arn).apply(
                lambda arns: scheduler_policy(arns[0], arns[1])
            ),
            opts=child,
        )
        group = aws.scheduler.ScheduleGroup(
            f"{name}-group",
            name=name,
            tags=_tagged(args.tags, f"{name}-group"),
            opts=child,
        )
        for spec in specs:
            aws.scheduler.Schedule(
                f"{name}-{spec.purpose}",
                group_name=group.name,
                description=spec.description,
                schedule_expression=spec.expression,
                schedule_expression_timezone=args.timezone,
                flexible_time_window={"mode": "OFF"},
                target={
                    "arn": function.arn,
                    "role_arn": scheduler_role.arn,
                    "input": json.dumps({"action": spec.action, "dry_run": False}),
                    "retry_policy": {
                        "maximum_retry_attempts": 3,
                        "maximum_event_age_in_seconds": 3600,
                    },
                    "dead_letter_config": {"arn": dead_letters.arn},
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[scheduler_role_policy]),
            )

        def alarm(
            suffix: str,
            description: str,
            namespace: str,
            metric_name: str,
            dimensions: Mapping[str, pulumi.Input[str]],
            statistic: str = "Sum",
        ) -> None:
            aws.cloudwatch.MetricAlarm(
                f"{name}-{suffix}",
                alarm_description=description,
                namespace=namespace,
                metric_name=metric_name,
                dimensions=dimensions,
                evaluation_periods=1,
                period=300,
                statistic=statistic,
                threshold=0,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=[args.alarm_topic_arn],
                ok_actions=[args.alarm_topic_arn],
                tags=_tagged(args.tags, f"{name}-{suffix}"),
                opts=child,
            )

        alarm(
            "errors",
            "A pause/resume run failed (see the function's log group)",
            "AWS/Lambda",
            "Errors",
            {"FunctionName": function.name},
        )
        alarm(
            "dead-letters",
            "A pause/resume run was given up on (dead-letter queue not empty)",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": dead_letters.name},
            statistic="Maximum",
        )

        self.function_name = function.name
        self.function_arn = function.arn
        self.dead_letter_queue_url = dead_letters.url
        self.idle_record_parameter = idle_record.name if idle_record is not None else None
        self.register_outputs(
            {"functionName": self.function_name, "deadLetterQueueUrl": self.dead_letter_queue_url}
        )


def _tagged(tags: Mapping[str, str], name: str) -> dict[str, str]:
    return {**tags, "Name": name}

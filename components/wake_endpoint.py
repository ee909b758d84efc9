"""The wake endpoint: an always-on Lambda function URL that wakes a paused platform (ops/wake*.py).

Public (auth type NONE) so a phone can reach it, but every request that looks at or changes
anything carries the wake token, a generated secret kept in a SecureString parameter. The
function may read the stack's state, read its two secret parameters, keep its record in one SSM
parameter and invoke the pause function (which does the resuming); it can start or stop nothing
itself. With a GitHub repository configured, a second parameter holds a GitHub token the operator
stores (fine-grained, Actions: write on that repository; README "Go live on demand") so a deep
pause can be undone through the pause workflow.

With an idle deep pause, a schedule (EventBridge, every 15 minutes) asks the function to check the
pause function's idle record and dispatch the same workflow's deep pause when the platform has been
idle-paused long enough (ops/idle_deep.py); the function may then read that record, nothing more.
The GitHub token stays readable by this function alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.iam import assumed_by
from components.pause_schedule import ops_archive
from components.secure_parameter import (
    SecureParameter,
    SecureParameterArgs,
    key_statement,
    parameter_name,
)
from ops.idle_deep import CHECK_EVENT

HANDLER = "ops.wake_handler.lambda_handler"
# Looks and a dispatch only: the resume runs in the pause function.
TIMEOUT_SECONDS = 30
# The workflow that un-pauses a deep pause (its `action: resume` input) and the branch it runs on.
WORKFLOW = "pause.yml"
WORKFLOW_REF = "main"
# How often the idle deep pause is checked: a quarter of an hour late on a threshold of hours.
IDLE_DEEP_CHECK_SCHEDULE = "rate(15 minutes)"


@dataclass
class WakeEndpointArgs:
    project: str
    stage: str
    pause_function_name: pulumi.Input[str]
    pause_function_arn: pulumi.Input[str]
    # The stack is deep-paused: a wake dispatches the pause workflow instead of resuming.
    deep_paused: bool
    tags: Mapping[str, str]
    # The SRS origin's address (or `live.<domain>`): "running" once it answers an RTMP connect.
    rtmp_host: pulumi.Input[str] | None = None
    # The coordinator's URL: "running" then also needs its /ready (SRS's on_publish asks it).
    coordinator_url: pulumi.Input[str] | None = None
    # owner/name: with it, a deep wake dispatches the repository's pause workflow.
    github_repository: str | None = None
    # Deep-pause (the workflow's `action: pause`) after this many hours idle-paused, as the pause
    # function's record in `idle_record_parameter` says; needs `github_repository`.
    idle_deep_pause_hours: int | None = None
    idle_record_parameter: pulumi.Input[str] | None = None
    log_retention_days: int = 30


def function_policy(
    log_group_arn: str, token_arns: list[str], parameter_arn: str, pause_function_arn: str,
    idle_record_arn: str | None = None,
) -> str:  # fmt: skip
    """Look, read its tokens, keep its record, ask the pause function to resume, and for the
    idle deep pause read the pause function's idle record: nothing more."""
    statements = [
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{log_group_arn}:*",
        },
        {
            # Describe calls have no resource-level permissions: discovery filters by tag itself.
            "Sid": "Look",
            "Effect": "Allow",
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "ec2:DescribeInstances",
                "rds:DescribeDBInstances",
            ],
            "Resource": "*",
        },
        {
            "Sid": "ReadItsTokens",
            "Effect": "Allow",
            "Action": "ssm:GetParameter",
            "Resource": token_arns,
        },
        key_statement(token_arns, "Decrypt"),
        {
            "Sid": "KeepItsRecord",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:PutParameter"],
            "Resource": parameter_arn,
        },
        {
            "Sid": "AskThePauseFunctionToResume",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": pause_function_arn,
        },
    ]
    if idle_record_arn is not None:
        statements.append(
            {
                "Sid": "ReadTheIdlePauseRecord",
                "Effect": "Allow",
                "Action": "ssm:GetParameter",
                "Resource": idle_record_arn,
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def record_parameter_name(project: str, stage: str) -> str:
    return f"/{project}/{stage}/wake-record"


class WakeEndpoint(pulumi.ComponentResource):
    url: pulumi.Output[str]
    # The parameters' names (what `aws ssm get-parameter --name` takes).
    token_parameter: pulumi.Output[str]
    github_token_parameter: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: WakeEndpointArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        idle_deep = (args.idle_deep_pause_hours, args.idle_record_parameter)
        if any(value is not None for value in idle_deep) and (
            any(value is None for value in idle_deep) or args.github_repository is None
        ):
            raise ValueError(
                "an idle deep pause needs idle_deep_pause_hours, idle_record_parameter and "
                "github_repository"
            )
        super().__init__("streamr:ops:WakeEndpoint", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        partition = aws.get_partition(opts=invoke).partition
        region = aws.get_region(opts=invoke).region
        account = aws.get_caller_identity(opts=invoke).account_id

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            retention_in_days=args.log_retention_days,
            tags=_tagged(args.tags, f"{name}-logs"),
            opts=child,
        )
        # Generated once and kept in state; rotate it by replacing this resource.
        token_value = random.RandomPassword(
            f"{name}-token-value", length=48, special=False, opts=child
        )
        token = SecureParameter(
            f"{name}-token",
            SecureParameterArgs(
                name=parameter_name(name, "token"),
                description=f"Wake token for {args.project}-{args.stage}'s wake endpoint",
                tags=args.tags,
                value=token_value.result,
            ),
            opts=child,
        )
        token_arns: list[pulumi.Input[str]] = [token.arn]
        github_token = None
        if args.github_repository is not None:
            # The operator stores the value (aws ssm put-parameter); never in config.
            github_token = SecureParameter(
                f"{name}-github-token",
                SecureParameterArgs(
                    name=parameter_name(name, "github-token"),
                    description=f"GitHub token that may dispatch {WORKFLOW} in "
                    f"{args.github_repository} (Actions: write)",
                    tags=args.tags,
                ),
                opts=child,
            )
            token_arns.append(github_token.arn)
        record_name = record_parameter_name(args.project, args.stage)
        record = aws.ssm.Parameter(
            f"{name}-record",
            name=record_name,
            type="String",
            value="{}",
            description="The wake endpoint's record of the last wake (it writes the value)",
            tags=_tagged(args.tags, f"{name}-record"),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["value"]),
        )
        parameter_prefix = f"arn:{partition}:ssm:{region}:{account}:parameter"
        parameter_arn = parameter_prefix + record_name
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=assumed_by("lambda.amazonaws.com"),
            tags=_tagged(args.tags, f"{name}-role"),
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.all(
                log_group.arn,
                pulumi.Output.all(*token_arns),
                args.pause_function_arn,
                args.idle_record_parameter,
            ).apply(
                lambda v: function_policy(
                    v[0],
                    list(v[1]),
                    parameter_arn,
                    v[2],
                    None if v[3] is None else parameter_prefix + v[3],
                )
            ),
            opts=child,
        )
        environment: dict[str, pulumi.Input[str]] = {
            "PROJECT": args.project,
            "STAGE": args.stage,
            "WAKE_TOKEN_PARAMETER": token.name,
            "RECORD_PARAMETER": record.name,
            "PAUSE_FUNCTION_NAME": args.pause_function_name,
            "DEEP_PAUSED": "true" if args.deep_paused else "false",
        }
        if args.rtmp_host is not None:
            environment["RTMP_HOST"] = args.rtmp_host
        if args.coordinator_url is not None:
            environment["COORDINATOR_URL"] = args.coordinator_url
        if github_token is not None and args.github_repository is not None:
            environment |= {
                "GITHUB_REPOSITORY": args.github_repository,
                "GITHUB_WORKFLOW": WORKFLOW,
                "GITHUB_REF": WORKFLOW_REF,
                "GITHUB_TOKEN_PARAMETER": github_token.name,
            }
        if args.idle_deep_pause_hours is not None and args.idle_record_parameter is not None:
            environment |= {
                "IDLE_DEEP_PAUSE_HOURS": str(args.idle_deep_pause_hours),
                "IDLE_RECORD_PARAMETER": args.idle_record_parameter,
            }
        function = aws.lambda_.Function(
            f"{name}-function",
            description=f"Wake {args.project}-{args.stage} on demand (ops/wake_handler.py)",
            runtime="python3.12",
            architectures=["arm64"],
            handler=HANDLER,
            code=ops_archive(),
            role=role.arn,
            timeout=TIMEOUT_SECONDS,
            memory_size=128,
            environment={"variables": environment},
            logging_config={"log_format": "JSON", "log_group": log_group.name},
            tags=_tagged(args.tags, f"{name}-function"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )
        function_url = aws.lambda_.FunctionUrl(
            f"{name}-url",
            function_name=function.name,
            authorization_type="NONE",
            opts=child,
        )
        # A NONE function URL still needs a resource policy allowing anyone to call it; the
        # wake token is checked by the function itself.
        aws.lambda_.Permission(
            f"{name}-public-url",
            function=function.name,
            action="lambda:InvokeFunctionUrl",
            principal="*",
            function_url_auth_type="NONE",
            opts=child,
        )

        if args.idle_deep_pause_hours is not None:
            check = aws.cloudwatch.EventRule(
                f"{name}-idle-deep-check",
                description=f"Deep-pause {args.project}-{args.stage} once idle-paused "
                f"{args.idle_deep_pause_hours} h (ops/idle_deep.py)",
                schedule_expression=IDLE_DEEP_CHECK_SCHEDULE,
                tags=_tagged(args.tags, f"{name}-idle-deep-check"),
                opts=child,
            )
            invoke_permission = aws.lambda_.Permission(
                f"{name}-idle-deep-check-invoke",
                function=function.name,
                action="lambda:InvokeFunction",
                principal="events.amazonaws.com",
                source_arn=check.arn,
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-idle-deep-check-target",
                rule=check.name,
                arn=function.arn,
                input=json.dumps(CHECK_EVENT),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[invoke_permission]),
            )

        self.url = function_url.function_url
        self.token_parameter = token.name
        self.github_token_parameter = github_token.name if github_token is not None else None
        self.register_outputs({"url": self.url, "tokenParameter": self.token_parameter})


def _tagged(tags: Mapping[str, str], name: str) -> dict[str, str]:
    return {**tags, "Name": name}

"""What the pause function and its scheduler may do (components/pause_schedule.py): IAM documents
as pure functions of the stack's names and ARNs."""

from __future__ import annotations

import json

from components.secure_parameter import key_statement

# Tag keys the function writes (and nothing else): the executor's bookkeeping.
OPS_TAG_KEYS = ("streamr:paused-sizes", "streamr:paused-by-ops")


def function_policy(
    project: str, stage: str, log_group_arn: str, queue_arn: str, partition: str, region: str,
    account: str, ops_token_parameter_arn: str | None = None,
    idle_record_parameter_arn: str | None = None,
) -> str:  # fmt: skip
    """What the function may do: read everything it must discover, change only this stack's."""
    scope = f"{partition}:%s:{region}:{account}"
    this_stack = {"aws:ResourceTag/Project": project, "aws:ResourceTag/Stage": stage}
    this_group = {
        "autoscaling:ResourceTag/Project": project,
        "autoscaling:ResourceTag/Stage": stage,
    }
    only_ops_tags = {"ForAllValues:StringEquals": {"aws:TagKeys": list(OPS_TAG_KEYS)}}
    statements = [
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{log_group_arn}:*",
        },
        {
            "Sid": "DeadLetters",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
        },
        {
            # Describe calls have no resource-level permissions: discovery filters by tag itself.
            "Sid": "Discover",
            "Effect": "Allow",
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "ec2:DescribeInstances",
                "rds:DescribeDBInstances",
            ],
            "Resource": "*",
        },
        {
            "Sid": "ScaleThisStacksGroups",
            "Effect": "Allow",
            "Action": "autoscaling:UpdateAutoScalingGroup",
            "Resource": f"arn:{scope % 'autoscaling'}:autoScalingGroup:*:autoScalingGroupName/*",
            "Condition": {"StringEquals": this_group},
        },
        {
            "Sid": "TagThisStacksGroups",
            "Effect": "Allow",
            "Action": ["autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags"],
            "Resource": f"arn:{scope % 'autoscaling'}:autoScalingGroup:*:autoScalingGroupName/*",
            "Condition": {"StringEquals": this_group, **only_ops_tags},
        },
        {
            "Sid": "StopStartThisStacksInstances",
            "Effect": "Allow",
            "Action": ["ec2:StopInstances", "ec2:StartInstances"],
            "Resource": f"arn:{scope % 'ec2'}:instance/*",
            "Condition": {"StringEquals": this_stack},
        },
        {
            "Sid": "TagThisStacksInstances",
            "Effect": "Allow",
            "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
            "Resource": f"arn:{scope % 'ec2'}:instance/*",
            "Condition": {"StringEquals": this_stack, **only_ops_tags},
        },
        {
            "Sid": "StopStartThisStacksDatabases",
            "Effect": "Allow",
            "Action": ["rds:StopDBInstance", "rds:StartDBInstance"],
            "Resource": f"arn:{scope % 'rds'}:db:*",
            "Condition": {"StringEquals": this_stack},
        },
        {
            "Sid": "TagThisStacksDatabases",
            "Effect": "Allow",
            "Action": ["rds:AddTagsToResource", "rds:RemoveTagsFromResource"],
            "Resource": f"arn:{scope % 'rds'}:db:*",
            "Condition": {"StringEquals": this_stack, **only_ops_tags},
        },
    ]
    if ops_token_parameter_arn is not None:
        statements += [
            {
                "Sid": "ReadTheOpsToken",
                "Effect": "Allow",
                "Action": "ssm:GetParameter",
                "Resource": ops_token_parameter_arn,
            },
            key_statement([ops_token_parameter_arn], "Decrypt"),
        ]
    if idle_record_parameter_arn is not None:
        statements.append(
            {
                "Sid": "KeepTheIdlePauseRecord",
                "Effect": "Allow",
                "Action": "ssm:PutParameter",
                "Resource": idle_record_parameter_arn,
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def scheduler_policy(function_arn: str, queue_arn: str) -> str:
    """The scheduler may invoke this one function and report failed invocations, nothing else."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": function_arn},
                {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn},
            ],
        }
    )

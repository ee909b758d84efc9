"""The coordinator hosts' access: the secrets the stack generates or is given, kept in Secrets
Manager, and the instance role that may read exactly those, pull its image and write its logs.
Children of the coordinator service (`parent`), named from its name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pulumi
import pulumi_aws as aws
import pulumi_random as random

SSM_MANAGED_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
ECR_PULL_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
]


def generated_secret(
    parent: pulumi.Resource, name: str, purpose: str, tags: Mapping[str, str]
) -> aws.secretsmanager.Secret:
    # Generated once and kept in state: stable across `up`s, restarts and instances.
    value = random.RandomPassword(
        f"{name}-{purpose}-value",
        length=64,
        special=False,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return stored_secret(parent, name, purpose, value.result, tags)


def stored_secret(
    parent: pulumi.Resource,
    name: str,
    purpose: str,
    value: pulumi.Input[str],
    tags: Mapping[str, str],
) -> aws.secretsmanager.Secret:
    child = pulumi.ResourceOptions(parent=parent)
    secret = aws.secretsmanager.Secret(
        f"{name}-{purpose}",
        description=f"StreamrP2P coordinator {purpose.replace('-', ' ')}",
        tags=_tagged(tags, f"{name}-{purpose}"),
        opts=child,
    )
    aws.secretsmanager.SecretVersion(
        f"{name}-{purpose}-version",
        secret_id=secret.id,
        secret_string=pulumi.Output.secret(value),
        opts=child,
    )
    return secret


def instance_profile(
    parent: pulumi.Resource,
    name: str,
    tags: Mapping[str, str],
    repository_arn: pulumi.Output[str],
    secret_arns: list[pulumi.Input[str]],
    log_group_arn: pulumi.Output[str],
) -> aws.iam.InstanceProfile:
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        f"{name}-role",
        description="Coordinator hosts: pull its image, read its secrets, write its logs",
        assume_role_policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "ec2.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
        tags=_tagged(tags, f"{name}-role"),
        opts=child,
    )
    aws.iam.RolePolicy(
        f"{name}-policy",
        role=role.id,
        policy=pulumi.Output.json_dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "EcrLogin",
                        "Effect": "Allow",
                        # No resource form exists for this action.
                        "Action": "ecr:GetAuthorizationToken",
                        "Resource": "*",
                    },
                    {
                        "Sid": "PullImage",
                        "Effect": "Allow",
                        "Action": ECR_PULL_ACTIONS,
                        "Resource": repository_arn,
                    },
                    {
                        "Sid": "ReadSecrets",
                        "Effect": "Allow",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": secret_arns,
                    },
                    {
                        "Sid": "WriteLogs",
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": pulumi.Output.concat(log_group_arn, ":log-stream:*"),
                    },
                ],
            }
        ),
        opts=child,
    )
    aws.iam.RolePolicyAttachment(
        f"{name}-ssm", role=role.name, policy_arn=SSM_MANAGED_POLICY, opts=child
    )
    return aws.iam.InstanceProfile(
        f"{name}-profile",
        role=role.name,
        tags=_tagged(tags, f"{name}-profile"),
        opts=child,
    )


def _tagged(tags: Mapping[str, str], resource_name: str) -> dict[str, str]:
    return {**tags, "Name": resource_name}

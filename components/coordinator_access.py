"""The coordinator hosts' access: the secrets the stack generates, kept as SecureString parameters
(components/secure_parameter.py); the instance role that may read exactly those and the database
secret RDS keeps in Secrets Manager, pull its image and write its logs; and,
with edge names (coordinator/src/streamr_coordinator/domain/edge_names.py), a second role that may
change only the edge names' A records and their ACME challenges' TXT records in the stack's hosted
zone: the coordinator container cannot reach the instance's own credentials (IMDS hop limit 1), so
the host assumes this role and hands the container its short-lived credentials. The IAM documents
are pure functions, so tests read them whole. Children of the coordinator service (`parent`),
named from its name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.iam import assumed_by
from components.secure_parameter import (
    SecureParameter,
    SecureParameterArgs,
    parameter_name,
    read_statements,
)

SSM_MANAGED_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
ECR_PULL_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
]


# The one parameter holding, as a JSON object, the values only the coordinator hosts (and the
# operator) read; each party that reads a value too (the SRS origin the hook secret, the idle
# pause the ops token) gets a parameter of its own.
HOST_SECRETS = "host-secrets"


def generated_value(parent: pulumi.Resource, name: str, purpose: str) -> pulumi.Output[str]:
    """A value generated once and kept in state: stable across `up`s, restarts and instances.
    Its resource name is its identity: renamed, a deployed stack would get a new value (a new
    token pepper invalidates every stored token hash)."""
    value = random.RandomPassword(
        f"{name}-{purpose}-value",
        length=64,
        special=False,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return value.result


def generated_secret(
    parent: pulumi.Resource, name: str, purpose: str, tags: Mapping[str, str]
) -> SecureParameter:
    return stored_secret(parent, name, purpose, generated_value(parent, name, purpose), tags)


def host_secrets(
    parent: pulumi.Resource,
    name: str,
    values: Mapping[str, pulumi.Input[str]],
    tags: Mapping[str, str],
) -> SecureParameter:
    """One parameter for `values` (JSON key -> value), which only the coordinator hosts read."""
    return stored_secret(parent, name, HOST_SECRETS, pulumi.Output.json_dumps(dict(values)), tags)


def stored_secret(
    parent: pulumi.Resource,
    name: str,
    purpose: str,
    value: pulumi.Input[str],
    tags: Mapping[str, str],
) -> SecureParameter:
    return SecureParameter(
        f"{name}-{purpose}",
        SecureParameterArgs(
            name=parameter_name(name, purpose),
            description=f"StreamrP2P coordinator {purpose.replace('-', ' ')}",
            tags=tags,
            value=value,
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def instance_profile(
    parent: pulumi.Resource,
    name: str,
    tags: Mapping[str, str],
    repository_arn: pulumi.Output[str],
    parameter_arns: list[pulumi.Input[str]],
    database_secret_arn: pulumi.Input[str],
    log_group_arn: pulumi.Output[str],
    edge_names: tuple[str, str] | None = None,
) -> tuple[aws.iam.InstanceProfile, pulumi.Output[str] | None]:
    """The hosts' instance profile, and with `edge_names` (hosted zone id, edge domain) the edge
    DNS role's ARN, which the hosts may assume."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        f"{name}-role",
        description="Coordinator hosts: pull its image, read its secrets, write its logs",
        assume_role_policy=assumed_by("ec2.amazonaws.com"),
        tags=_tagged(tags, f"{name}-role"),
        opts=child,
    )
    edge_dns_role = None
    if edge_names is not None:
        zone_id, edge_domain = edge_names
        edge_dns_role = aws.iam.Role(
            f"{name}-edge-dns-role",
            description="Coordinator: write edge names' A and ACME TXT records, nothing else",
            assume_role_policy=pulumi.Output.json_dumps(edge_dns_trust(role.arn)),
            max_session_duration=3600,
            tags=_tagged(tags, f"{name}-edge-dns-role"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-edge-dns-policy",
            role=edge_dns_role.id,
            policy=json.dumps(edge_dns_policy(zone_id, edge_domain)),
            opts=child,
        )
    edge_dns_role_arn = edge_dns_role.arn if edge_dns_role is not None else None
    aws.iam.RolePolicy(
        f"{name}-policy",
        role=role.id,
        policy=pulumi.Output.all(
            repository_arn,
            pulumi.Output.all(*parameter_arns),
            database_secret_arn,
            log_group_arn,
            edge_dns_role_arn,
        ).apply(lambda v: json.dumps(host_policy(v[0], list(v[1]), v[2], v[3], v[4]))),
        opts=child,
    )
    aws.iam.RolePolicyAttachment(
        f"{name}-ssm", role=role.name, policy_arn=SSM_MANAGED_POLICY, opts=child
    )
    profile = aws.iam.InstanceProfile(
        f"{name}-profile",
        role=role.name,
        tags=_tagged(tags, f"{name}-profile"),
        opts=child,
    )
    return profile, edge_dns_role_arn


# The record types edge names use: the edge's A record and its challenge's TXT record.
EDGE_RECORD_TYPES = ["A", "TXT"]


def edge_domain_of(domain: str) -> str:
    """Where the edge names live, under the stack's domain."""
    return f"edge.{domain}"


def edge_record_names(edge_domain: str) -> list[str]:
    """The record names the coordinator may change, as Route 53 normalises them for the
    `route53:ChangeResourceRecordSetsNormalizedRecordNames` condition (lower case, no final dot;
    `*` here is the condition's wildcard). The first already covers the second, which says what
    the challenges are."""
    edge_domain = edge_domain.lower().rstrip(".")
    return [f"*.{edge_domain}", f"_acme-challenge.*.{edge_domain}"]


def host_policy(
    repository_arn: str,
    parameter_arns: Sequence[str],
    database_secret_arn: str,
    log_group_arn: str,
    edge_dns_role_arn: str | None,
) -> dict[str, Any]:
    """Pull its image, read its parameters (and no other: Session Manager's managed policy allows
    every parameter) and the RDS-managed database secret, write its logs."""
    statements: list[dict[str, Any]] = [
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
            "Sid": "ReadDatabaseSecret",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": database_secret_arn,
        },
        *read_statements(parameter_arns),
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{log_group_arn}:log-stream:*",
        },
    ]
    if edge_dns_role_arn is not None:
        statements.append(
            {
                "Sid": "AssumeEdgeDnsRole",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": edge_dns_role_arn,
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def edge_dns_trust(host_role_arn: pulumi.Input[str]) -> dict[str, Any]:
    """Only the coordinator hosts' role may assume the edge DNS role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": host_role_arn},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def edge_dns_policy(hosted_zone_id: str, edge_domain: str) -> dict[str, Any]:
    """`ChangeResourceRecordSets` in that one zone, on edge names and their challenges, for A
    and TXT records only: nothing else in the zone (the coordinator's own name, the mesh's, the
    certificate's validation records) can be touched with it."""
    zone = hosted_zone_id.removeprefix("/hostedzone/")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EdgeNameRecords",
                "Effect": "Allow",
                "Action": "route53:ChangeResourceRecordSets",
                "Resource": f"arn:aws:route53:::hostedzone/{zone}",
                "Condition": {
                    # ForAllValues alone would also allow a request without the key.
                    "Null": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": "false"},
                    "ForAllValues:StringLike": {
                        "route53:ChangeResourceRecordSetsNormalizedRecordNames": (
                            edge_record_names(edge_domain)
                        )
                    },
                    "ForAllValues:StringEquals": {
                        "route53:ChangeResourceRecordSetsRecordTypes": EDGE_RECORD_TYPES
                    },
                },
            }
        ],
    }


def _tagged(tags: Mapping[str, str], resource_name: str) -> dict[str, str]:
    return {**tags, "Name": resource_name}

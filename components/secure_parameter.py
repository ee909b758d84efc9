"""A secret kept as a SecureString parameter in SSM Parameter Store, and who may read it.

Standard-tier parameters cost nothing, where a Secrets Manager secret costs $0.40 a month (five
of them were a tenth of the on-demand bill); rotation, which Secrets Manager adds, none of these
values uses (the RDS-managed database password stays in Secrets Manager: RDS rotates it there).
The value is encrypted with the account's `aws/ssm` key, whose key policy lets every principal of
the account decrypt through SSM: what keeps a value to its readers is `ssm:GetParameter`, so the
roles of hosts that also carry AmazonSSMManagedInstanceCore (which allows reading every parameter)
get an explicit deny on all other parameters (`read_statements`).

A value the program generates is written here. A value written from outside the program (the
Headscale host's API key, the operator's GitHub token) starts as `UNSET` and Pulumi leaves the
value alone after that (`ignore_changes`), so an `up` never overwrites what was stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from ops.secure_parameter import UNSET

# Every read of a parameter's value, current or past; GetParameterHistory returns old values too.
READ_ACTIONS = (
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
)


@dataclass
class SecureParameterArgs:
    # The full name, a path: `/<component name>/<purpose>` (parameter_name).
    name: str
    description: str
    tags: Mapping[str, str]
    # None: written from outside the program (created as UNSET, then never changed by Pulumi).
    value: pulumi.Input[str] | None = None


def parameter_name(component_name: str, purpose: str) -> str:
    """Where a component keeps a secret: under its own name, so names never collide."""
    return f"/{component_name}/{purpose}"


class SecureParameter(pulumi.ComponentResource):
    """One SecureString parameter (standard tier). `name` is what readers ask for, `arn` what IAM
    policies name."""

    name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: SecureParameterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("streamr:secrets:SecureParameter", name, None, opts)
        external = args.value is None
        parameter = aws.ssm.Parameter(
            name,
            name=args.name,
            type="SecureString",
            tier="Standard",
            value=pulumi.Output.secret(UNSET if args.value is None else args.value),
            description=args.description,
            tags={**args.tags, "Name": name},
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=["value"] if external else None
            ),
        )
        self.name = parameter.name
        self.arn = parameter.arn
        self.register_outputs({"name": self.name, "arn": self.arn})


def read_statements(parameter_arns: Sequence[str]) -> list[dict[str, Any]]:
    """IAM statements: read (and decrypt) exactly these parameters, and no other parameter even
    where a managed policy allows it (an explicit deny wins)."""
    arns = list(parameter_arns)
    return [
        {
            "Sid": "ReadItsParameters",
            "Effect": "Allow",
            "Action": "ssm:GetParameter",
            "Resource": arns,
        },
        key_statement(arns, "Decrypt"),
        {
            "Sid": "NoOtherParameters",
            "Effect": "Deny",
            "Action": list(READ_ACTIONS),
            "NotResource": arns,
        },
    ]


def write_statements(parameter_arns: Sequence[str]) -> list[dict[str, Any]]:
    """IAM statements for a role that writes these parameters and reads none: put (and encrypt)
    new values, and no parameter read at all even where a managed policy allows it."""
    arns = list(parameter_arns)
    return [
        {
            "Sid": "WriteItsParameters",
            "Effect": "Allow",
            "Action": "ssm:PutParameter",
            "Resource": arns,
        },
        key_statement(arns, "Encrypt"),
        {
            "Sid": "NoOtherParameters",
            "Effect": "Deny",
            "Action": list(READ_ACTIONS),
            "Resource": "*",
        },
    ]


def key_statement(parameter_arns: Sequence[str], action: str) -> dict[str, Any]:
    """kms:Decrypt (to read) or kms:Encrypt (to write) with the key that encrypts these
    parameters, only through SSM and only for them: SSM puts the parameter's ARN in the
    encryption context. The parameters' own ARNs say the partition, region and account."""
    arns = list(parameter_arns)
    partition, _, region, account = arns[0].split(":")[1:5]
    return {
        "Sid": f"{action}ItsParameters",
        "Effect": "Allow",
        "Action": f"kms:{action}",
        "Resource": f"arn:{partition}:kms:{region}:{account}:key/*",
        "Condition": {
            "StringEquals": {
                "kms:ViaService": f"ssm.{region}.amazonaws.com",
                "kms:EncryptionContext:PARAMETER_ARN": arns,
            }
        },
    }

"""RDS PostgreSQL in the private subnets: TLS only, encrypted, password managed by RDS.

RDS generates and rotates the master password in Secrets Manager (`manage_master_user_password`),
so it never appears in code, config, user data or Pulumi state; callers get the secret's ARN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

POSTGRES_PORT = 5432


@dataclass
class DatabaseArgs:
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    # Security groups whose members may connect; nothing else can reach port 5432.
    client_security_group_ids: Sequence[pulumi.Input[str]]
    instance_class: str
    allocated_storage_gb: int
    engine_version: str
    backup_retention_days: int
    multi_az: bool
    deletion_protection: bool
    final_snapshot: bool
    performance_insights: bool
    tags: Mapping[str, str]
    database_name: str = "streamr"
    master_username: str = "streamr"


def parameter_group_family(engine_version: str) -> str:
    """`16` or `16.4` -> `postgres16`: the family follows the major version."""
    return f"postgres{engine_version.split('.')[0]}"


class Database(pulumi.ComponentResource):
    address: pulumi.Output[str]
    port: pulumi.Output[int]
    secret_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    instance_identifier: pulumi.Output[str]
    instance_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("streamr:database:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description="PostgreSQL: reachable only from the client security groups",
            vpc_id=args.vpc_id,
            ingress=[
                {
                    "description": "PostgreSQL from the coordinator",
                    "protocol": "tcp",
                    "from_port": POSTGRES_PORT,
                    "to_port": POSTGRES_PORT,
                    "security_groups": list(args.client_security_group_ids),
                }
            ]
            if args.client_security_group_ids
            else [],
            # The database initiates no connections.
            egress=[],
            tags=_tagged(args.tags, f"{name}-sg"),
            opts=child,
        )
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            description="Private subnets only",
            subnet_ids=list(args.subnet_ids),
            tags=_tagged(args.tags, f"{name}-subnets"),
            opts=child,
        )
        parameters = aws.rds.ParameterGroup(
            f"{name}-params",
            family=parameter_group_family(args.engine_version),
            description="TLS required for every connection",
            parameters=[{"name": "rds.force_ssl", "value": "1", "apply_method": "immediate"}],
            tags=_tagged(args.tags, f"{name}-params"),
            opts=child,
        )
        instance = aws.rds.Instance(
            f"{name}-postgres",
            engine="postgres",
            engine_version=args.engine_version,
            auto_minor_version_upgrade=True,
            # No paid RDS Extended Support: at the end of standard support RDS upgrades instead.
            engine_lifecycle_support="open-source-rds-extended-support-disabled",
            instance_class=args.instance_class,
            allocated_storage=args.allocated_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            db_name=args.database_name,
            username=args.master_username,
            manage_master_user_password=True,
            port=POSTGRES_PORT,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[security_group.id],
            publicly_accessible=False,
            parameter_group_name=parameters.name,
            multi_az=args.multi_az,
            deletion_protection=args.deletion_protection,
            backup_retention_period=args.backup_retention_days,
            copy_tags_to_snapshot=True,
            skip_final_snapshot=not args.final_snapshot,
            final_snapshot_identifier=f"{name}-final" if args.final_snapshot else None,
            performance_insights_enabled=args.performance_insights,
            performance_insights_retention_period=7 if args.performance_insights else None,
            # A new major `engineVersion` (with its parameter-group family, a new auto-named
            # group created before the old one goes) is an in-place upgrade, not a refusal.
            allow_major_version_upgrade=True,
            tags=_tagged(args.tags, f"{name}-postgres"),
            # With deletion protection (prod), Pulumi refuses to delete or replace it as well.
            opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
        )

        self.address = instance.address
        self.port = instance.port
        self.secret_arn = instance.master_user_secrets.apply(_managed_secret_arn)
        self.security_group_id = security_group.id
        self.instance_identifier = instance.identifier
        self.instance_arn = instance.arn
        self.register_outputs(
            {
                "address": self.address,
                "port": self.port,
                "secretArn": self.secret_arn,
                "securityGroupId": self.security_group_id,
                "instanceIdentifier": self.instance_identifier,
                "instanceArn": self.instance_arn,
            }
        )


def _managed_secret_arn(secrets: Sequence[aws.rds.outputs.InstanceMasterUserSecret]) -> str:
    """The ARN of the secret RDS keeps the master password in (set with the password managed)."""
    arn = secrets[0].secret_arn if secrets else None
    if arn is None:
        raise ValueError("RDS returned no managed master user secret")
    return arn


def _tagged(tags: Mapping[str, str], resource_name: str) -> dict[str, str]:
    return {**tags, "Name": resource_name}

"""The Headscale host: mesh control server with embedded DERP relay, on its own Elastic IP.

The Tailscale control protocol and STUN cannot go through the load balancer, so the host sits in a
public subnet with an Elastic IP and exactly three public ports: TCP 443 (control + DERP over
TLS), TCP 80 (Let's Encrypt HTTP-01) and UDP 3478 (STUN). Mesh state (SQLite, keys, certificates)
lives on a separate encrypted EBS volume that survives instance replacement and is snapshotted
daily. The instance creates the coordinator's API key itself and may write only that one
parameter (a SecureString) and read none.

A deep pause deletes the instance (it bills by the hour, and its root volume by the GB): the
Elastic IP, the data volume, the DNS record and the API key's parameter stay, so the mesh's URL,
its state and the coordinator's key are the same when the resume creates the instance again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import assumed_by
from components.secure_parameter import (
    SecureParameter,
    SecureParameterArgs,
    parameter_name,
    write_statements,
)
from headscale import cloud_init, render

AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
ANYWHERE = "0.0.0.0/0"
# (protocol, port, why): the only ways in from the internet.
PUBLIC_PORTS = (
    ("tcp", render.HTTPS_PORT, "Tailscale control protocol and DERP relay over TLS"),
    ("tcp", 80, "Let's Encrypt HTTP-01 challenge"),
    ("udp", render.STUN_PORT, "STUN for NAT traversal"),
)
DATA_DEVICE = "/dev/sdf"
SSM_CORE_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
DLM_SERVICE_POLICY = "arn:aws:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"


@dataclass
class HeadscaleHostArgs:
    vpc_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]  # a public subnet
    availability_zone: str  # the subnet's zone: the data volume must live there too
    instance_type: str
    # DNS name for the server (an A record to `public_ip`: made here in `hosted_zone_id`, else the
    # operator's job). None: a try-out name `<ip-dashed>.sslip.io` from the public wildcard-DNS
    # service sslip.io (dev only; it shares Let's Encrypt's quota with every sslip.io user).
    hostname: str | None
    acme_email: str | None
    tags: Mapping[str, str]
    hosted_zone_id: str | None = None
    magic_dns_base_domain: str = "nodes.streamr.internal"
    data_volume_gb: int = 8
    snapshot_retain_days: int = 7
    snapshot_time_utc: str = "03:00"
    # Prod: Pulumi refuses to delete or replace the mesh's data volume (its keys and nodes).
    protect_data: bool = False
    # Deep pause: no instance (what it needs on resume stays, see the module's docstring).
    paused: bool = False


class HeadscaleHost(pulumi.ComponentResource):
    url: pulumi.Output[str]
    public_ip: pulumi.Output[str]
    # Where the host writes the coordinator's API key (the coordinator hosts read it).
    api_key: SecureParameter

    def __init__(
        self, name: str, args: HeadscaleHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("streamr:headscale:HeadscaleHost", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region = aws.get_region(opts=pulumi.InvokeOptions(parent=self)).region

        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description="Headscale: control/DERP (443), ACME (80), STUN (3478)",
            vpc_id=args.vpc_id,
            ingress=[
                {
                    "description": why,
                    "protocol": protocol,
                    "from_port": port,
                    "to_port": port,
                    "cidr_blocks": [ANYWHERE],
                }
                for protocol, port, why in PUBLIC_PORTS
            ],
            egress=[
                {
                    "description": "Release download, Let's Encrypt, AWS APIs, DERP replies",
                    "protocol": "-1",
                    "from_port": 0,
                    "to_port": 0,
                    "cidr_blocks": [ANYWHERE],
                }
            ],
            tags=_tagged(args.tags, f"{name}-sg"),
            opts=child,
        )

        api_key = SecureParameter(
            f"{name}-api-key",
            SecureParameterArgs(
                name=parameter_name(name, "api-key"),
                description="Headscale API key for the coordinator; written by the Headscale host",
                tags=args.tags,
            ),
            opts=child,
        )

        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=assumed_by("ec2.amazonaws.com"),
            tags=_tagged(args.tags, f"{name}-role"),
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-ssm", role=role.name, policy_arn=SSM_CORE_POLICY, opts=child
        )
        aws.iam.RolePolicy(
            f"{name}-write-api-key",
            role=role.id,
            policy=api_key.arn.apply(
                lambda arn: json.dumps(
                    {"Version": "2012-10-17", "Statement": write_statements([arn])}
                )
            ),
            opts=child,
        )
        profile = aws.iam.InstanceProfile(
            f"{name}-profile",
            role=role.name,
            tags=_tagged(args.tags, f"{name}-profile"),
            opts=child,
        )

        address = aws.ec2.Eip(
            f"{name}-eip", domain="vpc", tags=_tagged(args.tags, f"{name}-eip"), opts=child
        )
        if args.hostname is not None and args.hosted_zone_id is not None:
            # Let's Encrypt's HTTP-01 check reaches the host by this name.
            aws.route53.Record(
                f"{name}-dns",
                zone_id=args.hosted_zone_id,
                name=args.hostname,
                type="A",
                ttl=300,
                records=[address.public_ip],
                opts=child,
            )
        snapshot_target = {"StreamrSnapshot": f"{name}-data"}
        data_volume = aws.ebs.Volume(
            f"{name}-data",
            availability_zone=args.availability_zone,
            size=args.data_volume_gb,
            type="gp3",
            encrypted=True,
            tags={**_tagged(args.tags, f"{name}-data"), **snapshot_target},
            # The mesh's identity (keys, nodes, certificates): never deleted with the stack.
            opts=pulumi.ResourceOptions(
                parent=self, retain_on_delete=True, protect=args.protect_data
            ),
        )
        self._snapshots(name, args, snapshot_target)

        self.public_ip = address.public_ip
        self.url = address.public_ip.apply(lambda ip: render.server_url(_settings(args, ip)))
        self.api_key = api_key
        outputs = {"url": self.url, "publicIp": self.public_ip, "apiKeyParameter": api_key.name}
        if args.paused:
            self.register_outputs(outputs)
            return

        user_data = pulumi.Output.all(address.public_ip, data_volume.id, api_key.name).apply(
            lambda values: cloud_init.render_user_data(
                _settings(args, values[0]),
                cloud_init.HostParameters(
                    data_volume_id=values[1], api_key_parameter=values[2], region=region
                ),
            )
        )
        image = aws.ssm.get_parameter(
            name=AMI_PARAMETER, opts=pulumi.InvokeOptions(parent=self)
        ).value
        instance = aws.ec2.Instance(
            f"{name}-host",
            ami=image,
            instance_type=args.instance_type,
            subnet_id=args.subnet_id,
            availability_zone=args.availability_zone,
            vpc_security_group_ids=[security_group.id],
            iam_instance_profile=profile.name,
            associate_public_ip_address=False,
            credit_specification={"cpu_credits": "standard"},
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                "http_put_response_hop_limit": 1,
            },
            root_block_device={
                "encrypted": True,
                "volume_type": "gp3",
                "tags": _tagged(args.tags, f"{name}-root"),
            },
            user_data=user_data,
            user_data_replace_on_change=True,
            tags=_tagged(args.tags, f"{name}-host"),
            # The data volume attaches to one instance at a time: a replacement (new user data)
            # removes the old host first, or the new attachment fails with VolumeInUse.
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=["ami"], delete_before_replace=True
            ),
        )
        aws.ec2.VolumeAttachment(
            f"{name}-data-attachment",
            device_name=DATA_DEVICE,
            volume_id=data_volume.id,
            instance_id=instance.id,
            # Unmount cleanly on replacement: SQLite must not be cut off mid-write.
            stop_instance_before_detaching=True,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        aws.ec2.EipAssociation(
            f"{name}-eip-association",
            allocation_id=address.allocation_id,
            instance_id=instance.id,
            opts=child,
        )
        self.register_outputs(outputs)

    def _snapshots(self, name: str, args: HeadscaleHostArgs, target: dict[str, str]) -> None:
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-dlm-role",
            assume_role_policy=assumed_by("dlm.amazonaws.com"),
            tags=_tagged(args.tags, f"{name}-dlm-role"),
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-dlm-service", role=role.name, policy_arn=DLM_SERVICE_POLICY, opts=child
        )
        aws.dlm.LifecyclePolicy(
            f"{name}-data-snapshots",
            description=f"Daily snapshots of {name} mesh state",
            execution_role_arn=role.arn,
            state="ENABLED",
            policy_details={
                "resource_types": ["VOLUME"],
                "target_tags": target,
                "schedules": [
                    {
                        "name": "daily",
                        "create_rule": {
                            "interval": 24,
                            "interval_unit": "HOURS",
                            "times": args.snapshot_time_utc,
                        },
                        "retain_rule": {"count": args.snapshot_retain_days},
                        "copy_tags": True,
                    }
                ],
            },
            tags=_tagged(args.tags, f"{name}-data-snapshots"),
            opts=child,
        )


def _settings(args: HeadscaleHostArgs, public_ip: str) -> render.HeadscaleSettings:
    return render.HeadscaleSettings(
        hostname=args.hostname or render.sslip_hostname(public_ip),
        public_ipv4=public_ip,
        acme_email=args.acme_email or "",
        magic_dns_base_domain=args.magic_dns_base_domain,
    )


def _tagged(tags: Mapping[str, str], resource_name: str) -> dict[str, str]:
    return {**tags, "Name": resource_name}

"""The SRS origin: where the streamer's OBS pushes RTMP and where viewers and friends' edges pull.

A Graviton instance in a public subnet on an Elastic IP (allocated beforehand by
components/origin_address.py, so the coordinator knows it): a stable RTMP endpoint without a
$16/month network load balancer. Public: RTMP (1935). HTTP (8080: HLS and HTTP-FLV) is public too
on a stack without HTTPS; with HTTPS a browser would refuse http media on the coordinator's https
pages, so viewers reach it through the coordinator's own load balancer instead (a rule on its
HTTPS listener forwards `render.PLAY_PATHS` to a target group of this host) and the port admits
only that load balancer. The HTTP API (1985) admits only the coordinator's security group. The
instance may read exactly the hook secret's parameter and write exactly its own log group; it
joins the mesh as `tag:origin` with a single-use key the coordinator mints for it at boot
(srs/bootstrap.sh).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import assumed_by
from components.secure_parameter import SecureParameter, read_statements
from srs import cloud_init, render

AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
ANYWHERE = "0.0.0.0/0"
RTMP_WHY = "RTMP: the streamer publishes, viewers and edges play"
HTTP_WHY = "HTTP: HLS playlists and segments, HTTP-FLV"
# The viewers' rule on the coordinator's HTTPS listener; its only other rule is the default one.
PLAY_RULE_PRIORITY = 100
# GB of gp3 for the root volume: see the instance's root_block_device.
ROOT_VOLUME_GB = 8
# What the load balancer's target group asks SRS's HTTP port: SRS's HTTP server answers this
# itself, whatever its html folder holds (`/` is 404 on an empty one); scripts/proxied_origin_run.py
# records the real server's answers.
HEALTH_CHECK_PATH = "/api/v1/versions"
HEALTH_CHECK_MATCHER = "200"
SSM_CORE_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


@dataclass
class OriginEntrance:
    """The coordinator's load balancer, where viewers reach the origin under its https origin."""

    https_listener_arn: pulumi.Input[str]
    security_group_id: pulumi.Input[str]


@dataclass
class SrsOriginArgs:
    vpc_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]  # a public subnet
    instance_type: str
    coordinator_security_group_id: pulumi.Input[str]  # may reach the HTTP API (1985)
    coordinator_url: pulumi.Input[str]  # where the hooks go
    hook_secret: SecureParameter  # the coordinator's SRS hook secret
    # The origin's Elastic IP (components/origin_address.py), allocated before the coordinator.
    allocation_id: pulumi.Input[str]
    tags: Mapping[str, str]
    # The coordinator's HTTPS entrance (None without HTTPS: viewers play from 8080 directly).
    entrance: OriginEntrance | None = None
    log_retention_days: int = 30


class SrsOrigin(pulumi.ComponentResource):
    instance_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: SrsOriginArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("streamr:streaming:SrsOrigin", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region = aws.get_region(opts=pulumi.InvokeOptions(parent=self)).region

        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description="SRS origin: RTMP and HTTP public, HTTP API from the coordinator",
            vpc_id=args.vpc_id,
            egress=[
                {
                    "description": "Packages, image pulls, hooks, the mesh, AWS APIs",
                    "protocol": "-1",
                    "from_port": 0,
                    "to_port": 0,
                    "cidr_blocks": [ANYWHERE],
                }
            ],
            tags=_tagged(args.tags, f"{name}-sg"),
            opts=child,
        )
        public = [(render.RTMP_PORT, RTMP_WHY)]
        if args.entrance is None:
            public.append((render.HTTP_PORT, HTTP_WHY))
        for port, why in public:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-in-{port}",
                security_group_id=security_group.id,
                description=why,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_ipv4=ANYWHERE,
                tags=_tagged(args.tags, f"{name}-in-{port}"),
                opts=child,
            )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-in-api",
            security_group_id=security_group.id,
            description="SRS HTTP API: the coordinator only",
            ip_protocol="tcp",
            from_port=render.API_PORT,
            to_port=render.API_PORT,
            referenced_security_group_id=args.coordinator_security_group_id,
            tags=_tagged(args.tags, f"{name}-in-api"),
            opts=child,
        )

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            retention_in_days=args.log_retention_days,
            tags=_tagged(args.tags, f"{name}-logs"),
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
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.all(args.hook_secret.arn, log_group.arn).apply(
                lambda arns: _host_policy(arns[0], arns[1])
            ),
            opts=child,
        )
        profile = aws.iam.InstanceProfile(
            f"{name}-profile",
            role=role.name,
            tags=_tagged(args.tags, f"{name}-profile"),
            opts=child,
        )

        user_data = pulumi.Output.all(
            args.coordinator_url, args.hook_secret.name, log_group.name
        ).apply(
            lambda values: cloud_init.render_user_data(
                render.OriginSettings(coordinator_url=values[0]),
                cloud_init.OriginHost(
                    region=region, hook_secret_parameter=values[1], log_group=values[2]
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
            vpc_security_group_ids=[security_group.id],
            iam_instance_profile=profile.name,
            associate_public_ip_address=False,
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                # 1 hop: the awslogs driver runs in dockerd on the host; the internet-facing SRS
                # container, one hop further, must not reach the instance's credentials.
                "http_put_response_hop_limit": 1,
            },
            root_block_device={
                "encrypted": True,
                "volume_type": "gp3",
                # The AMI's own 8 GB, as the NAT and Headscale hosts have: Amazon Linux (about
                # 2 GB), Docker, Tailscale, the SRS image (hundreds of MB) and the HLS segments,
                # which SRS keeps for the 12 s window plus 30 s before it deletes them (about
                # 16 MB per 3 Mbps stream). Nothing else grows: SRS's container logs nothing to
                # disk (its console goes to CloudWatch) and journald caps itself at 10 % of it.
                "volume_size": ROOT_VOLUME_GB,
                "tags": _tagged(args.tags, f"{name}-root"),
            },
            user_data=user_data,
            user_data_replace_on_change=True,
            tags=_tagged(args.tags, f"{name}-host"),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["ami"]),
        )
        aws.ec2.EipAssociation(
            f"{name}-eip-association",
            allocation_id=args.allocation_id,
            instance_id=instance.id,
            opts=child,
        )

        if args.entrance is not None:
            self._behind(name, args, args.entrance, security_group.id, instance.id)

        self.instance_id = instance.id
        self.register_outputs({"instanceId": self.instance_id})

    def _behind(
        self,
        name: str,
        args: SrsOriginArgs,
        entrance: OriginEntrance,
        security_group_id: pulumi.Output[str],
        instance_id: pulumi.Output[str],
    ) -> None:
        """The coordinator's HTTPS listener forwards the viewers' paths to this host's HTTP port,
        which admits that load balancer only. Children of the origin: a deep pause, which leaves
        the origin out, takes them along."""
        child = pulumi.ResourceOptions(parent=self)
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-in-{render.HTTP_PORT}-alb",
            security_group_id=security_group_id,
            description=f"{HTTP_WHY}: from the coordinator's load balancer only",
            ip_protocol="tcp",
            from_port=render.HTTP_PORT,
            to_port=render.HTTP_PORT,
            referenced_security_group_id=entrance.security_group_id,
            tags=_tagged(args.tags, f"{name}-in-{render.HTTP_PORT}-alb"),
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-alb-out",
            security_group_id=entrance.security_group_id,
            description="SRS origin: HLS and HTTP-FLV for viewers",
            ip_protocol="tcp",
            from_port=render.HTTP_PORT,
            to_port=render.HTTP_PORT,
            referenced_security_group_id=security_group_id,
            tags=_tagged(args.tags, f"{name}-alb-out"),
            opts=child,
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-tg",
            port=render.HTTP_PORT,
            protocol="HTTP",
            target_type="instance",
            vpc_id=args.vpc_id,
            deregistration_delay=30,
            health_check={
                "path": HEALTH_CHECK_PATH,
                "protocol": "HTTP",
                "matcher": HEALTH_CHECK_MATCHER,
                "interval": 15,
                "healthy_threshold": 2,
                "unhealthy_threshold": 3,
            },
            tags=_tagged(args.tags, f"{name}-tg"),
            opts=child,
        )
        aws.lb.TargetGroupAttachment(
            f"{name}-tg-host",
            target_group_arn=target_group.arn,
            target_id=instance_id,
            port=render.HTTP_PORT,
            opts=child,
        )
        aws.lb.ListenerRule(
            f"{name}-play",
            listener_arn=entrance.https_listener_arn,
            priority=PLAY_RULE_PRIORITY,
            conditions=[{"path_pattern": {"values": list(render.PLAY_PATHS)}}],
            actions=[{"type": "forward", "target_group_arn": target_group.arn}],
            tags=_tagged(args.tags, f"{name}-play"),
            opts=child,
        )


def _host_policy(hook_secret_arn: str, log_group_arn: str) -> str:
    """Read the hook secret's parameter (and no other: Session Manager's managed policy would
    allow every parameter); write its own logs. Nothing else."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                *read_statements([hook_secret_arn]),
                {
                    "Sid": "WriteOwnLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": f"{log_group_arn}:*",
                },
            ],
        }
    )


def _tagged(tags: Mapping[str, str], resource_name: str) -> dict[str, str]:
    return {**tags, "Name": resource_name}

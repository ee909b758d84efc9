"""The coordinator in production: image in ECR, launch template, auto scaling group, ALB, secrets
(SecureString parameters).

The earlier system's "green" deploys kept serving old code because EC2 user data never re-ran.
Here the image is referenced by digest inside the user data: a new image is a new launch template
version, and the auto scaling group's instance refresh replaces every instance with it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.coordinator_access import (
    generated_secret,
    generated_value,
    host_secrets,
    instance_profile,
)
from components.coordinator_image import IMAGE_CONTEXT, CoordinatorImage, CoordinatorImageArgs
from components.coordinator_load_balancer import (
    CoordinatorLoadBalancer,
    CoordinatorLoadBalancerArgs,
)
from components.coordinator_user_data import UserDataSettings, render_user_data
from components.secure_parameter import SecureParameter

# Amazon Linux 2023 for arm64, resolved through the public SSM parameter AWS keeps current.
AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
# How long a new instance may fail its health check before the group replaces it; the boot
# (tests/boot) must be serving well within it, and the unhealthy-targets alarm waits it out.
HEALTH_CHECK_GRACE_SECONDS = 300


@dataclass
class CoordinatorServiceArgs:
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    public_subnet_ids: Sequence[pulumi.Input[str]]
    # Private subnets, or the public ones when there is no NAT (then instances get public IPs;
    # their security group still admits only the load balancer).
    instance_subnet_ids: Sequence[pulumi.Input[str]]
    public_instances: bool
    # Owned by the network (the database and cache name it); this component adds its ingress.
    security_group_id: pulumi.Input[str]
    database_address: pulumi.Input[str]
    database_port: pulumi.Input[int]
    database_name: str
    # The RDS-managed master secret: the instances read credentials from it at boot.
    database_secret_arn: pulumi.Input[str]
    instance_type: str
    min_size: int
    max_size: int
    desired_capacity: int
    web_concurrency: int
    tags: Mapping[str, str]
    # The load balancer component's name, which prefixes the ALB's and target group's: AWS
    # allows those 32 characters and Pulumi's suffix takes 8, so it is short (`streamr-prod-web`).
    load_balancer_name: str
    # None when the cache is left out (deep pause): the coordinator runs without Redis.
    cache_address: pulumi.Input[str] | None = None
    cache_port: pulumi.Input[int] | None = None
    cache_auth_token: pulumi.Input[str] | None = None
    # False on a deep pause: the load balancer bills by the hour and cannot be stopped.
    load_balancer: bool = True
    domain: str | None = None
    # An ACM certificate for `domain` (the operator's, or one CoordinatorCertificate issued):
    # adds HTTPS and redirects HTTP to it. The Route 53 zone of `domain`: `domain` is pointed at
    # the load balancer.
    certificate_arn: pulumi.Input[str] | None = None
    hosted_zone_id: str | None = None
    # Edge names under this domain (`edge.<domain>`), whose records the coordinator writes in
    # `hosted_zone_id` (see components/coordinator_access.py); None: no edge names.
    edge_domain: str | None = None
    access_logs: bool = False
    # The mesh: Headscale's URL and the parameter its host writes the coordinator's API key into.
    mesh_url: pulumi.Input[str] | None = None
    mesh_api_key: SecureParameter | None = None
    # The SRS origin's publish (rtmp://<ip>/live) and play (http://<ip>:8080) URLs: the streamer
    # page's publish URL and the viewers' fallback in /api/v1/play.
    origin_publish_url: pulumi.Input[str] | None = None
    origin_play_url: pulumi.Input[str] | None = None
    # The idle pause asks the coordinator's activity with a generated ops token (a secret).
    ops_token: bool = False
    access_log_days: int = 90
    log_retention_days: int = 30
    image_context: Path = IMAGE_CONTEXT


class CoordinatorService(pulumi.ComponentResource):
    """Image, secrets, instances and (unless deeply paused) the load balancer in front of them."""

    url: pulumi.Output[str] | None
    # Its entrance (None on a deep pause): the SRS origin adds its viewers' rule to it.
    load_balancer: CoordinatorLoadBalancer | None
    # The values only its hosts (and the operator) read: token_pepper, admin_token and, with a
    # cache, cache_auth_token, in one parameter (JSON); its name.
    host_secrets_parameter: pulumi.Output[str]
    # The SRS origin reads it too.
    hook_secret: SecureParameter
    # The idle pause's token; its parameter's name.
    ops_token_parameter: pulumi.Output[str] | None
    autoscaling_group_name: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    load_balancer_arn_suffix: pulumi.Output[str] | None
    target_group_arn_suffix: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: CoordinatorServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("streamr:coordinator:CoordinatorService", name, None, opts)
        if not args.min_size <= args.desired_capacity <= args.max_size:
            raise ValueError(
                f"coordinator sizes must satisfy min <= desired <= max, got "
                f"{args.min_size} <= {args.desired_capacity} <= {args.max_size}"
            )
        if args.edge_domain is not None and args.hosted_zone_id is None:
            raise ValueError("edge names need the hosted zone their records go in (hosted_zone_id)")
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        region = aws.get_region(opts=invoke).region

        image = CoordinatorImage(
            name,
            CoordinatorImageArgs(context=args.image_context, tags=args.tags),
            opts=child,
        )

        # Values others read too have a parameter each (least privilege): the hook secret (the SRS
        # origin), the ops token (the idle pause). The rest share one (host_secrets).
        secrets = {
            purpose: generated_secret(self, name, purpose, args.tags)
            for purpose in ("hook-secret", *(["ops-token"] if args.ops_token else []))
        }
        hosts_only = host_secrets(
            self,
            name,
            {
                "token_pepper": generated_value(self, name, "token-pepper"),
                "admin_token": generated_value(self, name, "admin-token"),
                **(
                    {"cache_auth_token": args.cache_auth_token}
                    if args.cache_auth_token is not None
                    else {}
                ),
            },
            args.tags,
        )

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            retention_in_days=args.log_retention_days,
            tags=_tagged(args.tags, f"{name}-logs"),
            opts=child,
        )
        profile, edge_dns_role_arn = instance_profile(
            self,
            name,
            args.tags,
            repository_arn=image.repository_arn,
            parameter_arns=[
                hosts_only.arn,
                *(secret.arn for secret in secrets.values()),
                *([args.mesh_api_key.arn] if args.mesh_api_key is not None else []),
            ],
            database_secret_arn=args.database_secret_arn,
            log_group_arn=log_group.arn,
            edge_names=(args.hosted_zone_id, args.edge_domain)
            if args.edge_domain is not None and args.hosted_zone_id is not None
            else None,
        )

        user_data = pulumi.Output.all(
            image=image.ref,
            log_group=log_group.name,
            database_host=args.database_address,
            database_port=args.database_port,
            database_secret_arn=args.database_secret_arn,
            host_secrets=hosts_only.name,
            hook=secrets["hook-secret"].name,
            cache_host=args.cache_address,
            cache_port=args.cache_port,
            mesh_url=args.mesh_url,
            mesh_api_key=args.mesh_api_key.name if args.mesh_api_key is not None else None,
            origin_publish_url=args.origin_publish_url,
            origin_play_url=args.origin_play_url,
            ops_token=secrets["ops-token"].name if args.ops_token else None,
            edge_dns_role_arn=edge_dns_role_arn,
        ).apply(
            lambda v: render_user_data(
                UserDataSettings(
                    region=region,
                    image=v["image"],
                    log_group=v["log_group"],
                    database_host=v["database_host"],
                    database_port=int(v["database_port"]),
                    database_name=args.database_name,
                    database_secret_arn=v["database_secret_arn"],
                    host_secrets_parameter=v["host_secrets"],
                    hook_secret_parameter=v["hook"],
                    trusted_proxies=[args.vpc_cidr],
                    web_concurrency=args.web_concurrency,
                    cache_host=v["cache_host"],
                    cache_port=v["cache_port"],
                    cache=args.cache_auth_token is not None,
                    mesh_url=v["mesh_url"],
                    mesh_api_key_parameter=v["mesh_api_key"],
                    origin_publish_url=v["origin_publish_url"],
                    origin_play_url=v["origin_play_url"],
                    ops_token_parameter=v["ops_token"],
                    edge_domain=args.edge_domain,
                    edge_zone_id=args.hosted_zone_id if args.edge_domain else None,
                    edge_dns_role_arn=v["edge_dns_role_arn"],
                )
            )
        )

        image_id = aws.ssm.get_parameter(name=AMI_PARAMETER, opts=invoke).value
        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description="Coordinator hosts: the image digest lives in the user data",
            image_id=image_id,
            instance_type=args.instance_type,
            update_default_version=True,
            iam_instance_profile={"arn": profile.arn},
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                # 1 hop: containers on the host cannot reach the instance's credentials.
                "http_put_response_hop_limit": 1,
            },
            block_device_mappings=[
                {
                    "device_name": "/dev/xvda",
                    "ebs": {
                        "volume_size": 20,
                        "volume_type": "gp3",
                        "encrypted": "true",
                        "delete_on_termination": "true",
                    },
                }
            ],
            network_interfaces=[
                {
                    "associate_public_ip_address": "true" if args.public_instances else "false",
                    "security_groups": [args.security_group_id],
                    "delete_on_termination": "true",
                }
            ],
            user_data=user_data.apply(lambda text: base64.b64encode(text.encode()).decode()),
            tag_specifications=[
                {"resource_type": kind, "tags": _tagged(args.tags, f"{name}-instance")}
                for kind in ("instance", "volume")
            ],
            tags=_tagged(args.tags, f"{name}-lt"),
            opts=child,
        )

        target_group_arn = None
        self.load_balancer = None
        self.url = None
        self.load_balancer_arn_suffix = None
        self.target_group_arn_suffix = None
        if args.load_balancer:
            entrance = CoordinatorLoadBalancer(
                args.load_balancer_name,
                CoordinatorLoadBalancerArgs(
                    vpc_id=args.vpc_id,
                    public_subnet_ids=args.public_subnet_ids,
                    instance_security_group_id=args.security_group_id,
                    region=region,
                    tags=args.tags,
                    domain=args.domain,
                    certificate_arn=args.certificate_arn,
                    hosted_zone_id=args.hosted_zone_id,
                    access_logs=args.access_logs,
                    access_log_days=args.access_log_days,
                ),
                opts=child,
            )
            self.load_balancer = entrance
            target_group_arn = entrance.target_group_arn
            self.url = entrance.url
            self.load_balancer_arn_suffix = entrance.load_balancer_arn_suffix
            self.target_group_arn_suffix = entrance.target_group_arn_suffix
        elif args.certificate_arn is not None and args.domain is not None:
            # Deep-paused with a domain: its URL outlives the load balancer (nothing answers
            # there while paused; on resume the domain points at the new load balancer).
            self.url = pulumi.Output.from_input(f"https://{args.domain}")

        group = aws.autoscaling.Group(
            f"{name}-asg",
            min_size=args.min_size,
            max_size=args.max_size,
            desired_capacity=args.desired_capacity,
            vpc_zone_identifiers=list(args.instance_subnet_ids),
            launch_template={
                "id": launch_template.id,
                "version": launch_template.latest_version.apply(str),
            },
            target_group_arns=[target_group_arn] if target_group_arn is not None else [],
            health_check_type="ELB" if target_group_arn is not None else "EC2",
            health_check_grace_period=HEALTH_CHECK_GRACE_SECONDS,
            # Any launch template change (a new image digest) replaces every instance, one
            # healthy replacement before each old instance goes.
            instance_refresh={
                "strategy": "Rolling",
                "preferences": {
                    "min_healthy_percentage": 100,
                    "max_healthy_percentage": 200,
                    "instance_warmup": "120",
                    "skip_matching": True,
                    "auto_rollback": True,
                },
            },
            enabled_metrics=[
                aws.autoscaling.Metric.GROUP_IN_SERVICE_INSTANCES,
                aws.autoscaling.Metric.GROUP_DESIRED_CAPACITY,
                aws.autoscaling.Metric.GROUP_MIN_SIZE,
                aws.autoscaling.Metric.GROUP_MAX_SIZE,
            ],
            tags=[
                {"key": key, "value": value, "propagate_at_launch": False}
                for key, value in _tagged(args.tags, f"{name}-asg").items()
            ],
            # A pause scales the group to zero outside Pulumi; the next `up` must not undo it.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["desired_capacity"]),
        )

        self.host_secrets_parameter = hosts_only.name
        self.hook_secret = secrets["hook-secret"]
        self.ops_token_parameter = secrets["ops-token"].name if args.ops_token else None
        self.autoscaling_group_name = group.name
        self.log_group_name = log_group.name
        self.register_outputs(
            {
                "url": self.url,
                "hostSecretsParameter": self.host_secrets_parameter,
                "hookSecretParameter": self.hook_secret.name,
                "autoscalingGroupName": self.autoscaling_group_name,
                "logGroupName": self.log_group_name,
                "loadBalancerArnSuffix": self.load_balancer_arn_suffix,
                "targetGroupArnSuffix": self.target_group_arn_suffix,
            }
        )


def _tagged(tags: Mapping[str, str], resource_name: str) -> dict[str, str]:
    return {**tags, "Name": resource_name}

"""The coordinator's public entrance: an ALB, its target group and listeners, and access logs.

AWS allows a load balancer or target group name 32 characters and Pulumi appends a hyphen and 7
random ones, so this component's name (which prefixes theirs) stays short: `streamr-prod-web`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

APP_PORT = 8000
HEALTH_PATH = "/health"
ANYWHERE = "0.0.0.0/0"
LOG_DELIVERY_SERVICE_REGIONS = frozenset({"eu-central-2", "eu-south-2", "ap-south-2"})


@dataclass
class CoordinatorLoadBalancerArgs:
    vpc_id: pulumi.Input[str]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    # The coordinator instances' security group: this component admits itself to it.
    instance_security_group_id: pulumi.Input[str]
    region: str
    tags: Mapping[str, str]
    domain: str | None = None
    # An ACM certificate for `domain` (the operator's, or CoordinatorCertificate's, which outlives
    # this component through a deep pause): adds HTTPS and redirects HTTP to it.
    certificate_arn: pulumi.Input[str] | None = None
    # The Route 53 hosted zone of `domain`: `domain` is pointed at the load balancer.
    hosted_zone_id: str | None = None
    access_logs: bool = False
    access_log_days: int = 90


class CoordinatorLoadBalancer(pulumi.ComponentResource):
    """Internet -> ALB (HTTP, or HTTPS with a certificate) -> coordinator port on the instances."""

    url: pulumi.Output[str]
    # The HTTPS listener (None without a certificate): other components add rules to it.
    https_listener_arn: pulumi.Output[str] | None
    security_group_id: pulumi.Output[str]
    target_group_arn: pulumi.Output[str]
    load_balancer_arn_suffix: pulumi.Output[str]
    target_group_arn_suffix: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: CoordinatorLoadBalancerArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("streamr:coordinator:LoadBalancer", name, None, opts)
        if args.certificate_arn is not None and not args.domain:
            raise ValueError("a certificate needs the domain it is issued for")
        if args.hosted_zone_id is not None and not args.domain:
            raise ValueError("a hosted zone needs the domain to point at the load balancer")
        child = pulumi.ResourceOptions(parent=self)
        https = args.certificate_arn is not None
        alb_sg = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            description="Coordinator load balancer: HTTP(S) from the internet",
            vpc_id=args.vpc_id,
            ingress=[
                {
                    "description": f"{label} from the internet",
                    "protocol": "tcp",
                    "from_port": port,
                    "to_port": port,
                    "cidr_blocks": [ANYWHERE],
                }
                for port, label in ((80, "HTTP"), (443, "HTTPS"))
                if port == 80 or https
            ],
            # No inline egress: each target's component adds a rule of its own (the SRS origin
            # its HTTP port), and inline rules would remove those on every update.
            tags=_tagged(args.tags, f"{name}-alb-sg"),
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-to-instances",
            description="Coordinator instances",
            security_group_id=alb_sg.id,
            referenced_security_group_id=args.instance_security_group_id,
            ip_protocol="tcp",
            from_port=APP_PORT,
            to_port=APP_PORT,
            tags=_tagged(args.tags, f"{name}-to-instances"),
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-alb",
            description="Coordinator port from its load balancer only",
            security_group_id=args.instance_security_group_id,
            referenced_security_group_id=alb_sg.id,
            ip_protocol="tcp",
            from_port=APP_PORT,
            to_port=APP_PORT,
            tags=_tagged(args.tags, f"{name}-from-alb"),
            opts=child,
        )
        access_logs: aws.lb.LoadBalancerAccessLogsArgsDict | None = None
        balancer_opts = child
        if args.access_logs:
            bucket, policy = self._access_log_bucket(name, args)
            access_logs = {"bucket": bucket.id, "prefix": "alb", "enabled": True}
            # ELB checks it may write to the bucket when logging is switched on: without the
            # policy in place first, the first `up` fails with Access Denied.
            balancer_opts = pulumi.ResourceOptions(parent=self, depends_on=[policy])
        balancer = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            subnets=list(args.public_subnet_ids),
            security_groups=[alb_sg.id],
            drop_invalid_header_fields=True,
            access_logs=access_logs,
            tags=_tagged(args.tags, f"{name}-alb"),
            opts=balancer_opts,
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-tg",
            port=APP_PORT,
            protocol="HTTP",
            target_type="instance",
            vpc_id=args.vpc_id,
            deregistration_delay=30,
            health_check={
                "path": HEALTH_PATH,
                "protocol": "HTTP",
                "matcher": "200",
                "interval": 15,
                "healthy_threshold": 2,
                "unhealthy_threshold": 3,
            },
            tags=_tagged(args.tags, f"{name}-tg"),
            opts=child,
        )
        forward: list[aws.lb.ListenerDefaultActionArgsDict] = [
            {"type": "forward", "target_group_arn": target_group.arn}
        ]
        redirect: list[aws.lb.ListenerDefaultActionArgsDict] = [
            {
                "type": "redirect",
                "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"},
            }
        ]
        aws.lb.Listener(
            f"{name}-http",
            load_balancer_arn=balancer.arn,
            port=80,
            protocol="HTTP",
            default_actions=redirect if https else forward,
            tags=_tagged(args.tags, f"{name}-http"),
            opts=child,
        )
        if args.hosted_zone_id is not None and args.domain is not None:
            self._alias(name, args.domain, args.hosted_zone_id, balancer)
        if https:
            https_listener = aws.lb.Listener(
                f"{name}-https",
                load_balancer_arn=balancer.arn,
                port=443,
                protocol="HTTPS",
                ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-06",
                certificate_arn=args.certificate_arn,
                default_actions=forward,
                tags=_tagged(args.tags, f"{name}-https"),
                opts=child,
            )
            self.url = pulumi.Output.from_input(f"https://{args.domain}")
            self.https_listener_arn = https_listener.arn
        else:
            self.url = pulumi.Output.concat("http://", balancer.dns_name)
            self.https_listener_arn = None
        self.security_group_id = alb_sg.id
        self.target_group_arn = target_group.arn
        self.load_balancer_arn_suffix = balancer.arn_suffix
        self.target_group_arn_suffix = target_group.arn_suffix
        self.register_outputs(
            {
                "url": self.url,
                "httpsListenerArn": self.https_listener_arn,
                "securityGroupId": self.security_group_id,
                "targetGroupArn": self.target_group_arn,
                "loadBalancerArnSuffix": self.load_balancer_arn_suffix,
                "targetGroupArnSuffix": self.target_group_arn_suffix,
            }
        )

    def _alias(self, name: str, domain: str, zone_id: str, balancer: aws.lb.LoadBalancer) -> None:
        """`domain` -> the load balancer (an alias: no charge, follows the ALB's addresses)."""
        aws.route53.Record(
            f"{name}-dns",
            zone_id=zone_id,
            name=domain,
            type="A",
            aliases=[
                {
                    "name": balancer.dns_name,
                    "zone_id": balancer.zone_id,
                    "evaluate_target_health": True,
                }
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _access_log_bucket(
        self, name: str, args: CoordinatorLoadBalancerArgs
    ) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            f"{name}-alb-logs",
            force_destroy=False,
            tags=_tagged(args.tags, f"{name}-alb-logs"),
            opts=child,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-alb-logs-private",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-alb-logs-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        # ALB access logs support SSE-S3 only (not KMS).
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-alb-logs-encryption",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-alb-logs-expiry",
            bucket=bucket.id,
            rules=[
                {
                    "id": "expire-access-logs",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "expiration": {"days": args.access_log_days},
                }
            ],
            opts=child,
        )
        account = aws.get_caller_identity(opts=pulumi.InvokeOptions(parent=self)).account_id
        policy = aws.s3.BucketPolicy(
            f"{name}-alb-logs-policy",
            bucket=bucket.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "RegionalElbLogDelivery",
                            "Effect": "Allow",
                            "Principal": self._log_delivery_principal(args.region),
                            "Action": "s3:PutObject",
                            "Resource": pulumi.Output.concat(
                                bucket.arn, f"/alb/AWSLogs/{account}/*"
                            ),
                        },
                        {
                            "Sid": "TlsOnly",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        },
                    ],
                }
            ),
            opts=child,
        )
        return bucket, policy

    def _log_delivery_principal(self, region: str) -> dict[str, str]:
        """Who writes ALB access logs: a service principal in regions opened since August 2022,
        the region's Elastic Load Balancing account before that."""
        if region in LOG_DELIVERY_SERVICE_REGIONS:
            return {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
        account = aws.elb.get_service_account(opts=pulumi.InvokeOptions(parent=self))
        return {"AWS": account.arn}


def _tagged(tags: Mapping[str, str], resource_name: str) -> dict[str, str]:
    return {**tags, "Name": resource_name}

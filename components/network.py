"""The VPC: public and private subnets over N availability zones, routing, NAT, flow logs.

Data stores live only in the private subnets. Outbound internet for private hosts goes through the
configured NAT strategy: none, a small Graviton NAT instance (a few dollars a month) or a managed
NAT gateway (about $35 a month, but nothing to patch).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pulumi
import pulumi_aws as aws

NatStrategy = Literal["none", "instance", "gateway"]

# Amazon Linux 2023 for arm64, resolved through the public SSM parameter AWS keeps current.
NAT_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
NAT_USER_DATA = Path(__file__).with_name("nat_instance_user_data.sh")
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class SubnetPlan:
    availability_zone: str
    tier: Literal["public", "private"]
    cidr_block: str


def plan_subnets(vpc_cidr: str, availability_zones: Sequence[str]) -> list[SubnetPlan]:
    """Carve the VPC: one large private and one small public subnet per availability zone.

    The VPC splits into 16 blocks; private subnets take the first blocks (hosts and data stores
    live there), public subnets are carved from the last block (they hold only NAT, load balancer
    and Elastic IP hosts). A /16 gives private /20s and public /24s.
    """
    vpc = ipaddress.IPv4Network(vpc_cidr)
    blocks = list(vpc.subnets(prefixlen_diff=4))
    if len(availability_zones) > len(blocks) - 1:
        raise ValueError(f"{vpc_cidr} cannot hold {len(availability_zones)} availability zones")
    public_blocks = list(blocks[-1].subnets(prefixlen_diff=4))
    plans = [
        SubnetPlan(zone, "private", str(blocks[index]))
        for index, zone in enumerate(availability_zones)
    ]
    plans += [
        SubnetPlan(zone, "public", str(public_blocks[index]))
        for index, zone in enumerate(availability_zones)
    ]
    return plans


@dataclass
class NetworkArgs:
    vpc_cidr: str
    az_count: int
    nat_strategy: NatStrategy
    nat_instance_type: str
    flow_logs: bool
    tags: Mapping[str, str]
    flow_log_retention_days: int = 30


class Network(pulumi.ComponentResource):
    """VPC, subnets, routes, NAT, flow logs, and the coordinator security group.

    The coordinator security group lives here, not in a later coordinator component, because the
    database and cache must name it in their rules while the coordinator needs their endpoints:
    owning it in the network breaks that cycle. It carries egress only; the component that fronts
    the coordinator adds its ingress (from the load balancer) as separate rule resources.
    """

    vpc_id: pulumi.Output[str]
    vpc_cidr: str
    availability_zones: list[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    coordinator_security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("streamr:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        zones = aws.get_availability_zones(
            state="available",
            filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
            opts=pulumi.InvokeOptions(parent=self),
        ).names
        if len(zones) < args.az_count:
            raise ValueError(
                f"the region offers {len(zones)} availability zones, azCount asks {args.az_count}"
            )
        self.availability_zones = sorted(zones)[: args.az_count]
        self.vpc_cidr = args.vpc_cidr

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=_tagged(args.tags, f"{name}-vpc"),
            opts=child,
        )
        # Adopting the default security group strips its allow-all rules: nothing can use it.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            tags=_tagged(args.tags, f"{name}-default-sg"),
            opts=child,
        )
        internet_gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=_tagged(args.tags, f"{name}-igw"), opts=child
        )

        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        for plan in plan_subnets(args.vpc_cidr, self.availability_zones):
            subnet_name = f"{name}-{plan.tier}-{plan.availability_zone}"
            subnet = aws.ec2.Subnet(
                subnet_name,
                vpc_id=vpc.id,
                cidr_block=plan.cidr_block,
                availability_zone=plan.availability_zone,
                # Public hosts get addresses on purpose (Elastic IPs, NAT), never by default.
                map_public_ip_on_launch=False,
                tags={**_tagged(args.tags, subnet_name), "Tier": plan.tier},
                opts=child,
            )
            (public_subnets if plan.tier == "public" else private_subnets).append(subnet)

        public_routes = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=vpc.id,
            routes=[{"cidr_block": ANYWHERE, "gateway_id": internet_gateway.id}],
            tags=_tagged(args.tags, f"{name}-public-rt"),
            opts=child,
        )
        private_routes = aws.ec2.RouteTable(
            f"{name}-private-rt",
            vpc_id=vpc.id,
            tags=_tagged(args.tags, f"{name}-private-rt"),
            opts=child,
        )
        for subnet, zone in zip(public_subnets, self.availability_zones, strict=True):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}-rta",
                subnet_id=subnet.id,
                route_table_id=public_routes.id,
                opts=child,
            )
        for subnet, zone in zip(private_subnets, self.availability_zones, strict=True):
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}-rta",
                subnet_id=subnet.id,
                route_table_id=private_routes.id,
                opts=child,
            )

        if args.nat_strategy == "instance":
            self._nat_instance(name, args, vpc, public_subnets[0], private_routes)
        elif args.nat_strategy == "gateway":
            self._nat_gateway(name, args, public_subnets[0], private_routes, internet_gateway)

        if args.flow_logs:
            self._flow_logs(name, args, vpc)

        coordinator_sg = aws.ec2.SecurityGroup(
            f"{name}-coordinator-sg",
            description="Coordinator instances: the only clients of the database and cache",
            vpc_id=vpc.id,
            egress=[
                {
                    "description": "HTTPS to AWS APIs, ECR and Headscale",
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "cidr_blocks": [ANYWHERE],
                },
                {
                    "description": "Database, cache and hosts inside the VPC",
                    "protocol": "tcp",
                    "from_port": 0,
                    "to_port": 65535,
                    "cidr_blocks": [args.vpc_cidr],
                },
            ],
            tags=_tagged(args.tags, f"{name}-coordinator-sg"),
            opts=child,
        )

        self.vpc_id = vpc.id
        self.public_subnet_ids = [subnet.id for subnet in public_subnets]
        self.private_subnet_ids = [subnet.id for subnet in private_subnets]
        self.coordinator_security_group_id = coordinator_sg.id
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
                "coordinatorSecurityGroupId": self.coordinator_security_group_id,
            }
        )

    def _nat_instance(
        self,
        name: str,
        args: NetworkArgs,
        vpc: aws.ec2.Vpc,
        public_subnet: aws.ec2.Subnet,
        private_routes: aws.ec2.RouteTable,
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        nat_sg = aws.ec2.SecurityGroup(
            f"{name}-nat-sg",
            description="NAT instance: forwards traffic from the VPC only",
            vpc_id=vpc.id,
            ingress=[
                {
                    "description": "Everything the private subnets send out",
                    "protocol": "-1",
                    "from_port": 0,
                    "to_port": 0,
                    "cidr_blocks": [args.vpc_cidr],
                }
            ],
            egress=[
                {
                    "description": "Forwarded traffic to the internet",
                    "protocol": "-1",
                    "from_port": 0,
                    "to_port": 0,
                    "cidr_blocks": [ANYWHERE],
                }
            ],
            tags=_tagged(args.tags, f"{name}-nat-sg"),
            opts=child,
        )
        image = aws.ssm.get_parameter(
            name=NAT_AMI_PARAMETER, opts=pulumi.InvokeOptions(parent=self)
        ).value
        nat = aws.ec2.Instance(
            f"{name}-nat",
            ami=image,
            instance_type=args.nat_instance_type,
            subnet_id=public_subnet.id,
            vpc_security_group_ids=[nat_sg.id],
            associate_public_ip_address=True,
            source_dest_check=False,
            # Standard credits: a busy NAT must not run up t4g "unlimited" surplus charges.
            credit_specification={"cpu_credits": "standard"},
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                "http_put_response_hop_limit": 1,
            },
            root_block_device={"encrypted": True, "volume_type": "gp3"},
            user_data=NAT_USER_DATA.read_text(),
            user_data_replace_on_change=True,
            tags=_tagged(args.tags, f"{name}-nat"),
            volume_tags=_tagged(args.tags, f"{name}-nat"),
            # A new AMI every few weeks must not replace the NAT (and cut egress) on every `up`;
            # replace it deliberately with `pulumi up --replace <urn>`.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["ami"]),
        )
        aws.ec2.Route(
            f"{name}-private-default-route",
            route_table_id=private_routes.id,
            destination_cidr_block=ANYWHERE,
            network_interface_id=nat.primary_network_interface_id,
            opts=child,
        )

    def _nat_gateway(
        self,
        name: str,
        args: NetworkArgs,
        public_subnet: aws.ec2.Subnet,
        private_routes: aws.ec2.RouteTable,
        internet_gateway: aws.ec2.InternetGateway,
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        address = aws.ec2.Eip(
            f"{name}-nat-eip", domain="vpc", tags=_tagged(args.tags, f"{name}-nat-eip"), opts=child
        )
        gateway = aws.ec2.NatGateway(
            f"{name}-nat-gw",
            allocation_id=address.id,
            subnet_id=public_subnet.id,
            connectivity_type="public",
            tags=_tagged(args.tags, f"{name}-nat-gw"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[internet_gateway]),
        )
        aws.ec2.Route(
            f"{name}-private-default-route",
            route_table_id=private_routes.id,
            destination_cidr_block=ANYWHERE,
            nat_gateway_id=gateway.id,
            opts=child,
        )

    def _flow_logs(self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc) -> None:
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        account = aws.get_caller_identity(opts=invoke).account_id
        partition = aws.get_partition(opts=invoke).partition
        region = aws.get_region(opts=invoke).region

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            retention_in_days=args.flow_log_retention_days,
            tags=_tagged(args.tags, f"{name}-flow-logs"),
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            description="Lets VPC Flow Logs write this VPC's records to its log group",
            assume_role_policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            # Confused-deputy guard: only flow logs of this account may assume it.
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": account},
                                "ArnLike": {
                                    "aws:SourceArn": (
                                        f"arn:{partition}:ec2:{region}:{account}:vpc-flow-log/*"
                                    )
                                },
                            },
                        }
                    ],
                }
            ),
            tags=_tagged(args.tags, f"{name}-flow-logs-role"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-policy",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": [
                                "logs:CreateLogStream",
                                "logs:PutLogEvents",
                                "logs:DescribeLogStreams",
                            ],
                            "Resource": [
                                log_group.arn,
                                pulumi.Output.concat(log_group.arn, ":log-stream:*"),
                            ],
                        }
                    ],
                }
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=600,
            tags=_tagged(args.tags, f"{name}-flow-log"),
            opts=child,
        )


def _tagged(tags: Mapping[str, str], resource_name: str) -> dict[str, str]:
    return {**tags, "Name": resource_name}

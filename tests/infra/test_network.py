"""The network component: subnet plan, routing per NAT strategy, the NAT instance, flow logs, and
the exact security-group rules."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.network import NAT_AMI_PARAMETER, NAT_USER_DATA, Network, NetworkArgs, plan_subnets
from offline.harness import ProgramFailed, ProgramRun, run_component
from tests.infra.support import rule_set

TAGS = {"Project": "streamr", "Stage": "dev", "ManagedBy": "pulumi"}


def network(preview: bool = False, **overrides: Any) -> ProgramRun:
    """The network component alone, as a program of its own."""
    settings: dict[str, Any] = {
        "vpc_cidr": "10.0.0.0/16",
        "az_count": 2,
        "nat_strategy": "instance",
        "nat_instance_type": "t4g.nano",
        "flow_logs": False,
        "tags": TAGS,
        **overrides,
    }

    def component() -> dict[str, Any]:
        built = Network("net", NetworkArgs(**settings))
        return {
            "vpcId": built.vpc_id,
            "public": built.public_subnet_ids,
            "private": built.private_subnet_ids,
            "zones": built.availability_zones,
        }

    return run_component(component, preview=preview)


def subnets(run: ProgramRun, tier: str) -> list[Any]:
    return [
        subnet
        for subnet in run.of_type("aws:ec2/subnet:Subnet")
        if subnet.inputs["tags"]["Tier"] == tier
    ]


def default_route_target(run: ProgramRun) -> dict[str, Any] | None:
    """The private route table's default route, if any, as its inputs."""
    private_table = run.named("net-private-rt")
    assert "routes" not in private_table.inputs  # only separate route resources
    routes = run.of_type("aws:ec2/route:Route")
    if not routes:
        return None
    (route,) = routes
    assert route.inputs["routeTableId"] == private_table.id
    assert route.inputs["destinationCidrBlock"] == "0.0.0.0/0"
    return route.inputs


# -- the subnet plan (pure) ---------------------------------------------------------------------


def test_a_16_gives_private_20s_and_public_24s() -> None:
    plans = plan_subnets("10.0.0.0/16", ["eu-west-1a", "eu-west-1b"])
    assert [(p.tier, p.availability_zone, p.cidr_block) for p in plans] == [
        ("private", "eu-west-1a", "10.0.0.0/20"),
        ("private", "eu-west-1b", "10.0.16.0/20"),
        ("public", "eu-west-1a", "10.0.240.0/24"),
        ("public", "eu-west-1b", "10.0.241.0/24"),
    ]


@given(
    prefix=st.integers(min_value=16, max_value=18),
    second_octet=st.integers(min_value=0, max_value=255),
    zones=st.integers(min_value=1, max_value=3),
)
def test_subnets_never_overlap_and_stay_inside_the_vpc(
    prefix: int, second_octet: int, zones: int
) -> None:
    vpc = ipaddress.IPv4Network(f"10.{second_octet}.0.0/{prefix}", strict=False)
    names = [f"zone-{index}" for index in range(zones)]
    plans = plan_subnets(str(vpc), names)
    networks = [ipaddress.IPv4Network(plan.cidr_block) for plan in plans]
    assert all(network.subnet_of(vpc) for network in networks)
    for index, first in enumerate(networks):
        assert not any(first.overlaps(second) for second in networks[index + 1 :])
    for tier in ("public", "private"):
        assert [p.availability_zone for p in plans if p.tier == tier] == names
    # ALB and NAT need room: public subnets keep at least a /26 (59 usable addresses).
    assert all(
        n.prefixlen <= 26 for n, p in zip(networks, plans, strict=True) if p.tier == "public"
    )


# -- the component ------------------------------------------------------------------------------


@pytest.mark.parametrize("zones", [2, 3])
def test_one_public_and_one_private_subnet_per_zone(zones: int) -> None:
    run = network(az_count=zones)
    expected = [f"eu-west-1{letter}" for letter in "abc"[:zones]]
    assert run.outputs["zones"] == expected
    for tier in ("public", "private"):
        found = subnets(run, tier)
        assert sorted(s.inputs["availabilityZone"] for s in found) == expected
        # Nothing gets a public address just by being launched into a subnet.
        assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in found)
    assert len(run.outputs["public"]) == len(run.outputs["private"]) == zones


def test_only_public_subnets_route_to_the_internet_gateway() -> None:
    run = network()
    gateway = run.one("aws:ec2/internetGateway:InternetGateway")
    public_table = run.named("net-public-rt")
    assert public_table.inputs["routes"] == [{"cidrBlock": "0.0.0.0/0", "gatewayId": gateway.id}]
    table_of = {
        a.inputs["subnetId"]: a.inputs["routeTableId"]
        for a in run.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    }
    assert {table_of[s.id] for s in subnets(run, "public")} == {public_table.id}
    assert {table_of[s.id] for s in subnets(run, "private")} == {run.named("net-private-rt").id}


def test_nat_strategy_none_gives_private_subnets_no_way_out() -> None:
    run = network(nat_strategy="none")
    assert default_route_target(run) is None
    assert not run.of_type("aws:ec2/instance:Instance")
    assert not run.of_type("aws:ec2/natGateway:NatGateway")


def test_nat_strategy_gateway_routes_through_one_nat_gateway_in_a_public_subnet() -> None:
    run = network(nat_strategy="gateway")
    gateway = run.one("aws:ec2/natGateway:NatGateway")
    address = run.one("aws:ec2/eip:Eip")
    assert gateway.inputs["allocationId"] == address.id
    assert address.inputs["domain"] == "vpc"
    assert gateway.inputs["subnetId"] in {s.id for s in subnets(run, "public")}
    assert default_route_target(run) == {
        "routeTableId": run.named("net-private-rt").id,
        "destinationCidrBlock": "0.0.0.0/0",
        "natGatewayId": gateway.id,
    }
    assert not run.of_type("aws:ec2/instance:Instance")


def test_nat_strategy_instance_is_a_hardened_graviton_router() -> None:
    run = network(nat_strategy="instance")
    nat = run.one("aws:ec2/instance:Instance")
    inputs = nat.inputs
    assert inputs["instanceType"] == "t4g.nano"
    assert inputs["sourceDestCheck"] is False
    assert inputs["associatePublicIpAddress"] is True
    assert inputs["subnetId"] in {s.id for s in subnets(run, "public")}
    assert inputs["metadataOptions"]["httpTokens"] == "required"
    assert inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert inputs["rootBlockDevice"]["encrypted"] is True
    assert inputs["creditSpecification"] == {"cpuCredits": "standard"}
    assert "keyName" not in inputs  # no SSH key: nothing logs in to a NAT
    assert inputs["userDataReplaceOnChange"] is True
    assert inputs["userData"] == NAT_USER_DATA.read_text()
    assert inputs["ami"].startswith("ami-")
    assert default_route_target(run) == {
        "routeTableId": run.named("net-private-rt").id,
        "destinationCidrBlock": "0.0.0.0/0",
        "networkInterfaceId": nat.outputs["primaryNetworkInterfaceId"],
    }


def test_the_nat_image_is_amazon_linux_2023_for_arm() -> None:
    assert NAT_AMI_PARAMETER.endswith("al2023-ami-kernel-default-arm64")


def test_the_nat_security_group_admits_only_the_vpc() -> None:
    run = network(nat_strategy="instance", vpc_cidr="10.8.0.0/16")
    group = run.named("net-nat-sg")
    assert rule_set(run, group, "ingress") == {("-1", 0, 0, frozenset({"10.8.0.0/16"}))}
    assert rule_set(run, group, "egress") == {("-1", 0, 0, frozenset({"0.0.0.0/0"}))}
    assert run.one("aws:ec2/instance:Instance").inputs["vpcSecurityGroupIds"] == [group.id]


def test_the_default_security_group_is_stripped_of_all_rules() -> None:
    run = network()
    default = run.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default.inputs["vpcId"] == run.outputs["vpcId"]
    assert "ingress" not in default.inputs
    assert "egress" not in default.inputs


def test_the_coordinator_security_group_has_least_privilege_egress_and_no_inline_ingress() -> None:
    run = network(vpc_cidr="10.4.0.0/16")
    group = run.named("net-coordinator-sg")
    assert rule_set(run, group, "egress") == {
        ("tcp", 443, 443, frozenset({"0.0.0.0/0"})),
        ("tcp", 0, 65535, frozenset({"10.4.0.0/16"})),
    }
    # Ingress (from the load balancer) belongs to the component that fronts the coordinator.
    assert rule_set(run, group, "ingress") is None


def test_flow_logs_go_to_a_retained_log_group_through_a_least_privilege_role() -> None:
    run = network(flow_logs=True)
    flow_log = run.one("aws:ec2/flowLog:FlowLog")
    log_group = run.one("aws:cloudwatch/logGroup:LogGroup")
    role = run.one("aws:iam/role:Role")
    assert flow_log.inputs["vpcId"] == run.outputs["vpcId"]
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestination"] == log_group.outputs["arn"]
    assert flow_log.inputs["iamRoleArn"] == role.outputs["arn"]
    assert log_group.inputs["retentionInDays"] == 30

    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": "123456789012"},
                "ArnLike": {"aws:SourceArn": "arn:aws:ec2:eu-west-1:123456789012:vpc-flow-log/*"},
            },
        }
    ]
    policy = json.loads(run.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    (statement,) = policy["Statement"]
    assert statement["Resource"] == [
        log_group.outputs["arn"],
        f"{log_group.outputs['arn']}:log-stream:*",
    ]
    assert "*" not in statement["Resource"]
    assert all(action.startswith("logs:") for action in statement["Action"])


def test_no_flow_logs_when_off() -> None:
    run = network(flow_logs=False)
    assert not run.of_type("aws:ec2/flowLog:FlowLog")
    assert not run.of_type("aws:iam/role:Role")


@pytest.mark.parametrize("strategy", ["none", "instance", "gateway"])
def test_every_strategy_evaluates_in_preview(strategy: str) -> None:
    run = network(preview=True, nat_strategy=strategy, flow_logs=True)
    assert run.outputs["zones"] == ["eu-west-1a", "eu-west-1b"]
    assert len(run.of_type("aws:ec2/subnet:Subnet")) == 4


def test_every_child_is_parented_to_the_component_and_named_after_it() -> None:
    run = network(nat_strategy="gateway", flow_logs=True)
    component = run.one("streamr:network:Network")
    children = [r for r in run.resources if r is not component]
    assert children
    assert all(r.parent == component.urn for r in children)
    assert all(r.name.startswith("net-") for r in children)


def test_asking_for_more_zones_than_the_region_has_fails_clearly() -> None:
    with pytest.raises(ProgramFailed, match="offers 3 availability zones, azCount asks 4"):
        network(az_count=4)


def test_the_nat_bootstrap_script_passes_shellcheck() -> None:
    shellcheck = Path(sys.executable).with_name("shellcheck")
    result = subprocess.run(
        [str(shellcheck), "--severity=style", str(NAT_USER_DATA)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    script = NAT_USER_DATA.read_text()
    assert script.startswith("#!/bin/bash\n")
    assert "net.ipv4.ip_forward = 1" in script
    assert "MASQUERADE" in script

"""The whole program for both stacks, in update and preview mode: it evaluates, tags everything,
keeps data stores private, opens no admin or data port to the internet, and honours a deep pause."""

from __future__ import annotations

import runpy

import pytest

from offline.harness import UNKNOWN, ProgramRun, run_component
from tests.infra.support import evaluated, rule_set, world_open

COMPONENTS = {
    "streamr:network:Network",
    "streamr:database:Database",
    "streamr:cache:Cache",
    "streamr:headscale:HeadscaleHost",
    "streamr:coordinator:CoordinatorService",
    "streamr:coordinator:LoadBalancer",
    "streamr:coordinator:Image",
    "streamr:monitoring:Monitoring",
    "streamr:streaming:SrsOrigin",
    "streamr:streaming:OriginAddress",
    "streamr:secrets:SecureParameter",
}
EXPECTED_OUTPUTS = {
    "vpcId",
    "publicSubnetIds",
    "privateSubnetIds",
    "coordinatorSecurityGroupId",
    "databaseAddress",
    "databasePort",
    "databaseSecretArn",
    "coordinatorSecretsParameter",
    "cacheAddress",
    "cachePort",
    "headscaleUrl",
    "headscalePublicIp",
    "headscaleApiKeyParameter",
    "coordinatorUrl",
    "apiDocsUrl",
    "dashboardUrl",
    "rtmpIngestUrl",
    "hlsUrlTemplate",
    "flvUrlTemplate",
}
# dev has a stop schedule and a wake endpoint (stacks/Pulumi.dev.yaml), prod runs around the clock.
SCHEDULED = {"streamr:ops:PauseSchedule", "streamr:ops:WakeEndpoint"}
SCHEDULED_OUTPUTS = {"pauseFunctionName", "wakeUrl", "wakeTokenParameter"}
# prod issues its certificate in its hosted zone (dev has no domain).
ISSUED_CERTIFICATE = {"streamr:coordinator:Certificate"}


def expected_components(run: ProgramRun) -> set[str]:
    return COMPONENTS | (SCHEDULED if run.stack == "dev" else ISSUED_CERTIFICATE)


def expected_outputs(run: ProgramRun) -> set[str]:
    return EXPECTED_OUTPUTS | (SCHEDULED_OUTPUTS if run.stack == "dev" else set())


def network_resources(run: ProgramRun, type_: str) -> list[str]:
    """Resources of `type_` the network owns (other hosts have instances and Elastic IPs too)."""
    network = run.one("streamr:network:Network")
    return [r.name for r in run.of_type(type_) if r.parent == network.urn]


def test_the_program_evaluates_with_every_component(any_run: ProgramRun) -> None:
    assert {r.type for r in any_run.resources if not r.custom} == expected_components(any_run)
    assert set(any_run.outputs) == expected_outputs(any_run)
    assert any_run.outputs["databasePort"] == 5432
    assert any_run.outputs["cachePort"] == 6379


def test_outputs_are_known_after_an_update(updated: ProgramRun) -> None:
    assert UNKNOWN not in updated.outputs.values()
    assert updated.outputs["vpcId"] == updated.one("aws:ec2/vpc:Vpc").id
    assert len(updated.outputs["privateSubnetIds"]) == 2


def test_every_resource_lives_in_a_component(any_run: ProgramRun) -> None:
    components = {r.urn for r in any_run.resources if not r.custom}
    assert all(r.parent in components for r in any_run.resources if r.custom)
    # Components sit at the top, or inside the one component they serve (the coordinator's
    # load balancer and image, each component's secret parameters).
    nested = {r.type for r in any_run.resources if not r.custom and r.parent is not None}
    assert nested <= {
        "streamr:coordinator:LoadBalancer",
        "streamr:coordinator:Image",
        "streamr:secrets:SecureParameter",
    }
    assert all(r.parent in components for r in any_run.resources if not r.custom and r.parent)


def test_every_taggable_resource_carries_the_stack_tags_and_a_name(any_run: ProgramRun) -> None:
    stage = any_run.stack
    expected = {"Project": "streamr", "Stage": stage, "ManagedBy": "pulumi"}
    # An image's `tags` are its registry tags (repo:tag), not resource tags.
    taggable = [
        r
        for r in any_run.resources
        if r.custom and r.taggable and r.type != "docker-build:index:Image"
    ]
    assert len(taggable) > 15
    for resource in taggable:
        tags = resource.inputs.get("tags")
        assert tags is not None, f"{resource.type} {resource.name} has no tags"
        if isinstance(tags, list):  # auto scaling groups take tags as a list of key/value items
            tags = {tag["key"]: tag["value"] for tag in tags}
        assert {k: tags.get(k) for k in expected} == expected, resource.name
        assert tags["Name"] == resource.name


@pytest.mark.parametrize("port", [22, 5432, 6379])
def test_no_security_group_admits_the_internet_to_admin_or_data_ports(
    any_run: ProgramRun, port: int
) -> None:
    assert world_open(any_run, port) == []


def test_the_world_open_check_catches_an_open_rule() -> None:
    """The guard above must be able to fail: an SSH-from-anywhere group is reported."""
    import pulumi_aws as aws

    def component() -> None:
        aws.ec2.SecurityGroup(
            "open",
            ingress=[
                {"protocol": "tcp", "from_port": 0, "to_port": 1024, "cidr_blocks": ["0.0.0.0/0"]}
            ],
        )
        aws.vpc.SecurityGroupIngressRule(
            "open-rule",
            security_group_id="sg-1",
            ip_protocol="-1",
            cidr_ipv6="::/0",
        )

    run = run_component(component)
    assert world_open(run, 22) == ["open", "open-rule"]
    assert world_open(run, 6379) == ["open-rule"]


def test_data_stores_sit_only_in_private_subnets(updated: ProgramRun) -> None:
    private = {
        s.id
        for s in updated.of_type("aws:ec2/subnet:Subnet")
        if s.inputs["tags"]["Tier"] == "private"
    }
    assert set(updated.outputs["privateSubnetIds"]) == private
    for subnet_group in (
        updated.one("aws:rds/subnetGroup:SubnetGroup"),
        updated.one("aws:elasticache/subnetGroup:SubnetGroup"),
    ):
        assert set(subnet_group.inputs["subnetIds"]) == private, subnet_group.name
    assert updated.one("aws:rds/instance:Instance").inputs["publiclyAccessible"] is False


def test_only_the_coordinator_group_reaches_the_data_stores(updated: ProgramRun) -> None:
    prefix = f"streamr-{updated.stack}"
    coordinator = f"{prefix}-net-coordinator-sg"
    database = updated.named(f"{prefix}-db-sg")
    cache = updated.named(f"{prefix}-cache-sg")
    assert rule_set(updated, database, "ingress") == {("tcp", 5432, 5432, frozenset({coordinator}))}
    assert rule_set(updated, cache, "ingress") == {("tcp", 6379, 6379, frozenset({coordinator}))}
    assert updated.outputs["coordinatorSecurityGroupId"] == updated.named(coordinator).id


def test_stage_differences_in_the_network(dev: ProgramRun, prod: ProgramRun) -> None:
    # dev: a NAT instance, no flow logs; prod: a NAT gateway and flow logs.
    assert dev.named("streamr-dev-net-nat").inputs["instanceType"] == "t4g.nano"
    assert not dev.of_type("aws:ec2/natGateway:NatGateway")
    assert not dev.of_type("aws:ec2/flowLog:FlowLog")
    assert prod.one("aws:ec2/natGateway:NatGateway")
    assert not network_resources(prod, "aws:ec2/instance:Instance")
    assert prod.one("aws:ec2/flowLog:FlowLog").inputs["trafficType"] == "ALL"


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_a_deep_pause_leaves_out_the_nat_gateway_and_the_cache(preview: bool) -> None:
    run = evaluated("prod", {"paused": True}, preview=preview)
    assert not run.of_type("aws:ec2/natGateway:NatGateway")
    assert not network_resources(run, "aws:ec2/eip:Eip")
    assert not run.of_type("streamr:cache:Cache")
    assert not run.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
    assert "cacheAddress" not in run.outputs
    # The database stays (the stop schedule stops it); its data is never part of a pause.
    assert run.one("aws:rds/instance:Instance").inputs["deletionProtection"] is True


def test_a_deep_pause_drops_a_nat_instance_too() -> None:
    run = evaluated("dev", {"paused": True})
    assert not network_resources(run, "aws:ec2/instance:Instance")
    assert not run.of_type("streamr:cache:Cache")


def test_three_zones_and_a_redis_cache_evaluate(updated: ProgramRun) -> None:
    run = evaluated(updated.stack, {"azCount": 3, "cacheEngine": "redis"})
    assert len(run.of_type("aws:ec2/subnet:Subnet")) == 6
    group = run.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert (group["engine"], group["engineVersion"]) == ("redis", "7.1")


def test_main_exports_what_build_returns() -> None:
    """`__main__.py` (what `pulumi up` runs) loads the config, builds and exports."""
    from offline.harness import ROOT

    def main() -> dict[str, object]:
        import pulumi

        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        stack = pulumi.runtime.settings.get_root_resource()
        return dict(stack.outputs)

    run = run_component(main, stack="dev")
    assert set(run.outputs) == EXPECTED_OUTPUTS | SCHEDULED_OUTPUTS
    assert {r.type for r in run.resources if not r.custom} == COMPONENTS | SCHEDULED


def test_prod_protects_its_stateful_resources_and_dev_can_be_torn_down(
    updated: ProgramRun,
) -> None:
    """The database and the mesh's data volume: `pulumi up`/`destroy` refuse to delete or replace
    them in prod (an operator must unprotect first); dev stays disposable."""
    prod = updated.stack == "prod"
    stateful = [
        updated.one("aws:rds/instance:Instance"),
        updated.one("aws:ebs/volume:Volume"),
    ]
    assert [resource.protect for resource in stateful] == [prod, prod]

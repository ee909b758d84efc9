"""The cache component: Valkey by default, private, TLS and at-rest encryption, a Pulumi-generated
auth token kept secret, exact rules, replicated in prod."""

from __future__ import annotations

from typing import Any

import pytest

from components.cache import Cache, CacheArgs
from offline.harness import ProgramRun, run_component
from tests.infra.support import rule_set

TAGS = {"Project": "streamr", "Stage": "dev", "ManagedBy": "pulumi"}


def cache(preview: bool = False, **overrides: Any) -> ProgramRun:
    settings: dict[str, Any] = {
        "vpc_id": "vpc-0123",
        "subnet_ids": ["subnet-private-a", "subnet-private-b"],
        "client_security_group_ids": ["sg-coordinator"],
        "engine": "valkey",
        "engine_version": "8.0",
        "node_type": "cache.t4g.micro",
        "nodes": 1,
        "tags": TAGS,
        **overrides,
    }

    def component() -> dict[str, Any]:
        built = Cache("cache", CacheArgs(**settings))
        return {"address": built.address, "port": built.port, "authToken": built.auth_token}

    return run_component(component, preview=preview)


def test_the_group_encrypts_in_transit_and_at_rest_with_the_generated_token() -> None:
    run = cache()
    group = run.one("aws:elasticache/replicationGroup:ReplicationGroup")
    token = run.one("random:index/randomPassword:RandomPassword")
    assert group.inputs["engine"] == "valkey"
    assert group.inputs["engineVersion"] == "8.0"
    assert group.inputs["transitEncryptionEnabled"] is True
    assert group.inputs["transitEncryptionMode"] == "required"
    assert group.inputs["atRestEncryptionEnabled"] is True
    assert group.inputs["authToken"] == token.outputs["result"]
    assert "authToken" in group.secret_inputs
    assert token.inputs["length"] == 64
    assert token.inputs["special"] is False


def test_the_token_leaves_the_component_only_as_a_secret() -> None:
    run = cache()
    assert "authToken" in run.secret_outputs
    assert len(run.outputs["authToken"]) == 64


def test_it_lives_in_the_private_subnets_behind_its_own_group() -> None:
    run = cache()
    group = run.one("aws:elasticache/replicationGroup:ReplicationGroup")
    subnet_group = run.one("aws:elasticache/subnetGroup:SubnetGroup")
    security_group = run.one("aws:ec2/securityGroup:SecurityGroup")
    assert subnet_group.inputs["subnetIds"] == ["subnet-private-a", "subnet-private-b"]
    assert group.inputs["subnetGroupName"] == subnet_group.outputs["name"]
    assert group.inputs["securityGroupIds"] == [security_group.id]


def test_port_6379_is_reachable_only_from_the_client_groups() -> None:
    run = cache()
    group = run.one("aws:ec2/securityGroup:SecurityGroup")
    assert rule_set(run, group, "ingress") == {("tcp", 6379, 6379, frozenset({"sg-coordinator"}))}
    assert rule_set(run, group, "egress") == set()


@pytest.mark.parametrize(("nodes", "replicated"), [(1, False), (2, True), (3, True)])
def test_failover_and_multi_az_follow_the_node_count(nodes: int, replicated: bool) -> None:
    group = cache(nodes=nodes).one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert group["numCacheClusters"] == nodes
    assert group["automaticFailoverEnabled"] is replicated
    assert group["multiAzEnabled"] is replicated


def test_redis_is_allowed() -> None:
    run = cache(engine="redis", engine_version="7.1")
    group = run.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert (group["engine"], group["engineVersion"]) == ("redis", "7.1")


def test_outputs_give_the_primary_endpoint() -> None:
    run = cache()
    group = run.one("aws:elasticache/replicationGroup:ReplicationGroup")
    assert run.outputs["address"] == group.outputs["primaryEndpointAddress"]
    assert run.outputs["port"] == 6379


def test_preview_keeps_the_token_unknown_and_secret() -> None:
    run = cache(preview=True)
    assert "authToken" in run.secret_outputs
    assert run.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs["port"] == 6379


def test_stage_differences_in_the_program(dev: ProgramRun, prod: ProgramRun) -> None:
    dev_group = dev.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    prod_group = prod.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert (dev_group["numCacheClusters"], prod_group["numCacheClusters"]) == (1, 2)
    assert (dev_group["multiAzEnabled"], prod_group["multiAzEnabled"]) == (False, True)
    assert (dev_group["nodeType"], prod_group["nodeType"]) == ("cache.t4g.micro", "cache.t4g.small")

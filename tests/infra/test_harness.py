"""The offline harness itself: re-runnable, faithful in preview, honest about what it cannot do."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random
import pytest

from offline.harness import (
    UNKNOWN,
    ProgramFailed,
    run_component,
    run_program,
)
from ops.stack_file import StackFileError, stack_config
from tests.infra.support import evaluated


def test_the_program_reruns_in_one_process_with_identical_results() -> None:
    first = run_program("dev")
    second = run_program("dev")
    assert [(r.type, r.name, r.id) for r in first.resources] == [
        (r.type, r.name, r.id) for r in second.resources
    ]
    assert first.outputs == second.outputs


def test_runs_do_not_leak_config_into_each_other() -> None:
    gateway = run_program("dev", {"natStrategy": "gateway"})
    default = run_program("dev")
    assert gateway.of_type("aws:ec2/natGateway:NatGateway")
    assert not default.of_type("aws:ec2/natGateway:NatGateway")
    assert default.of_type("aws:ec2/instance:Instance")


def test_stack_config_is_what_the_cli_would_pass() -> None:
    config = stack_config("dev", {"azCount": 3, "paused": True, "aws:region": "eu-west-2"})
    assert config["streamr:azCount"] == "3"
    assert config["streamr:paused"] == "true"
    assert config["aws:region"] == "eu-west-2"
    assert json.loads(config["streamr:pauseWeekdays"])[0] == "mon"


def test_an_override_of_none_removes_the_key() -> None:
    assert "streamr:natStrategy" not in stack_config("dev", {"natStrategy": None})


def test_an_unknown_stack_is_a_clear_error() -> None:
    with pytest.raises(StackFileError, match="no stack 'qa'; stacks: dev, prod"):
        run_program("qa")


def test_update_mode_synthesises_computed_outputs(dev: Any) -> None:
    database = dev.one("aws:rds/instance:Instance")
    assert database.id
    assert database.outputs["address"].endswith(".eu-west-1.rds.amazonaws.com")
    assert database.outputs["arn"].startswith("arn:aws:rds:eu-west-1:")
    assert dev.outputs["databaseAddress"] == database.outputs["address"]
    secret_arn = database.outputs["masterUserSecrets"][0]["secretArn"]
    assert dev.outputs["databaseSecretArn"] == secret_arn
    assert secret_arn.startswith("arn:aws:secretsmanager:eu-west-1:")


def test_preview_mode_leaves_computed_outputs_unknown() -> None:
    run = run_program("prod", preview=True)
    database = run.one("aws:rds/instance:Instance")
    assert database.id is None
    assert database.inputs["dbSubnetGroupName"] is UNKNOWN
    assert run.outputs["vpcId"] is UNKNOWN
    assert run.outputs["databaseSecretArn"] is UNKNOWN
    # Inputs the program sets are known in a preview, as with `pulumi preview`.
    assert run.outputs["databasePort"] == 5432
    assert database.inputs["instanceClass"] == "db.t4g.small"


def test_resources_record_their_parent_component(dev: Any) -> None:
    network = dev.one("streamr:network:Network")
    assert network.parent is None
    assert not network.custom
    vpc = dev.one("aws:ec2/vpc:Vpc")
    assert vpc.parent == network.urn
    assert vpc in dev.children(network)


def test_secret_inputs_are_recorded(dev: Any) -> None:
    group = dev.one("aws:elasticache/replicationGroup:ReplicationGroup")
    assert "authToken" in group.secret_inputs
    token = dev.named("streamr-dev-cache-auth-token")
    assert group.inputs["authToken"] == token.outputs["result"]
    assert len(group.inputs["authToken"]) == 64


def test_secret_outputs_are_marked() -> None:
    def component() -> dict[str, Any]:
        password = random.RandomPassword("token", length=20, special=False)
        return {"token": password.result, "length": password.length}

    run = run_component(component)
    assert run.secret_outputs == {"token"}
    assert len(run.outputs["token"]) == 20
    assert run.outputs["length"] == 20


def test_taggable_comes_from_the_sdk_class(dev: Any) -> None:
    assert dev.one("aws:ec2/vpc:Vpc").taggable
    assert not dev.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")[0].taggable
    assert not dev.named("streamr-dev-cache-auth-token").taggable


def test_policy_documents_render_like_the_provider() -> None:
    def component() -> dict[str, Any]:
        document = aws.iam.get_policy_document(
            statements=[
                {
                    "actions": ["sts:AssumeRole"],
                    "principals": [{"type": "Service", "identifiers": ["ec2.amazonaws.com"]}],
                    "conditions": [
                        {
                            "test": "StringEquals",
                            "variable": "aws:SourceAccount",
                            "values": ["123456789012"],
                        }
                    ],
                }
            ]
        )
        return {"policy": document.json}

    policy = json.loads(run_component(component).outputs["policy"])
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
            }
        ],
    }


def test_invokes_follow_the_stack_region() -> None:
    def component() -> dict[str, Any]:
        return {
            "zones": aws.get_availability_zones(state="available").names,
            "region": aws.get_region().region,
            "account": aws.get_caller_identity().account_id,
        }

    run = run_component(component, overrides={"aws:region": "us-west-2"})
    assert run.outputs["zones"] == ["us-west-2a", "us-west-2b", "us-west-2c"]
    assert run.outputs["region"] == "us-west-2"
    assert run.outputs["account"] == "123456789012"


def test_an_invoke_without_an_offline_answer_fails_by_name() -> None:
    def component() -> None:
        aws.route53.get_zone(name="example.com")

    with pytest.raises(ProgramFailed, match=r"no answer for invoke aws:route53/getZone:getZone"):
        run_component(component)


def test_a_failing_program_reports_what_registered_before() -> None:
    def component() -> None:
        aws.ec2.Vpc("before", cidr_block="10.1.0.0/16")
        raise RuntimeError("boom")

    with pytest.raises(ProgramFailed, match="boom") as failure:
        run_component(component)
    assert isinstance(failure.value.__cause__, RuntimeError)
    assert [r.name for r in failure.value.resources] == ["before"]


def test_apply_callbacks_run_in_update_mode_only() -> None:
    seen: list[str] = []

    def component() -> dict[str, Any]:
        vpc = aws.ec2.Vpc("v", cidr_block="10.2.0.0/16")
        return {"id": vpc.id.apply(lambda vpc_id: seen.append(vpc_id) or vpc_id)}

    update = run_component(component)
    assert update.outputs["id"].startswith("vpc-")
    assert seen == [update.outputs["id"]]
    seen.clear()
    preview = run_component(component, preview=True)
    assert preview.outputs["id"] is UNKNOWN
    assert seen == []


def test_the_harness_leaves_no_pulumi_state_behind() -> None:
    run_program("dev")
    assert pulumi.runtime.settings.get_root_resource() is None
    assert pulumi.runtime.get_config("streamr:stage") is None


def test_a_test_that_changes_a_shared_evaluation_is_caught() -> None:
    run = evaluated("dev")
    inputs = run.resources[0].inputs
    inputs["changedByATest"] = True
    try:
        with pytest.raises(AssertionError, match="changed the shared evaluation of dev"):
            evaluated("dev")
    finally:
        del inputs["changedByATest"]
    assert evaluated("dev") is run

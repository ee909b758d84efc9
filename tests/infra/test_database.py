"""The database component: private, encrypted, TLS-only, RDS-managed password, exact rules, and
the differences between a cheap dev database and a protected prod one."""

from __future__ import annotations

from typing import Any

import pytest

from components.database import Database, DatabaseArgs, parameter_group_family
from offline.harness import ProgramRun, run_component
from tests.infra.support import rule_set

TAGS = {"Project": "streamr", "Stage": "prod", "ManagedBy": "pulumi"}


def database(preview: bool = False, **overrides: Any) -> ProgramRun:
    settings: dict[str, Any] = {
        "vpc_id": "vpc-0123",
        "subnet_ids": ["subnet-private-a", "subnet-private-b"],
        "client_security_group_ids": ["sg-coordinator"],
        "instance_class": "db.t4g.small",
        "allocated_storage_gb": 50,
        "engine_version": "16",
        "backup_retention_days": 14,
        "multi_az": True,
        "deletion_protection": True,
        "final_snapshot": True,
        "performance_insights": True,
        "tags": TAGS,
        **overrides,
    }

    def component() -> dict[str, Any]:
        built = Database("db", DatabaseArgs(**settings))
        return {
            "address": built.address,
            "port": built.port,
            "secretArn": built.secret_arn,
            "securityGroupId": built.security_group_id,
            "identifier": built.instance_identifier,
        }

    return run_component(component, preview=preview)


def test_the_instance_is_private_encrypted_and_has_no_password_anywhere() -> None:
    run = database()
    instance = run.one("aws:rds/instance:Instance").inputs
    assert instance["engine"] == "postgres"
    assert instance["engineVersion"] == "16"
    assert instance["publiclyAccessible"] is False
    assert instance["storageEncrypted"] is True
    assert instance["storageType"] == "gp3"
    assert instance["manageMasterUserPassword"] is True
    assert "password" not in instance
    assert "passwordWo" not in instance
    assert instance["copyTagsToSnapshot"] is True
    assert instance["engineLifecycleSupport"] == "open-source-rds-extended-support-disabled"


def test_it_lives_in_the_given_private_subnets_behind_its_own_group() -> None:
    run = database()
    instance = run.one("aws:rds/instance:Instance")
    subnet_group = run.one("aws:rds/subnetGroup:SubnetGroup")
    group = run.one("aws:ec2/securityGroup:SecurityGroup")
    assert subnet_group.inputs["subnetIds"] == ["subnet-private-a", "subnet-private-b"]
    assert instance.inputs["dbSubnetGroupName"] == subnet_group.outputs["name"]
    assert instance.inputs["vpcSecurityGroupIds"] == [group.id]
    assert group.inputs["vpcId"] == "vpc-0123"


def test_postgres_is_reachable_only_from_the_client_groups_and_reaches_nothing() -> None:
    run = database(client_security_group_ids=["sg-coordinator", "sg-migrations"])
    group = run.one("aws:ec2/securityGroup:SecurityGroup")
    assert rule_set(run, group, "ingress") == {
        ("tcp", 5432, 5432, frozenset({"sg-coordinator", "sg-migrations"}))
    }
    assert rule_set(run, group, "egress") == set()


def test_without_clients_nothing_can_connect() -> None:
    run = database(client_security_group_ids=[])
    group = run.one("aws:ec2/securityGroup:SecurityGroup")
    assert rule_set(run, group, "ingress") == set()


@pytest.mark.parametrize(("version", "family"), [("16", "postgres16"), ("17.2", "postgres17")])
def test_the_parameter_group_forces_tls_for_the_engine_family(version: str, family: str) -> None:
    assert parameter_group_family(version) == family
    run = database(engine_version=version)
    parameters = run.one("aws:rds/parameterGroup:ParameterGroup")
    assert parameters.inputs["family"] == family
    assert parameters.inputs["parameters"] == [
        {"name": "rds.force_ssl", "value": "1", "applyMethod": "immediate"}
    ]
    instance = run.one("aws:rds/instance:Instance")
    assert instance.inputs["parameterGroupName"] == parameters.outputs["name"]


def test_protected_settings_keep_data_through_deletion() -> None:
    run = database()
    # Pulumi itself refuses to delete or replace it; a major upgrade is allowed in place.
    assert run.one("aws:rds/instance:Instance").protect is True
    instance = run.one("aws:rds/instance:Instance").inputs
    assert instance["allowMajorVersionUpgrade"] is True
    assert instance["multiAz"] is True
    assert instance["deletionProtection"] is True
    assert instance["backupRetentionPeriod"] == 14
    assert instance["skipFinalSnapshot"] is False
    assert instance["finalSnapshotIdentifier"] == "db-final"
    assert instance["performanceInsightsEnabled"] is True
    assert instance["performanceInsightsRetentionPeriod"] == 7


def test_cheap_settings_skip_the_final_snapshot() -> None:
    run = database(
        multi_az=False,
        deletion_protection=False,
        final_snapshot=False,
        backup_retention_days=1,
        performance_insights=False,
        instance_class="db.t4g.micro",
    )
    assert run.one("aws:rds/instance:Instance").protect is False
    instance = run.one("aws:rds/instance:Instance").inputs
    assert instance["multiAz"] is False
    assert instance["deletionProtection"] is False
    assert instance["skipFinalSnapshot"] is True
    assert "finalSnapshotIdentifier" not in instance
    assert "performanceInsightsRetentionPeriod" not in instance


def test_outputs_give_callers_the_endpoint_and_the_secret_arn_only() -> None:
    run = database()
    instance = run.one("aws:rds/instance:Instance")
    assert run.outputs["address"] == instance.outputs["address"]
    assert run.outputs["port"] == 5432
    assert run.outputs["secretArn"] == instance.outputs["masterUserSecrets"][0]["secretArn"]
    assert run.outputs["identifier"] == instance.outputs["identifier"]
    assert run.secret_outputs == frozenset()  # an ARN is not a secret; the password is in AWS


def test_preview_evaluates_with_unknown_endpoint() -> None:
    run = database(preview=True)
    assert run.outputs["port"] == 5432
    assert run.one("aws:rds/instance:Instance").inputs["storageEncrypted"] is True


def test_stage_differences_in_the_program(dev: ProgramRun, prod: ProgramRun) -> None:
    dev_db = dev.one("aws:rds/instance:Instance").inputs
    prod_db = prod.one("aws:rds/instance:Instance").inputs
    assert (dev_db["multiAz"], prod_db["multiAz"]) == (False, True)
    assert (dev_db["deletionProtection"], prod_db["deletionProtection"]) == (False, True)
    assert (dev_db["skipFinalSnapshot"], prod_db["skipFinalSnapshot"]) == (True, False)
    assert dev_db["backupRetentionPeriod"] < 14 <= prod_db["backupRetentionPeriod"]
    assert dev_db["instanceClass"] == "db.t4g.micro"
    assert prod_db["finalSnapshotIdentifier"] == "streamr-prod-db-final"

"""The Headscale host under Pulumi mocks: public surface, secret access, data volume, user data."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from headscale import render
from offline.harness import ProgramRun, Resource
from tests.infra.support import evaluated, rule_set

COMPONENT = "streamr:headscale:HeadscaleHost"
WORLD = frozenset({"0.0.0.0/0"})


PARAMETER = "aws:ssm/parameter:Parameter"
SECURE_PARAMETER = "streamr:secrets:SecureParameter"


def part(run: ProgramRun, suffix: str) -> Resource:
    """The cloud resource of that name (its SecureParameter component shares the API key's)."""
    name = f"streamr-{run.stack}-headscale-{suffix}"
    return run.named(name, PARAMETER if suffix == "api-key" else None)


def user_data(run: ProgramRun) -> dict:
    text = part(run, "host").inputs["userData"]
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def written(run: ProgramRun, path: str) -> str:
    files = {entry["path"]: entry for entry in user_data(run)["write_files"]}
    return files[path]["content"]


def test_exactly_three_public_ports(any_run: ProgramRun) -> None:
    group = part(any_run, "sg")
    assert rule_set(any_run, group, "ingress") == {
        ("tcp", 443, 443, WORLD),
        ("tcp", 80, 80, WORLD),
        ("udp", 3478, 3478, WORLD),
    }
    standalone = any_run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert not [rule for rule in standalone if rule.name.startswith(group.name)]


def test_the_instance_role_writes_one_secret_and_reads_none(updated: ProgramRun) -> None:
    parameter = part(updated, "api-key")
    arn = parameter.outputs["arn"]
    policy = json.loads(part(updated, "write-api-key").inputs["policy"])
    statements = {statement["Sid"]: statement for statement in policy["Statement"]}
    assert statements["WriteItsParameters"] == {
        "Sid": "WriteItsParameters",
        "Effect": "Allow",
        "Action": "ssm:PutParameter",
        "Resource": [arn],
    }
    encrypt = statements["EncryptItsParameters"]
    assert encrypt["Action"] == "kms:Encrypt"
    assert encrypt["Condition"]["StringEquals"]["kms:EncryptionContext:PARAMETER_ARN"] == [arn]
    # Session Manager's managed policy allows reading every parameter: it reads none.
    deny = statements["NoOtherParameters"]
    assert (deny["Effect"], deny["Resource"]) == ("Deny", "*")
    assert {"ssm:GetParameter", "ssm:GetParameters", "ssm:GetParameterHistory"} <= set(
        deny["Action"]
    )
    assert set(statements) == {"WriteItsParameters", "EncryptItsParameters", "NoOtherParameters"}
    # No other inline policy, and only the SSM managed policy besides it.
    role = part(updated, "role")
    inline = [
        p for p in updated.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == role.id
    ]
    assert [p.name for p in inline] == [f"streamr-{updated.stack}-headscale-write-api-key"]
    attached = {
        a.inputs["policyArn"]
        for a in updated.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == role.outputs["name"]
    }
    assert attached == {"arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"}
    # The host writes the value: the program creates it as a placeholder and never changes it.
    assert (parameter.inputs["type"], parameter.inputs["value"]) == ("SecureString", "unset")
    assert parameter.inputs["name"] == f"/streamr-{updated.stack}-headscale/api-key"
    assert parameter.ignore_changes == {"value"}


def test_instance_is_graviton_imdsv2_encrypted_and_replaced_on_new_user_data(
    any_run: ProgramRun,
) -> None:
    instance = part(any_run, "host")
    assert instance.inputs["instanceType"].startswith("t4g.")
    assert instance.inputs["metadataOptions"]["httpTokens"] == "required"
    assert instance.inputs["rootBlockDevice"]["encrypted"] is True
    assert instance.inputs["rootBlockDevice"]["volumeType"] == "gp3"
    assert instance.inputs["userDataReplaceOnChange"] is True
    assert instance.inputs["associatePublicIpAddress"] is False
    assert instance.inputs["iamInstanceProfile"]


def test_data_volume_is_encrypted_in_the_instance_zone_and_attached(updated: ProgramRun) -> None:
    volume, instance = part(updated, "data"), part(updated, "host")
    assert volume.inputs["encrypted"] is True
    assert volume.inputs["type"] == "gp3"
    assert volume.inputs["availabilityZone"] == instance.inputs["availabilityZone"]
    attachment = part(updated, "data-attachment")
    assert attachment.inputs["volumeId"] == volume.id
    assert attachment.inputs["instanceId"] == instance.id
    association = part(updated, "eip-association")
    assert association.inputs["instanceId"] == instance.id
    assert association.inputs["allocationId"] == part(updated, "eip").outputs["allocationId"]


def test_a_replaced_host_frees_the_data_volume_before_the_new_one_attaches(
    updated: ProgramRun,
) -> None:
    """New user data replaces the instance; create-before-delete would attach the volume to the
    new host while the old one holds it (VolumeInUse)."""
    assert part(updated, "host").delete_before_replace is True
    assert part(updated, "data-attachment").delete_before_replace is True
    assert part(updated, "data").protect is (updated.stack == "prod")


def test_data_volume_is_snapshotted_daily(updated: ProgramRun) -> None:
    volume = part(updated, "data")
    policy = part(updated, "data-snapshots")
    details = policy.inputs["policyDetails"]
    assert details["resourceTypes"] == ["VOLUME"]
    assert details["targetTags"].items() <= volume.inputs["tags"].items()
    (schedule,) = details["schedules"]
    assert schedule["createRule"]["interval"] == 24
    expected_days = 7 if updated.stack == "dev" else 30
    assert schedule["retainRule"]["count"] == expected_days
    role = part(updated, "dlm-role")
    assert policy.inputs["executionRoleArn"] == role.outputs["arn"]
    assert "dlm.amazonaws.com" in role.inputs["assumeRolePolicy"]


def test_user_data_passes_cloud_init_schema(updated: ProgramRun, tmp_path: Path) -> None:
    cloud_init = shutil.which("cloud-init")
    assert cloud_init, "cloud-init is missing: run `make system-deps`"
    path = tmp_path / "user-data.yaml"
    path.write_text(part(updated, "host").inputs["userData"])
    result = subprocess.run(
        [cloud_init, "schema", "--config-file", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_user_data_carries_config_for_this_host_and_no_secrets(updated: ProgramRun) -> None:
    address = part(updated, "eip").outputs["publicIp"]
    config = yaml.safe_load(written(updated, render.CONFIG_PATH))
    assert config["derp"]["server"]["ipv4"] == address
    # dev runs without a domain (sslip.io); prod has one (offline, the documentation name)
    assert config["server_url"] == (
        "https://mesh.stream.example.org"
        if updated.stack == "prod"
        else f"https://{address.replace('.', '-')}.sslip.io"
    )
    assert updated.outputs["headscaleUrl"] == config["server_url"]
    env = written(updated, "/etc/streamr/headscale.env")
    assert f"DATA_VOLUME_ID={part(updated, 'data').id}\n" in env
    assert f"API_KEY_PARAMETER={part(updated, 'api-key').inputs['name']}\n" in env
    assert f"HEADSCALE_SHA256={render.HEADSCALE_LINUX_ARM64_SHA256}\n" in env
    text = part(updated, "host").inputs["userData"]
    assert "hskey-" not in text
    assert "BEGIN PRIVATE KEY" not in text
    assert user_data(updated)["runcmd"] == [
        ["/usr/local/sbin/streamr-headscale-bootstrap", "install"]
    ]


def test_a_configured_domain_names_the_server_and_its_zone_points_at_it(prod: ProgramRun) -> None:
    """prod has a domain (in an offline run the documentation name the harness fills in) and a
    hosted zone, where the program points mesh.<domain> at the host for Let's Encrypt."""
    config = yaml.safe_load(written(prod, render.CONFIG_PATH))
    assert prod.outputs["headscaleUrl"] == "https://mesh.stream.example.org"
    assert config["tls_letsencrypt_hostname"] == "mesh.stream.example.org"
    record = part(prod, "dns").inputs
    assert (record["name"], record["type"]) == ("mesh.stream.example.org", "A")
    assert record["records"] == [part(prod, "eip").outputs["publicIp"]]
    assert record["zoneId"] == prod.documentation["streamr:hostedZoneId"]


def test_the_acme_contact_is_its_own_key_not_the_alert_address() -> None:
    """Issue 18, finding 8: Let's Encrypt's contact is `acmeEmail`; alerts go elsewhere."""
    values = {"acmeEmail": "tls@streamr.dev", "alertEmail": "alarms@streamr.dev"}
    config = yaml.safe_load(written(evaluated("prod", values), render.CONFIG_PATH))
    assert config["acme_email"] == "tls@streamr.dev"
    without = yaml.safe_load(
        written(evaluated("prod", {"alertEmail": "alarms@streamr.dev"}), render.CONFIG_PATH)
    )
    assert without["acme_email"] == ""  # an ACME account needs no contact


def test_outputs_name_the_url_and_the_secret(updated: ProgramRun) -> None:
    assert updated.outputs["headscaleApiKeyParameter"] == part(updated, "api-key").inputs["name"]
    assert updated.outputs["headscalePublicIp"] == part(updated, "eip").outputs["publicIp"]


@pytest.mark.parametrize("suffix", ["sg", "api-key", "role", "eip", "data", "host", "dlm-role"])
def test_children_belong_to_the_component(updated: ProgramRun, suffix: str) -> None:
    component = updated.one(COMPONENT)
    child = part(updated, suffix)
    if suffix == "api-key":  # through its SecureParameter
        holder = updated.named(child.name, SECURE_PARAMETER)
        assert child.parent == holder.urn
        child = holder
    assert child.parent == component.urn


def test_a_deep_pause_deletes_the_host_and_keeps_what_the_mesh_comes_back_with(
    updated: ProgramRun,
) -> None:
    """The instance bills by the hour (and its root volume by the GB); its address, data, key
    parameter and the outputs they give stay (the resume: test_stable_endpoints.py)."""
    paused = evaluated(updated.stack, {"paused": True})
    kept = {"eip", "data", "api-key", "role", "profile", "sg", "data-snapshots"}
    gone = {"host", "data-attachment", "eip-association"}
    names = {r.name for r in paused.resources if r.custom}
    prefix = f"streamr-{updated.stack}-headscale-"
    assert {f"{prefix}{suffix}" for suffix in kept} <= names
    assert not {f"{prefix}{suffix}" for suffix in gone} & names
    assert {f"{prefix}{suffix}" for suffix in gone} <= {r.name for r in updated.resources}
    for output in ("headscaleUrl", "headscalePublicIp", "headscaleApiKeyParameter"):
        assert paused.outputs[output] == updated.outputs[output], output

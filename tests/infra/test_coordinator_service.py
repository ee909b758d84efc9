"""The coordinator service: image by digest, IMDSv2 and encrypted hosts, least-privilege role
naming exact ARNs, rolling instance refresh, ALB health checks and listeners, stable secrets, and
user data that `cloud-init schema` and shellcheck accept."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.coordinator_access import SSM_MANAGED_POLICY
from components.coordinator_image import source_tag
from components.coordinator_load_balancer import APP_PORT
from components.coordinator_service import CoordinatorService, CoordinatorServiceArgs
from components.coordinator_user_data import UserDataSettings, render_user_data
from offline.harness import ROOT, ProgramRun, run_component
from stack_config import StackConfig, StackConfigError
from tests.infra.support import evaluated, rule_set, world_open

TAGS = {"Project": "streamr", "Stage": "prod", "ManagedBy": "pulumi"}
PARAMETER = "aws:ssm/parameter:Parameter"
DB_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-abc-123456"
CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/0b1c2d3e-0000-4000-8000-123456789abc"
SHELLCHECK = ROOT / ".venv" / "bin" / "shellcheck"


def service(preview: bool = False, **overrides: Any) -> ProgramRun:
    settings: dict[str, Any] = {
        "vpc_id": "vpc-0123",
        "vpc_cidr": "10.0.0.0/16",
        "public_subnet_ids": ["subnet-public-a", "subnet-public-b"],
        "instance_subnet_ids": ["subnet-private-a", "subnet-private-b"],
        "public_instances": False,
        "security_group_id": "sg-coordinator",
        "database_address": "db.internal",
        "database_port": 5432,
        "database_name": "streamr",
        "database_secret_arn": DB_SECRET,
        "instance_type": "t4g.small",
        "min_size": 2,
        "max_size": 4,
        "desired_capacity": 2,
        "web_concurrency": 2,
        "cache_address": "master.cache.internal",
        "cache_port": 6379,
        "cache_auth_token": "cache-token-value",
        "tags": TAGS,
        "load_balancer_name": "coord-web",
        **overrides,
    }

    def component() -> dict[str, Any]:
        built = CoordinatorService("coord", CoordinatorServiceArgs(**settings))
        return {
            "url": built.url,
            "hookSecretParameter": built.hook_secret.name,
            "asg": built.autoscaling_group_name,
        }

    return run_component(component, preview=preview)


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return service()


def user_data(run: ProgramRun) -> str:
    encoded = run.one("aws:ec2/launchTemplate:LaunchTemplate").inputs["userData"]
    return base64.b64decode(encoded).decode()


def settings_file(run: ProgramRun) -> str:
    document = yaml.safe_load(user_data(run))
    conf = next(f for f in document["write_files"] if f["path"] == "/etc/streamr/coordinator.conf")
    return conf["content"]


def policy(run: ProgramRun) -> dict[str, Any]:
    return json.loads(run.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])


def test_the_repository_scans_keeps_tags_immutable_and_expires_old_images(run: ProgramRun) -> None:
    repository = run.one("aws:ecr/repository:Repository").inputs
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    rules = json.loads(run.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs["policy"])["rules"]
    assert rules[0]["selection"]["countType"] == "imageCountMoreThan"
    assert rules[0]["action"] == {"type": "expire"}


def test_the_image_is_built_for_arm64_pushed_and_referenced_by_digest(run: ProgramRun) -> None:
    image = run.one("docker-build:index:Image")
    repository = run.one("aws:ecr/repository:Repository").outputs["repositoryUrl"]
    assert image.inputs["platforms"] == ["linux/arm64"]
    assert image.inputs["push"] is True
    assert image.inputs["context"]["location"] == "coordinator"
    assert image.inputs["tags"] == [f"{repository}:{source_tag(ROOT / 'coordinator')}"]
    assert image.inputs["registries"][0]["address"] == repository
    assert image.inputs["registries"][0]["username"] == "AWS"
    assert image.outputs["digest"].startswith("sha256:")
    assert f"IMAGE={repository}@{image.outputs['digest']}" in settings_file(run).splitlines()


def test_the_source_tag_follows_the_build_context(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("**/__pycache__\n*.egg-info\n")
    (tmp_path / "app.py").write_text("print('v1')\n")
    first = source_tag(tmp_path)
    for ignored in ("src/pkg/__pycache__", "src/pkg.egg-info"):
        (tmp_path / ignored).mkdir(parents=True)
        (tmp_path / ignored / "junk").write_bytes(b"\0")
    assert source_tag(tmp_path) == first  # ignored files change nothing
    (tmp_path / "app.py").write_text("print('v2')\n")
    assert source_tag(tmp_path) != first


def test_hosts_require_imdsv2_encrypt_their_disk_and_have_no_ssh_key(run: ProgramRun) -> None:
    template = run.one("aws:ec2/launchTemplate:LaunchTemplate").inputs
    assert template["metadataOptions"]["httpTokens"] == "required"
    assert template["metadataOptions"]["httpPutResponseHopLimit"] == 1
    (disk,) = template["blockDeviceMappings"]
    assert disk["ebs"]["encrypted"] == "true"
    assert disk["ebs"]["volumeType"] == "gp3"
    assert "keyName" not in template
    assert template["imageId"].startswith("ami-")
    assert template["instanceType"] == "t4g.small"
    (interface,) = template["networkInterfaces"]
    assert interface["associatePublicIpAddress"] == "false"
    assert interface["securityGroups"] == ["sg-coordinator"]
    assert (
        template["iamInstanceProfile"]["arn"]
        == run.one("aws:iam/instanceProfile:InstanceProfile").outputs["arn"]
    )


def test_the_role_reads_exactly_its_secrets_pulls_its_repo_and_writes_its_logs(
    run: ProgramRun,
) -> None:
    statements = {s["Sid"]: s for s in policy(run)["Statement"]}
    assert set(statements) == {
        "EcrLogin",
        "PullImage",
        "ReadDatabaseSecret",
        "ReadItsParameters",
        "DecryptItsParameters",
        "NoOtherParameters",
        "WriteLogs",
    }
    assert all(s["Effect"] == "Allow" for k, s in statements.items() if k != "NoOtherParameters")
    assert statements["EcrLogin"]["Action"] == "ecr:GetAuthorizationToken"
    assert (
        statements["PullImage"]["Resource"]
        == run.one("aws:ecr/repository:Repository").outputs["arn"]
    )
    assert not any(a.startswith("ecr:Put") for a in statements["PullImage"]["Action"])
    parameters = {r.outputs["arn"] for r in run.of_type("aws:ssm/parameter:Parameter")}
    assert len(parameters) == 2  # the host secrets (pepper, admin and cache tokens), hook secret
    assert set(statements["ReadItsParameters"]["Resource"]) == parameters
    assert statements["ReadItsParameters"]["Action"] == "ssm:GetParameter"
    # AmazonSSMManagedInstanceCore (Session Manager) allows reading every parameter: denied.
    deny = statements["NoOtherParameters"]
    assert deny["Effect"] == "Deny" and set(deny["NotResource"]) == parameters
    assert set(deny["Action"]) >= {"ssm:GetParameter", "ssm:GetParameters"}
    decrypt = statements["DecryptItsParameters"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Resource"] == "arn:aws:kms:eu-west-1:123456789012:key/*"
    # Through SSM, for these parameters only (SSM names the parameter in the encryption context).
    condition = decrypt["Condition"]["StringEquals"]
    assert condition["kms:ViaService"] == "ssm.eu-west-1.amazonaws.com"
    assert set(condition["kms:EncryptionContext:PARAMETER_ARN"]) == parameters
    # The database password stays where RDS rotates it.
    assert statements["ReadDatabaseSecret"]["Resource"] == DB_SECRET
    assert statements["ReadDatabaseSecret"]["Action"] == "secretsmanager:GetSecretValue"
    log_group = run.one("aws:cloudwatch/logGroup:LogGroup").outputs["arn"]
    assert statements["WriteLogs"]["Resource"] == f"{log_group}:log-stream:*"
    for statement in statements.values():
        if statement["Sid"] not in ("EcrLogin", "NoOtherParameters", "DecryptItsParameters"):
            assert "*" not in json.dumps(statement["Resource"]).replace(":log-stream:*", "")
    attachment = run.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment").inputs
    assert attachment["policyArn"] == SSM_MANAGED_POLICY
    trust = json.loads(run.one("aws:iam/role:Role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}


def test_generated_secrets_are_random_resources_kept_in_secure_parameters(run: ProgramRun) -> None:
    passwords = {p.name: p for p in run.of_type("random:index/randomPassword:RandomPassword")}
    assert set(passwords) == {
        "coord-token-pepper-value",
        "coord-hook-secret-value",
        "coord-admin-token-value",
    }
    assert all(p.inputs["length"] >= 32 for p in passwords.values())
    parameters = run.of_type("aws:ssm/parameter:Parameter")
    assert len(parameters) == 2
    assert all("value" in p.secret_inputs for p in parameters)
    assert {(p.inputs["type"], p.inputs["tier"]) for p in parameters} == {
        ("SecureString", "Standard")
    }
    assert all(not p.ignore_changes for p in parameters)  # the program writes these values
    hook = run.named("coord-hook-secret", PARAMETER)
    assert hook.inputs["name"] == "/coord/hook-secret"
    assert run.outputs["hookSecretParameter"] == "/coord/hook-secret"
    assert hook.inputs["value"] == passwords["coord-hook-secret-value"].outputs["result"]
    # What only the hosts read shares one parameter, a JSON object with a key per value.
    shared = run.named("coord-host-secrets", PARAMETER)
    assert shared.inputs["name"] == "/coord/host-secrets"
    assert json.loads(shared.inputs["value"]) == {
        "token_pepper": passwords["coord-token-pepper-value"].outputs["result"],
        "admin_token": passwords["coord-admin-token-value"].outputs["result"],
        "cache_auth_token": "cache-token-value",
    }
    assert shared.inputs["description"] == "StreamrP2P coordinator host secrets"
    # Values reach instances only through their parameters, never the user data.
    text = user_data(run)
    for password in passwords.values():
        assert password.outputs["result"] not in text
    assert "cache-token-value" not in text


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_merging_the_host_secrets_kept_every_generated_values_resource(stack: str) -> None:
    """The values' `random.RandomPassword` resources keep the URNs they had when each value had
    a secret of its own (before the host secrets), so a deployed stack keeps its values: a new
    token pepper would invalidate every stored token hash, a new admin token the operator's."""
    run = evaluated(stack)
    service_urn = f"urn:pulumi:{stack}::streamr::streamr:coordinator:CoordinatorService"
    passwords = {
        purpose: f"{service_urn}$random:index/randomPassword:RandomPassword"
        f"::streamr-{stack}-coordinator-{purpose}-value"
        for purpose in ("token-pepper", "admin-token", "hook-secret")
    }
    by_urn = {r.urn: r for r in run.resources}
    assert set(passwords.values()) <= set(by_urn)
    shared = run.named(f"streamr-{stack}-coordinator-host-secrets", PARAMETER)
    assert json.loads(shared.inputs["value"]) == {
        "token_pepper": by_urn[passwords["token-pepper"]].outputs["result"],
        "admin_token": by_urn[passwords["admin-token"]].outputs["result"],
        "cache_auth_token": run.named(f"streamr-{stack}-cache-auth-token").outputs["result"],
    }


def test_the_group_refreshes_instances_on_every_template_change(run: ProgramRun) -> None:
    group = run.one("aws:autoscaling/group:Group")
    template = run.one("aws:ec2/launchTemplate:LaunchTemplate")
    assert group.inputs["launchTemplate"] == {
        "id": template.id,
        "version": str(template.outputs["latestVersion"]),
    }
    assert template.inputs["updateDefaultVersion"] is True
    refresh = group.inputs["instanceRefresh"]
    assert refresh["strategy"] == "Rolling"
    assert refresh["preferences"]["minHealthyPercentage"] == 100
    assert (group.inputs["minSize"], group.inputs["desiredCapacity"], group.inputs["maxSize"]) == (
        2,
        2,
        4,
    )
    assert group.inputs["vpcZoneIdentifiers"] == ["subnet-private-a", "subnet-private-b"]
    assert group.inputs["healthCheckType"] == "ELB"
    assert group.inputs["targetGroupArns"] == [
        run.one("aws:lb/targetGroup:TargetGroup").outputs["arn"]
    ]
    assert "GroupInServiceInstances" in group.inputs["enabledMetrics"]
    assert group.ignore_changes == {"desiredCapacity"}
    assert {t["key"]: t["value"] for t in group.inputs["tags"]} == {**TAGS, "Name": "coord-asg"}


def test_a_new_image_digest_is_new_user_data() -> None:
    settings = dict(
        region="eu-west-1",
        log_group="coord-logs",
        database_host="db",
        database_port=5432,
        database_name="streamr",
        database_secret_arn=DB_SECRET,
        host_secrets_parameter="/coord/host-secrets",
        hook_secret_parameter="/coord/hook-secret",
        trusted_proxies=["10.0.0.0/16"],
        web_concurrency=2,
    )
    old = render_user_data(UserDataSettings(image="repo@sha256:" + "a" * 64, **settings))
    new = render_user_data(UserDataSettings(image="repo@sha256:" + "b" * 64, **settings))
    assert old != new


def test_the_load_balancer_checks_health_and_drops_invalid_headers(run: ProgramRun) -> None:
    balancer = run.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert balancer["dropInvalidHeaderFields"] is True
    assert balancer["internal"] is False
    assert balancer["subnets"] == ["subnet-public-a", "subnet-public-b"]
    assert "accessLogs" not in balancer
    target = run.one("aws:lb/targetGroup:TargetGroup").inputs
    assert target["port"] == APP_PORT
    assert target["healthCheck"]["path"] == "/health"
    (listener,) = run.of_type("aws:lb/listener:Listener")
    assert listener.inputs["port"] == 80
    assert listener.inputs["defaultActions"][0]["type"] == "forward"
    dns = run.one("aws:lb/loadBalancer:LoadBalancer").outputs["dnsName"]
    assert run.outputs["url"] == f"http://{dns}"


def test_security_groups_chain_internet_to_alb_to_coordinator(run: ProgramRun) -> None:
    alb = run.one("aws:ec2/securityGroup:SecurityGroup")
    assert rule_set(run, alb, "ingress") == {("tcp", 80, 80, frozenset({"0.0.0.0/0"}))}
    # Egress rules are resources of their own: the SRS origin adds one for its HTTP port.
    assert rule_set(run, alb, "egress") is None
    out = run.one("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule").inputs
    assert out["securityGroupId"] == alb.id
    assert out["referencedSecurityGroupId"] == "sg-coordinator"
    assert (out["ipProtocol"], out["fromPort"], out["toPort"]) == ("tcp", APP_PORT, APP_PORT)
    rule = run.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").inputs
    assert rule["securityGroupId"] == "sg-coordinator"
    assert rule["referencedSecurityGroupId"] == alb.id
    assert (rule["fromPort"], rule["toPort"]) == (APP_PORT, APP_PORT)
    assert "cidrIpv4" not in rule
    assert world_open(run, APP_PORT) == []


def test_a_certificate_adds_https_and_redirects_http() -> None:
    run = service(domain="stream.example.com", certificate_arn=CERTIFICATE)
    listeners = {r.inputs["port"]: r.inputs for r in run.of_type("aws:lb/listener:Listener")}
    assert listeners[80]["defaultActions"][0]["type"] == "redirect"
    assert listeners[80]["defaultActions"][0]["redirect"]["protocol"] == "HTTPS"
    assert listeners[443]["protocol"] == "HTTPS"
    assert listeners[443]["certificateArn"] == CERTIFICATE
    assert listeners[443]["sslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    alb = run.one("aws:ec2/securityGroup:SecurityGroup")
    assert {rule[1] for rule in rule_set(run, alb, "ingress")} == {80, 443}
    assert run.outputs["url"] == "https://stream.example.com"


def test_access_logs_go_to_a_private_encrypted_expiring_bucket() -> None:
    run = service(access_logs=True)
    bucket = run.one("aws:s3/bucket:Bucket")
    balancer = run.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert balancer["accessLogs"] == {"bucket": bucket.id, "prefix": "alb", "enabled": True}
    block = run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(
        block[key]
        for key in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    encryption = run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs
    assert encryption["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    expiry = run.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs
    assert expiry["rules"][0]["expiration"]["days"] == 90
    statements = json.loads(run.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])[
        "Statement"
    ]
    delivery = statements[0]
    assert delivery["Principal"] == {"AWS": "arn:aws:iam::156460612806:root"}
    assert delivery["Action"] == "s3:PutObject"
    assert delivery["Resource"] == f"{bucket.outputs['arn']}/alb/AWSLogs/123456789012/*"
    assert statements[1]["Effect"] == "Deny"
    # ELB tests its write access when logging is switched on: the policy must be there first.
    policy = run.one("aws:s3/bucketPolicy:BucketPolicy")
    assert policy.urn in run.one("aws:lb/loadBalancer:LoadBalancer").dependencies


def test_without_a_load_balancer_the_group_uses_ec2_health_checks() -> None:
    run = service(load_balancer=False)
    assert not run.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert not run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    group = run.one("aws:autoscaling/group:Group").inputs
    assert group["healthCheckType"] == "EC2"
    assert run.outputs["url"] is None


def test_without_nat_instances_sit_in_public_subnets_with_addresses() -> None:
    run = service(instance_subnet_ids=["subnet-public-a", "subnet-public-b"], public_instances=True)
    template = run.one("aws:ec2/launchTemplate:LaunchTemplate").inputs
    assert template["networkInterfaces"][0]["associatePublicIpAddress"] == "true"
    group = run.one("aws:autoscaling/group:Group").inputs
    assert group["vpcZoneIdentifiers"] == ["subnet-public-a", "subnet-public-b"]


def test_without_a_cache_there_is_no_cache_token() -> None:
    run = service(cache_address=None, cache_port=None, cache_auth_token=None)
    assert len(run.of_type(PARAMETER)) == 2
    shared = json.loads(run.named("coord-host-secrets", PARAMETER).inputs["value"])
    assert set(shared) == {"token_pepper", "admin_token"}
    assert "CACHE_HOST" not in settings_file(run)


def test_preview_evaluates_with_unknown_digest() -> None:
    run = service(preview=True)
    assert run.one("aws:autoscaling/group:Group").inputs["instanceRefresh"]["strategy"] == "Rolling"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"certificate_arn": CERTIFICATE}, "needs the domain"),
        ({"min_size": 3, "desired_capacity": 2}, "min <= desired <= max"),
        ({"edge_domain": "edge.stream.example.org"}, "hosted zone their records go in"),
    ],
)
def test_inconsistent_arguments_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message):
        service(**overrides)


def test_cloud_init_accepts_the_user_data(run: ProgramRun, tmp_path: Path) -> None:
    cloud_init = shutil.which("cloud-init")
    assert cloud_init, "cloud-init is missing: run scripts/install-system-deps.sh"
    path = tmp_path / "user-data.yaml"
    path.write_text(user_data(run))
    result = subprocess.run(
        [cloud_init, "schema", "--config-file", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid" in result.stdout


def test_cloud_init_rejects_a_broken_document(tmp_path: Path) -> None:
    """The check above must be able to fail."""
    path = tmp_path / "user-data.yaml"
    path.write_text("#cloud-config\nruncmd: 42\npackages: {docker: true}\n")
    result = subprocess.run(
        ["cloud-init", "schema", "--config-file", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0


def scripts(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in document["write_files"] if f["content"].startswith("#!/bin/bash")]


def test_the_boot_script_passes_shellcheck(run: ProgramRun, tmp_path: Path) -> None:
    document = yaml.safe_load(user_data(run))
    found = scripts(document)
    assert len(found) == 2  # the runner and the credentials refresher
    for index, script in enumerate(found):
        path = tmp_path / f"script-{index}.sh"
        path.write_text(script["content"])
        result = subprocess.run(
            [str(SHELLCHECK), "--severity=style", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout
    units = {f["path"]: f["content"] for f in document["write_files"]}
    assert "Restart=always" in units["/etc/systemd/system/streamr-coordinator.service"]
    assert ["systemctl", "enable", "--now", "streamr-coordinator.service"] in document["runcmd"]


def test_the_settings_file_is_valid_shell_naming_every_secret_by_arn(run: ProgramRun) -> None:
    result = subprocess.run(
        ["bash", "-c", 'set -eu; source /dev/stdin; echo "$DATABASE_SECRET_ARN|$TRUSTED_PROXIES"'],
        input=settings_file(run),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == f'{DB_SECRET}|["10.0.0.0/16"]'


def prod_config(**values: Any) -> StackConfig:
    """prod with its domain as the offline harness gives it (a documentation name, declared)."""
    return StackConfig.from_mapping(
        {"stage": "prod", "domain": "stream.example.org", **values},
        region="eu-west-1",
        documentation_keys=frozenset({"domain"}),
    )


def test_stack_config_sizes_the_group_per_stage() -> None:
    dev = StackConfig.from_mapping({"stage": "dev"}, region="eu-west-1").coordinator
    prod = prod_config(hostedZoneId="Z0DOCUMENTATION0EXAMPLE").coordinator
    assert (dev.min_size, dev.desired_capacity, dev.max_size) == (1, 1, 2)
    assert (prod.min_size, prod.desired_capacity, prod.max_size) == (2, 2, 4)
    assert dev.certificate_arn is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"coordinatorMinSize": 3, "coordinatorMaxSize": 2},
            "streamr:coordinatorDesiredCapacity: 3 is not allowed; allowed values: from "
            "streamr:coordinatorMinSize (3) to streamr:coordinatorMaxSize (2)",
        ),
        ({"coordinatorMaxSize": 0}, "streamr:coordinatorMaxSize: 0 is not allowed"),
        ({"certificateArn": CERTIFICATE}, "streamr:certificateArn needs streamr:domain"),
        (
            {"certificateArn": CERTIFICATE.replace("eu-west-1", "us-east-1"), "domain": "a.io"},
            "a certificate in eu-west-1",
        ),
        ({"certificateArn": "arn:aws:iam::1:cert", "domain": "a.io"}, "an ACM certificate ARN"),
        ({"coordinatorWebConcurrency": 0}, "streamr:coordinatorWebConcurrency: 0"),
    ],
)
def test_stack_config_refuses_bad_coordinator_keys(values: dict[str, Any], message: str) -> None:
    with pytest.raises(StackConfigError) as raised:
        StackConfig.from_mapping({"stage": "dev", **values}, region="eu-west-1")
    assert message in str(raised.value)


def test_stack_config_accepts_a_certificate_with_its_domain() -> None:
    config = prod_config(certificateArn=CERTIFICATE)
    assert config.coordinator.certificate_arn == CERTIFICATE
    assert config.coordinator.hosted_zone_id is None


def test_the_program_gives_the_role_the_rds_managed_and_mesh_secrets(updated: ProgramRun) -> None:
    prefix = f"streamr-{updated.stack}-coordinator"
    statements = json.loads(updated.named(f"{prefix}-policy").inputs["policy"])["Statement"]
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["ReadDatabaseSecret"]["Resource"] == updated.outputs["databaseSecretArn"]
    readable = by_sid["ReadItsParameters"]["Resource"]
    arn_of = {
        r.inputs["name"]: r.outputs["arn"] for r in updated.of_type("aws:ssm/parameter:Parameter")
    }
    assert arn_of[updated.outputs["headscaleApiKeyParameter"]] in readable
    # host secrets (pepper, admin and cache tokens), hook, mesh API key; dev's idle pause: the
    # ops token. No other parameter (the wake endpoint's tokens, its records) is readable.
    idle = updated.stack == "dev"
    assert len(readable) == 3 + idle
    assert set(by_sid["NoOtherParameters"]["NotResource"]) == set(readable)
    host_secrets = updated.named(f"{prefix}-host-secrets", PARAMETER).outputs["arn"]
    assert arn_of[updated.outputs["coordinatorSecretsParameter"]] == host_secrets
    assert host_secrets in readable
    ops_token = f"{prefix}-ops-token"
    assert any(r.name == ops_token for r in updated.resources) is idle
    conf = settings_file(updated)
    assert f"HEADSCALE_URL={updated.outputs['headscaleUrl']}" in conf
    assert f"HEADSCALE_API_KEY_PARAMETER={updated.outputs['headscaleApiKeyParameter']}" in conf
    assert updated.outputs["apiDocsUrl"] == updated.outputs["coordinatorUrl"] + "/docs"
    # prod serves HTTPS on its domain (in an offline run, a documentation name)
    assert updated.outputs["coordinatorUrl"] == (
        "https://stream.example.org" if updated.stack == "prod" else
        f"http://{updated.one('aws:lb/loadBalancer:LoadBalancer').outputs['dnsName']}"
    )  # fmt: skip
    assert updated.outputs["dashboardUrl"].startswith("https://eu-west-1.console.aws.amazon.com/")
    group = updated.named(f"{prefix}-asg").inputs
    assert group["vpcZoneIdentifiers"] == updated.outputs["privateSubnetIds"]


def test_the_coordinator_is_told_the_origins_publish_and_play_urls(updated: ProgramRun) -> None:
    """Issue 18, finding 5: the origin's Elastic IP exists before the coordinator, whose settings
    name it, so the streamer page shows rtmp://<origin>/live and /api/v1/play has a fallback."""
    address = updated.named(f"streamr-{updated.stack}-srs-address-eip")
    # dev names the address itself; prod, with a hosted zone, the name that points at it.
    host = "live.stream.example.org" if updated.stack == "prod" else address.outputs["publicIp"]
    conf = settings_file(updated)
    assert f"ORIGIN_PUBLISH_URL=rtmp://{host}/live\n" in conf
    # With HTTPS through the coordinator's own origin (tests/infra/test_origin_behind_https.py).
    play = f"http://{host}:8080" if updated.stack == "dev" else "https://stream.example.org"
    assert f"ORIGIN_PLAY_URL={play}\n" in conf
    assert updated.outputs["rtmpIngestUrl"] == f"rtmp://{host}/live"
    # The origin host is associated with that same address, after the coordinator exists.
    association = updated.named(f"streamr-{updated.stack}-srs-eip-association")
    assert association.inputs["allocationId"] == address.outputs["allocationId"]
    order = [resource.urn for resource in updated.resources]
    template = updated.named(f"streamr-{updated.stack}-coordinator-lt")
    assert order.index(address.urn) < order.index(template.urn) < order.index(association.urn)


def test_only_prod_keeps_load_balancer_access_logs(dev: ProgramRun, prod: ProgramRun) -> None:
    assert "accessLogs" not in dev.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert prod.one("aws:lb/loadBalancer:LoadBalancer").inputs["accessLogs"]["enabled"] is True
    group = prod.named("streamr-prod-coordinator-asg").inputs
    assert (group["minSize"], group["maxSize"]) == (2, 4)


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_a_deep_pause_leaves_out_the_load_balancer_but_keeps_the_group(preview: bool) -> None:
    run = evaluated("prod", {"paused": True}, preview=preview)
    assert not run.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert not run.of_type("aws:lb/targetGroup:TargetGroup")
    assert run.one("aws:autoscaling/group:Group").inputs["healthCheckType"] == "EC2"
    # The domain's URL outlives the load balancer (tests/infra/test_stable_endpoints.py); the
    # load balancer's own name does not.
    assert run.outputs["coordinatorUrl"] == "https://stream.example.org"
    assert "coordinatorUrl" not in evaluated("dev", {"paused": True}, preview=preview).outputs
    alarm_names = {a.name for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    # Nothing runs to alarm on; what is left watches the pause function.
    assert alarm_names == {"streamr-prod-pause-errors", "streamr-prod-pause-dead-letters"}


def test_without_nat_the_program_puts_instances_in_public_subnets() -> None:
    run = evaluated("dev", {"natStrategy": "none"})
    group = run.one("aws:autoscaling/group:Group").inputs
    assert group["vpcZoneIdentifiers"] == run.outputs["publicSubnetIds"]
    template = run.one("aws:ec2/launchTemplate:LaunchTemplate").inputs
    assert template["networkInterfaces"][0]["associatePublicIpAddress"] == "true"


def test_changed_sources_reach_the_launch_template(tmp_path: Path) -> None:
    """New sources -> new tag and digest -> new user data -> new template version -> refresh."""
    (tmp_path / "app.py").write_text("print('v1')\n")
    before = service(image_context=tmp_path)
    (tmp_path / "app.py").write_text("print('v2')\n")
    after = service(image_context=tmp_path)
    digests = [run.one("docker-build:index:Image").outputs["digest"] for run in (before, after)]
    assert digests[0] != digests[1]
    assert user_data(before) != user_data(after)
    assert digests[1] in user_data(after)
    assert digests[0] not in user_data(after)

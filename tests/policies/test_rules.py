"""Every policy with a resource that passes and one that violates it (message checked), run
through the real CrossGuard policy objects; and dev/prod programs with zero mandatory violations."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)

from offline.harness import ROOT
from offline.policy_check import check
from policies.rules import RULES, policies
from tests.infra.support import evaluated

TAGS = {"Project": "streamr", "Stage": "dev", "ManagedBy": "pulumi"}
PROD = {**TAGS, "Stage": "prod"}
RDS = "aws:rds/instance:Instance"
SG = "aws:ec2/securityGroup:SecurityGroup"
RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
INSTANCE = "aws:ec2/instance:Instance"
LT = "aws:ec2/launchTemplate:LaunchTemplate"
IAM = "aws:iam/rolePolicy:RolePolicy"
PARAMETER = "aws:ssm/parameter:Parameter"
GOOD_DB = {
    "storageEncrypted": True,
    "publiclyAccessible": False,
    "backupRetentionPeriod": 14,
    "multiAz": True,
    "deletionProtection": True,
    "skipFinalSnapshot": False,
    "tags": PROD,
}
SECURE_INSTANCE = {
    "metadataOptions": {"httpTokens": "required"},
    "instanceType": "t4g.micro",
    "rootBlockDevice": {"encrypted": True},
    "tags": TAGS,
}
SECURE_TEMPLATE = {
    "metadataOptions": {"httpTokens": "required"},
    "instanceType": "t4g.micro",
    "blockDeviceMappings": [{"ebs": {"encrypted": "true"}}],
    "tags": TAGS,
}


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# (policy, type, passing props, violating props, expected message fragment)
RESOURCE_CASES = [
    ("rds-storage-encrypted", RDS, GOOD_DB, {**GOOD_DB, "storageEncrypted": False},
     "RDS storage must be encrypted"),
    ("rds-not-public", RDS, GOOD_DB, {**GOOD_DB, "publiclyAccessible": True},
     "must not be publicly accessible"),
    ("rds-backup-retention", RDS, {**GOOD_DB, "backupRetentionPeriod": 1, "tags": TAGS},
     {**GOOD_DB, "backupRetentionPeriod": 7}, "kept 7 day(s); at least 14"),
    ("rds-prod-resilience", RDS, {**GOOD_DB, "multiAz": False, "tags": TAGS},
     {**GOOD_DB, "multiAz": False}, "must be Multi-AZ"),
    ("rds-force-tls", "aws:rds/parameterGroup:ParameterGroup",
     {"family": "postgres16", "parameters": [{"name": "rds.force_ssl", "value": "1"}]},
     {"family": "postgres16", "parameters": []}, "must force TLS"),
    ("elasticache-encrypted", "aws:elasticache/replicationGroup:ReplicationGroup",
     {"transitEncryptionEnabled": True, "atRestEncryptionEnabled": True, "authToken": "x"},
     {"transitEncryptionEnabled": True, "atRestEncryptionEnabled": True},
     "must require authentication"),
    ("no-world-ingress-to-sensitive-ports", SG,
     {"ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443,
                   "cidrBlocks": ["0.0.0.0/0"]}]},
     {"ingress": [{"protocol": "tcp", "fromPort": 0, "toPort": 6000, "ipv6CidrBlocks": ["::/0"]}]},
     "ingress from ::/0 to port 5432"),
    ("no-world-ingress-to-sensitive-ports", RULE,
     {"ipProtocol": "tcp", "fromPort": 1985, "toPort": 1985, "referencedSecurityGroupId": "sg-1"},
     {"ipProtocol": "tcp", "fromPort": 1985, "toPort": 1985, "cidrIpv4": "0.0.0.0/0"},
     "ingress from 0.0.0.0/0 to port 1985"),
    ("imdsv2-required", INSTANCE, SECURE_INSTANCE, {**SECURE_INSTANCE, "metadataOptions": {}},
     "EC2 instances must require IMDSv2"),
    ("imdsv2-required", LT, SECURE_TEMPLATE,
     {**SECURE_TEMPLATE, "metadataOptions": {"httpTokens": "optional"}},
     "launch templates must require IMDSv2"),
    ("volumes-encrypted", LT, SECURE_TEMPLATE,
     {**SECURE_TEMPLATE, "blockDeviceMappings": [{"ebs": {"encrypted": "false"}}]},
     "launch template volumes must be encrypted"),
    ("volumes-encrypted", "aws:ebs/volume:Volume", {"encrypted": True, "tags": TAGS},
     {"tags": TAGS}, "EBS volumes must be encrypted"),
    ("alb-drop-invalid-headers", "aws:lb/loadBalancer:LoadBalancer",
     {"dropInvalidHeaderFields": True}, {}, "must drop invalid header fields"),
    ("ecr-scan-on-push", "aws:ecr/repository:Repository",
     {"imageScanningConfiguration": {"scanOnPush": True}}, {}, "must scan images on push"),
    ("ecr-immutable-tags", "aws:ecr/repository:Repository", {"imageTagMutability": "IMMUTABLE"},
     {"imageTagMutability": "MUTABLE"}, "must have immutable tags"),
    ("log-group-retention", "aws:cloudwatch/logGroup:LogGroup", {"retentionInDays": 30}, {},
     "must set a retention"),
    ("lambda-runtime-allowed", "aws:lambda/function:Function", {"runtime": "python3.12"},
     {"runtime": "python3.8"}, "Lambda runtime 'python3.8' is not allowed"),
    ("iam-no-admin", IAM,
     {"policy": document({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})},
     {"policy": document({"Effect": "Allow", "Action": "*", "Resource": "*"})},
     "must not allow every action on every resource"),
    ("iam-no-passrole-on-star", IAM,
     {"policy": document({"Effect": "Allow", "Action": "iam:PassRole",
                          "Resource": "arn:aws:iam::1:role/streamr-dev-*"})},
     {"policy": document({"Effect": "Allow", "Action": ["iam:*"], "Resource": "*"})},
     "iam:PassRole must name the roles"),
    ("route53-changes-scoped", IAM,
     {"policy": document({
         "Effect": "Allow", "Action": "route53:ChangeResourceRecordSets",
         "Resource": "arn:aws:route53:::hostedzone/Z1",
         "Condition": {"ForAllValues:StringLike": {
             "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["*.edge.example.com"]}}})},
     {"policy": document({"Effect": "Allow", "Action": "route53:*", "Resource": "*"})},
     "must limit the record names"),
    ("route53-changes-scoped", IAM,
     {"policy": document({"Effect": "Allow", "Action": "route53:ListHostedZones",
                          "Resource": "*"})},
     {"policy": document({
         "Effect": "Allow", "Action": "route53:ChangeResourceRecordSets", "Resource": "*",
         "Condition": {"ForAllValues:StringLike": {
             "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["*.edge.example.com"]}}})},
     "must name its hosted zones"),
    ("required-tags", "aws:ec2/vpc:Vpc", {"tags": TAGS}, {"tags": {"Project": "streamr"}},
     "missing required tag(s): Stage, ManagedBy"),
    ("required-tags", "aws:autoscaling/group:Group",
     {"tags": [{"key": k, "value": v, "propagateAtLaunch": True} for k, v in TAGS.items()]},
     {"tags": []}, "missing required tag(s): Project, Stage, ManagedBy"),
    ("instance-types-allowed", INSTANCE, SECURE_INSTANCE,
     {**SECURE_INSTANCE, "instanceType": "m7g.xlarge"},
     "instance type m7g.xlarge is not allowed in dev"),
    ("no-secrets-in-user-data", LT,
     {**SECURE_TEMPLATE, "userData": b64("SECRET_ARN=arn:aws:secretsmanager:x\nTOKEN=$TOKEN\n")},
     {**SECURE_TEMPLATE, "userData": b64("export DB_PASSWORD=hunter2hunter2hunter2\n")},
     "looks like a password assignment"),
    ("no-secrets-in-user-data", INSTANCE, {**SECURE_INSTANCE, "userData": "#!/bin/sh\necho hi\n"},
     {**SECURE_INSTANCE, "userData": "aws_access_key_id = AKIAABCDEFGHIJKLMNOP\n"},
     "looks like an AWS access key id"),
    ("sqs-encrypted", "aws:sqs/queue:Queue", {"sqsManagedSseEnabled": True}, {},
     "SQS queues must be encrypted"),
    ("secret-parameters-encrypted", PARAMETER,
     {"name": "/streamr-dev-wake/token", "type": "SecureString", "value": "x" * 48},
     {"name": "/streamr-dev-wake/token", "type": "String", "value": "x" * 48},
     "parameter /streamr-dev-wake/token holds a secret (its name says 'token'): make it a "
     "SecureString"),
    ("secret-parameters-encrypted", PARAMETER,
     {"name": "/streamr/dev/wake-record", "type": "String", "value": "{}"},
     {"name": "/streamr/dev/settings", "type": "String", "value": "password=hunter2hunter2hunter2"},
     "parameter /streamr/dev/settings holds a secret (its value looks like a secret)"),
]  # fmt: skip

BUCKET = ("aws:s3/bucket:Bucket", "logs", {"id": "logs-bucket", "bucket": "logs-bucket"})
BLOCK = (
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "logs-private",
    {
        "bucket": "logs-bucket",
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    },
)
HALF_BLOCK = (BLOCK[0], BLOCK[1], {**BLOCK[2], "restrictPublicBuckets": False})
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "logs-sse",
    {"bucket": "logs-bucket"},
)
HTTPS = ("aws:lb/listener:Listener", "https", {"protocol": "HTTPS", "port": 443})
HTTP_REDIRECT = (
    "aws:lb/listener:Listener",
    "http",
    {
        "protocol": "HTTP",
        "defaultActions": [{"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443"}}],
    },
)
HTTP_FORWARD = (
    "aws:lb/listener:Listener",
    "http",
    {"protocol": "HTTP", "defaultActions": [{"type": "forward", "targetGroupArn": "tg"}]},
)
PROD_ALB = ("aws:lb/loadBalancer:LoadBalancer", "web", {"arn": "arn:alb/web", "tags": PROD})
PROD_HTTPS = (HTTPS[0], HTTPS[1], {**HTTPS[2], "loadBalancerArn": "arn:alb/web"})
OTHER_HTTPS = (HTTPS[0], "other", {**HTTPS[2], "loadBalancerArn": "arn:alb/other"})
NAT = ("aws:ec2/natGateway:NatGateway", "nat", {"tags": TAGS})
SMALL_DB = (
    RDS,
    "db",
    {"instanceClass": "db.t4g.micro", "allocatedStorage": 20, "storageType": "gp3", "tags": TAGS},
)
BIG_DB = (
    RDS,
    "db",
    {
        "instanceClass": "db.r7g.xlarge",
        "allocatedStorage": 500,
        "storageType": "gp3",
        "multiAz": True,
        "tags": TAGS,
    },
)

# (policy, passing stack, violating stack, expected message fragment)
STACK_CASES = [
    ("s3-public-access-blocked", [BUCKET, BLOCK], [BUCKET, HALF_BLOCK],
     "bucket logs needs a public access block"),
    ("s3-encrypted", [BUCKET, ENCRYPTION], [BUCKET, BLOCK], "bucket logs needs default encryption"),
    ("alb-https-redirect", [HTTPS, HTTP_REDIRECT], [HTTPS, HTTP_FORWARD],
     "HTTP listener http must redirect to HTTPS"),
    ("alb-https-in-prod", [PROD_ALB, PROD_HTTPS, HTTP_REDIRECT], [PROD_ALB, HTTP_FORWARD],
     "load balancer web in prod has no HTTPS listener"),
    ("nat-gateways-outside-prod", [NAT], [NAT, (NAT[0], "nat-2", NAT[2])],
     "2 NAT gateways outside prod; at most 1"),
    ("monthly-budget", [SMALL_DB], [BIG_DB], "exceeds the dev budget of 90.00"),
]  # fmt: skip

POLICIES = {policy.name: policy for policy in policies()}
DEFAULTS = {rule.name: rule.defaults() for rule in RULES}
OPTIONS = PolicyResourceOptions(False, [], None, [], [], None, None)


def validate_resource(name: str, type_: str, props: dict[str, Any]) -> list[str]:
    policy = POLICIES[name]
    assert isinstance(policy, ResourceValidationPolicy)
    messages: list[str] = []
    args = ResourceValidationArgs(type_, props, f"urn:{name}", "r", OPTIONS, None, DEFAULTS[name])
    policy.validate(args, lambda message, _urn: messages.append(message))
    return messages


def validate_stack(name: str, resources: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    messages: list[str] = []
    stack = [
        PolicyResource(type_, props, f"urn:{res}", res, OPTIONS, None, None, [], {})
        for type_, res, props in resources
    ]
    POLICIES[name].validate(
        StackValidationArgs(stack, DEFAULTS[name]), lambda message, _urn: messages.append(message)
    )
    return messages


@pytest.mark.parametrize(
    ("name", "type_", "passing", "violating", "message"),
    RESOURCE_CASES,
    ids=[f"{case[0]}-{case[1].split(':')[-1]}" for case in RESOURCE_CASES],
)
def test_resource_policy(name, type_, passing, violating, message) -> None:
    assert validate_resource(name, type_, passing) == []
    found = validate_resource(name, type_, violating)
    assert any(message in text for text in found), found


@pytest.mark.parametrize(
    ("name", "passing", "violating", "message"), STACK_CASES, ids=[c[0] for c in STACK_CASES]
)
def test_stack_policy(name, passing, violating, message) -> None:
    assert validate_stack(name, passing) == []
    found = validate_stack(name, violating)
    assert any(message in text for text in found), found


def test_every_policy_has_a_passing_and_a_violating_case() -> None:
    tested = {case[0] for case in RESOURCE_CASES} | {case[0] for case in STACK_CASES}
    assert tested == set(POLICIES)
    assert len(POLICIES) >= 20


def test_prod_is_stricter_than_dev() -> None:
    """The same database passes in dev and fails in prod: the stage comes from its tag."""
    relaxed = {**GOOD_DB, "backupRetentionPeriod": 3, "multiAz": False}
    assert validate_resource("rds-backup-retention", RDS, {**relaxed, "tags": TAGS}) == []
    assert validate_resource("rds-prod-resilience", RDS, {**relaxed, "tags": TAGS}) == []
    assert validate_resource("rds-backup-retention", RDS, relaxed)
    assert validate_resource("rds-prod-resilience", RDS, relaxed)


def test_https_in_prod_is_per_load_balancer_and_dev_may_serve_http() -> None:
    """Issue 20: a prod load balancer needs an HTTPS listener of its own; dev's may serve HTTP."""
    assert validate_stack("alb-https-in-prod", [PROD_ALB, OTHER_HTTPS])
    dev_alb = (PROD_ALB[0], PROD_ALB[1], {**PROD_ALB[2], "tags": TAGS})
    assert validate_stack("alb-https-in-prod", [dev_alb, HTTP_FORWARD]) == []


# dev deep-paused when idle (issue 22): the idle record, the check's schedule and their grants.
IDLE_DEEP_PAUSE = {
    "idleDeepPauseHours": 2,
    "githubRepository": "streamr/streamrp2p",
    "stateBucket": "streamr-state",
    "secretsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}


@pytest.mark.parametrize(
    ("stack", "overrides"),
    [
        ("dev", {}),
        ("prod", {}),
        ("dev", {"paused": True}),
        ("prod", {"paused": True}),
        ("dev", IDLE_DEEP_PAUSE),
    ],
    ids=["dev", "prod", "dev-deep-paused", "prod-deep-paused", "dev-idle-deep-pause"],
)
def test_the_programs_have_no_mandatory_violations(stack, overrides) -> None:
    violations = check(evaluated(stack, overrides))
    assert [v for v in violations if v.enforcement == "mandatory"] == []


def test_the_offline_check_catches_a_bad_config_and_honours_policy_config() -> None:
    run = evaluated("dev", {"natStrategy": "gateway", "azCount": 3})
    assert {(v.policy, v.enforcement) for v in check(run)} == {("monthly-budget", "mandatory")}
    stricter = {"instance-types-allowed": {"allowed": {"dev": ["t4g.nano"]}}}
    found = check(run, stricter)
    assert any(
        v.policy == "instance-types-allowed" and "t4g.micro is not allowed in dev" in v.message
        for v in found
    )
    relaxed = check(
        run,
        {**stricter,
         "instance-types-allowed": {**stricter["instance-types-allowed"],
                                    "enforcementLevel": "advisory"},
         "monthly-budget": {"enforcementLevel": "disabled"}},
    )  # fmt: skip
    assert {v.enforcement for v in relaxed} == {"advisory"}
    assert not [v for v in relaxed if v.policy == "monthly-budget"]


def test_the_budget_defaults_match_the_stack_files() -> None:
    budgets = DEFAULTS["monthly-budget"]["monthlyUsd"]
    for stack in ("dev", "prod"):
        config = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert budgets[stack] == config["streamr:monthlyBudgetUsd"]


def test_the_pack_entry_point_only_builds_the_pack() -> None:
    """Never imported (constructing the pack serves); checked as text, and the manifest pins."""
    source = Path(ROOT / "policies" / "__main__.py").read_text()
    assert "PolicyPack(" in source and "policies=policies()" in source
    assert "EnforcementLevel.MANDATORY" in source
    manifest = yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    pins = (ROOT / "policies" / "requirements.txt").read_text().split()
    assert "pulumi-policy==1.21.0" in pins
    assert all(
        isinstance(level, EnforcementLevel)
        for level in [POLICIES["rds-not-public"].enforcement_level]
    )

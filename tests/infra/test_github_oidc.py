"""GitHub Actions' OIDC roles: exact trust (audience and subjects), read-only previews, a deploy
role without wildcard PassRole; opt-in per stack, validated config."""

from __future__ import annotations

import json
from typing import Any

import pytest

from offline.computed import ACCOUNT_ID
from offline.harness import ProgramFailed, ProgramRun, run_program
from stack_config import StackConfig, StackConfigError
from tests.infra.support import evaluated

REPOSITORY = "acme/streamr-p2p"
BUCKET = "acme-streamr-state"
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
EXISTING_PROVIDER = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"
ENABLED = {"githubRepository": REPOSITORY, "stateBucket": BUCKET, "secretsKeyArn": KEY_ARN}
ROLE = "aws:iam/role:Role"
PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
ISSUER = "token.actions.githubusercontent.com"


def _run(stack: str, provider_arn: str | None = None) -> ProgramRun:
    return evaluated(stack, {**ENABLED, "githubOidcProviderArn": provider_arn})


def _trust(run: ProgramRun, role: str) -> dict[str, Any]:
    return json.loads(run.named(role).inputs["assumeRolePolicy"])


def _policy(run: ProgramRun, name: str) -> dict[str, Any]:
    return json.loads(run.named(name).inputs["policy"])


def _attached(run: ProgramRun, role: str) -> set[str]:
    return {
        attachment.inputs["policyArn"]
        for attachment in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if attachment.name.startswith(f"{role}-")
    }


def _expected_trust(provider_arn: str, subjects: list[str]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{ISSUER}:aud": "sts.amazonaws.com",
                        f"{ISSUER}:sub": subjects,
                    }
                },
            }
        ],
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_off_unless_the_stack_names_a_repository(stack: str) -> None:
    run = evaluated(stack)
    assert not run.of_type("streamr:ci:GithubOidc")
    assert "githubPreviewRoleArn" not in run.outputs


def test_the_provider_is_github_for_the_sts_audience() -> None:
    run = _run("dev")
    provider = run.one(PROVIDER)
    assert provider.inputs["url"] == f"https://{ISSUER}"
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert provider.parent == run.one("streamr:ci:GithubOidc").urn


def test_preview_role_trusts_pull_requests_of_this_repository_only() -> None:
    run = _run("dev")
    provider_arn = run.one(PROVIDER).outputs["arn"]
    assert _trust(run, "streamr-dev-github-preview") == _expected_trust(
        provider_arn, [f"repo:{REPOSITORY}:pull_request"]
    )


def test_deploy_role_trusts_main_and_the_production_environment_only() -> None:
    run = _run("dev")
    provider_arn = run.one(PROVIDER).outputs["arn"]
    assert _trust(run, "streamr-dev-github-deploy") == _expected_trust(
        provider_arn,
        [f"repo:{REPOSITORY}:ref:refs/heads/main", f"repo:{REPOSITORY}:environment:production"],
    )


def test_an_existing_provider_is_reused_not_created() -> None:
    run = _run("prod", EXISTING_PROVIDER)
    assert not run.of_type(PROVIDER)
    for role in ("streamr-prod-github-preview", "streamr-prod-github-deploy"):
        statement = _trust(run, role)["Statement"][0]
        assert statement["Principal"] == {"Federated": EXISTING_PROVIDER}


def test_preview_reads_but_writes_only_its_state() -> None:
    run = _run("dev")
    assert _attached(run, "streamr-dev-github-preview") == {
        "arn:aws:iam::aws:policy/ReadOnlyAccess"
    }
    statements = {
        s["Sid"]: s for s in _policy(run, "streamr-dev-github-preview-state")["Statement"]
    }
    assert statements["StateBucket"]["Resource"] == f"arn:aws:s3:::{BUCKET}"
    assert statements["StateObjects"] == {
        "Sid": "StateObjects",
        "Effect": "Allow",
        "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
    }
    assert statements["SecretsKey"]["Action"] == ["kms:Decrypt", "kms:DescribeKey"]
    assert statements["SecretsKey"]["Resource"] == KEY_ARN
    # ReadOnlyAccess would read every object in the account: denied outside the state bucket.
    assert statements["NoOtherObjects"]["Effect"] == "Deny"
    assert statements["NoOtherObjects"]["NotResource"] == f"arn:aws:s3:::{BUCKET}/*"
    assert statements["NoData"]["Effect"] == "Deny"
    assert {"secretsmanager:GetSecretValue", "logs:GetLogEvents", "dynamodb:Scan"} <= set(
        statements["NoData"]["Action"]
    )
    parameters = statements["OnlyPublicParameters"]
    assert parameters["Effect"] == "Deny"
    assert parameters["NotResource"] == "arn:aws:ssm:*::parameter/aws/service/*"
    # Every way to read a value, past values (GetParameterHistory) included.
    assert set(parameters["Action"]) == {
        "ssm:GetParameter",
        "ssm:GetParameters",
        "ssm:GetParametersByPath",
        "ssm:GetParameterHistory",
    }
    allowed = [s for s in statements.values() if s["Effect"] == "Allow"]
    assert not any(action.startswith("kms:Encrypt") for s in allowed for action in s["Action"])


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def test_deploy_iam_is_scoped_to_the_stack_and_never_passes_any_role() -> None:
    run = _run("dev")
    assert _attached(run, "streamr-dev-github-deploy") == {
        "arn:aws:iam::aws:policy/PowerUserAccess"
    }
    statements = _policy(run, "streamr-dev-github-deploy-iam")["Statement"]
    # PowerUserAccess would let a deploy read every past value of the stack's secret parameters.
    (history,) = [s for s in statements if s["Effect"] == "Deny"]
    assert (history["Action"], history["Resource"]) == ("ssm:GetParameterHistory", "*")
    statements = [s for s in statements if s is not history]
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "*" not in _actions(statement) and "iam:*" not in _actions(statement)
        if statement["Resource"] == "*":
            # Only read-only calls that take no resource.
            assert set(_actions(statement)) == {
                "iam:GetAccountSummary",
                "iam:ListOpenIDConnectProviders",
            }
    (pass_role,) = [s for s in statements if "iam:PassRole" in _actions(s)]
    assert _actions(pass_role) == ["iam:PassRole"]
    assert pass_role["Resource"] == f"arn:aws:iam::{ACCOUNT_ID}:role/streamr-dev-*"
    assert set(pass_role["Condition"]["StringEquals"]["iam:PassedToService"]) == {
        "dlm.amazonaws.com",
        "ec2.amazonaws.com",
        "lambda.amazonaws.com",
        "scheduler.amazonaws.com",
        "vpc-flow-logs.amazonaws.com",
    }
    (own,) = [s for s in statements if s["Sid"] == "OwnIdentities"]
    assert own["Resource"] == [
        f"arn:aws:iam::{ACCOUNT_ID}:role/streamr-dev-*",
        f"arn:aws:iam::{ACCOUNT_ID}:policy/streamr-dev-*",
        f"arn:aws:iam::{ACCOUNT_ID}:instance-profile/streamr-dev-*",
    ]


def test_the_stack_roles_the_deploy_role_passes_carry_the_prefix() -> None:
    # PassRole is scoped by name: every role the program creates must match it.
    run = _run("dev")
    for role in run.of_type(ROLE):
        assert role.outputs["name"].startswith("streamr-dev-"), role.name


def test_roles_and_provider_are_tagged() -> None:
    run = _run("dev")
    for resource in [*run.of_type(ROLE), run.one(PROVIDER)]:
        if resource.name.startswith("streamr-dev-github"):
            assert resource.inputs["tags"] == {
                "Project": "streamr",
                "Stage": "dev",
                "ManagedBy": "pulumi",
                "Name": resource.name,
            }


def test_role_arns_are_stack_outputs() -> None:
    run = _run("dev")
    assert run.outputs["githubPreviewRoleArn"] == (
        f"arn:aws:iam::{ACCOUNT_ID}:role/{run.named('streamr-dev-github-preview').outputs['name']}"
    )
    assert (
        run.outputs["githubDeployRoleArn"] == run.named("streamr-dev-github-deploy").outputs["arn"]
    )


def test_a_preview_run_registers_the_roles() -> None:
    run = evaluated("dev", ENABLED, preview=True)
    assert {role.name for role in run.of_type(ROLE)} >= {
        "streamr-dev-github-preview",
        "streamr-dev-github-deploy",
    }


def _problems(values: dict[str, Any]) -> list[str]:
    with pytest.raises(StackConfigError) as raised:
        StackConfig.from_mapping({"stage": "dev", **values}, region="eu-west-1")
    return raised.value.problems


@pytest.mark.parametrize(
    "key,value,allowed",
    [
        ("githubRepository", "acme", "owner/name of a GitHub repository"),
        ("githubRepository", "acme/streamr/extra", "owner/name of a GitHub repository"),
        ("githubOidcProviderArn", "arn:aws:iam::1:oidc-provider/x", "oidc-provider/token.actions"),
        ("stateBucket", "Bad_Bucket", "an S3 bucket name"),
        ("secretsKeyArn", "alias/pulumi", "a KMS key ARN"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(key: str, value: str, allowed: str) -> None:
    (problem,) = _problems({**ENABLED, key: value})
    assert problem.startswith(f"streamr:{key}: {value!r} is not allowed; allowed values: ")
    assert allowed in problem


def test_a_repository_needs_the_state_backend() -> None:
    problems = _problems({"githubRepository": REPOSITORY})
    assert [problem.split(" ")[0] for problem in problems] == [
        "streamr:stateBucket",
        "streamr:secretsKeyArn",
    ]
    assert all("required when streamr:githubRepository is set" in p for p in problems)


def test_backend_keys_without_a_repository_are_a_mistake() -> None:
    (problem,) = _problems({"githubOidcProviderArn": EXISTING_PROVIDER})
    assert problem.startswith("streamr:githubOidcProviderArn needs streamr:githubRepository")


def test_the_settings_reach_the_config() -> None:
    config = StackConfig.from_mapping({"stage": "dev", **ENABLED}, region="eu-west-1")
    assert config.github is not None
    assert (config.github.repository, config.github.state_bucket) == (REPOSITORY, BUCKET)
    assert config.github.provider_arn is None


def test_a_bad_repository_fails_the_program_before_any_resource() -> None:
    with pytest.raises(ProgramFailed) as failed:
        run_program("dev", {**ENABLED, "githubRepository": "not a repo"})
    assert "streamr:githubRepository" in str(failed.value)
    assert failed.value.resources == [] or all(
        resource.type == "pulumi:pulumi:Stack" for resource in failed.value.resources
    )


def test_the_parameters_the_program_reads_are_public_ones_previews_may_read() -> None:
    from components import coordinator_service, headscale_host, network, srs_origin

    for name in (
        coordinator_service.AMI_PARAMETER,
        headscale_host.AMI_PARAMETER,
        network.NAT_AMI_PARAMETER,
        srs_origin.AMI_PARAMETER,
    ):
        assert name.startswith("/aws/service/"), name


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_policy_pack_passes_with_the_roles(stack: str) -> None:
    from offline.policy_check import check

    provider = EXISTING_PROVIDER if stack == "prod" else None
    violations = check(_run(stack, provider))
    assert [v for v in violations if v.enforcement == "mandatory"] == []
    # Not even advisory findings on the CI roles.
    assert [v for v in violations if "-github" in (v.resource or "")] == []

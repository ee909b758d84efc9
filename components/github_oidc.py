"""GitHub Actions' way into the account: OIDC federation, no long-lived keys.

Two roles, each trusting exactly one kind of workflow run of one repository:
- preview: pull requests (`sub` = `repo:<owner/name>:pull_request`). Read-only: AWS's
  ReadOnlyAccess minus data reads (objects outside the state bucket, secrets, private parameters,
  logs, tables), plus the state bucket (preview takes a lock) and the secrets key (to decrypt the
  stack's secrets).
- deploy: the main branch and the protected `production` environment. PowerUserAccess (everything
  but IAM and Organizations) plus IAM scoped to this stack's own name prefix; roles may be passed
  only if they carry the prefix and only to the services the stack hands roles to.

The provider is created here unless the account already has one (an account holds one provider per
URL): then its ARN comes from the stack config.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.secure_parameter import READ_ACTIONS

ISSUER_HOST = "token.actions.githubusercontent.com"
ISSUER_URL = f"https://{ISSUER_HOST}"
AUDIENCE = "sts.amazonaws.com"
PRODUCTION_ENVIRONMENT = "production"
DEPLOY_BRANCH = "main"
READ_ONLY_POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
POWER_USER_POLICY = "arn:aws:iam::aws:policy/PowerUserAccess"
# The services this stack hands roles to (instance profiles, the pause Lambda, its schedules,
# flow logs, snapshot lifecycle).
PASSED_TO_SERVICES = (
    "dlm.amazonaws.com",
    "ec2.amazonaws.com",
    "lambda.amazonaws.com",
    "scheduler.amazonaws.com",
    "vpc-flow-logs.amazonaws.com",
)
# Service-linked roles the stack's services create on first use.
SERVICE_LINKED_ROLES = (
    "autoscaling.amazonaws.com",
    "elasticache.amazonaws.com",
    "elasticloadbalancing.amazonaws.com",
    "rds.amazonaws.com",
)

# Reads of data (not configuration) that ReadOnlyAccess allows and a preview never needs.
DATA_READS = (
    "dynamodb:BatchGetItem",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "logs:FilterLogEvents",
    "logs:GetLogEvents",
    "logs:StartQuery",
    "secretsmanager:GetSecretValue",
)


@dataclass
class GithubOidcArgs:
    repository: str  # owner/name
    resource_prefix: str  # every IAM name this stack creates starts with it, e.g. streamr-dev
    state_bucket_name: str  # the S3 state backend (backend/)
    secrets_key_arn: str  # the KMS key of the stack's secrets provider
    tags: Mapping[str, str]
    provider_arn: str | None = None  # reuse the account's existing GitHub provider


def preview_subjects(repository: str) -> list[str]:
    return [f"repo:{repository}:pull_request"]


def deploy_subjects(repository: str) -> list[str]:
    return [
        f"repo:{repository}:ref:refs/heads/{DEPLOY_BRANCH}",
        f"repo:{repository}:environment:{PRODUCTION_ENVIRONMENT}",
    ]


def trust_policy(provider_arn: str, subjects: Sequence[str]) -> str:
    """Web identity from GitHub's issuer, for our audience and exactly these subjects."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{ISSUER_HOST}:aud": AUDIENCE,
                            f"{ISSUER_HOST}:sub": list(subjects),
                        }
                    },
                }
            ],
        }
    )


def state_access_policy(bucket: str, key_arn: str) -> str:
    """Preview: the state bucket (read; write for its lock), the secrets key, no other objects."""
    bucket_arn = f"arn:aws:s3:::{bucket}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "StateBucket",
                    "Effect": "Allow",
                    "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
                    "Resource": bucket_arn,
                },
                {
                    "Sid": "StateObjects",
                    "Effect": "Allow",
                    "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                    "Resource": f"{bucket_arn}/*",
                },
                {
                    "Sid": "SecretsKey",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:DescribeKey"],
                    "Resource": key_arn,
                },
                {
                    # ReadOnlyAccess reads every object in the account; a preview needs none.
                    "Sid": "NoOtherObjects",
                    "Effect": "Deny",
                    "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                    "NotResource": f"{bucket_arn}/*",
                },
                {
                    # ...and the account's data; a preview reads configuration, not contents.
                    "Sid": "NoData",
                    "Effect": "Deny",
                    "Action": list(DATA_READS),
                    "Resource": "*",
                },
                {
                    # Parameters: only AWS's public ones (the AMI ids the program looks up). The
                    # stack's secrets are SecureStrings under the account's aws/ssm key, which
                    # decrypts for any principal of the account: these denies keep them from
                    # preview, history (every past value) included.
                    "Sid": "OnlyPublicParameters",
                    "Effect": "Deny",
                    "Action": list(READ_ACTIONS),
                    "NotResource": "arn:aws:ssm:*::parameter/aws/service/*",
                },
            ],
        }
    )


def deploy_iam_policy(account_id: str, prefix: str) -> str:
    """IAM for the stack's own roles, policies and profiles only; PassRole by name and service."""
    iam = f"arn:aws:iam::{account_id}"
    own = [
        f"{iam}:role/{prefix}-*",
        f"{iam}:policy/{prefix}-*",
        f"{iam}:instance-profile/{prefix}-*",
    ]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "OwnIdentities",
                    "Effect": "Allow",
                    "Action": [
                        "iam:AddRoleToInstanceProfile",
                        "iam:AttachRolePolicy",
                        "iam:CreateInstanceProfile",
                        "iam:CreatePolicy",
                        "iam:CreatePolicyVersion",
                        "iam:CreateRole",
                        "iam:DeleteInstanceProfile",
                        "iam:DeletePolicy",
                        "iam:DeletePolicyVersion",
                        "iam:DeleteRole",
                        "iam:DeleteRolePolicy",
                        "iam:DetachRolePolicy",
                        "iam:Get*",
                        "iam:List*",
                        "iam:PutRolePolicy",
                        "iam:RemoveRoleFromInstanceProfile",
                        "iam:TagInstanceProfile",
                        "iam:TagPolicy",
                        "iam:TagRole",
                        "iam:UntagInstanceProfile",
                        "iam:UntagPolicy",
                        "iam:UntagRole",
                        "iam:UpdateAssumeRolePolicy",
                        "iam:UpdateRole",
                    ],
                    "Resource": own,
                },
                {
                    "Sid": "PassOwnRolesToTheirServices",
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "Resource": f"{iam}:role/{prefix}-*",
                    "Condition": {
                        "StringEquals": {"iam:PassedToService": list(PASSED_TO_SERVICES)}
                    },
                },
                {
                    "Sid": "GithubProvider",
                    "Effect": "Allow",
                    "Action": [
                        "iam:AddClientIDToOpenIDConnectProvider",
                        "iam:CreateOpenIDConnectProvider",
                        "iam:DeleteOpenIDConnectProvider",
                        "iam:GetOpenIDConnectProvider",
                        "iam:RemoveClientIDFromOpenIDConnectProvider",
                        "iam:TagOpenIDConnectProvider",
                        "iam:UntagOpenIDConnectProvider",
                        "iam:UpdateOpenIDConnectProviderThumbprint",
                    ],
                    "Resource": f"{iam}:oidc-provider/{ISSUER_HOST}",
                },
                {
                    "Sid": "ServiceLinkedRoles",
                    "Effect": "Allow",
                    "Action": "iam:CreateServiceLinkedRole",
                    "Resource": f"{iam}:role/aws-service-role/*",
                    "Condition": {
                        "StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED_ROLES)}
                    },
                },
                {
                    # Read-only IAM calls the provider makes that take no resource.
                    "Sid": "ReadIam",
                    "Effect": "Allow",
                    "Action": ["iam:GetAccountSummary", "iam:ListOpenIDConnectProviders"],
                    "Resource": "*",
                },
                {
                    # PowerUserAccess allows every SSM call. `up` reads a parameter's current
                    # value (GetParameter); the history of values (rotated tokens, old API keys)
                    # it never needs.
                    "Sid": "NoParameterHistory",
                    "Effect": "Deny",
                    "Action": "ssm:GetParameterHistory",
                    "Resource": "*",
                },
            ],
        }
    )


class GithubOidc(pulumi.ComponentResource):
    provider_arn: pulumi.Output[str]
    preview_role_arn: pulumi.Output[str]
    deploy_role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: GithubOidcArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("streamr:ci:GithubOidc", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account_id = aws.get_caller_identity(opts=pulumi.InvokeOptions(parent=self)).account_id

        if args.provider_arn is None:
            provider = aws.iam.OpenIdConnectProvider(
                f"{name}-provider",
                url=ISSUER_URL,
                client_id_lists=[AUDIENCE],
                tags=_tagged(args.tags, f"{name}-provider"),
                opts=child,
            )
            provider_arn: pulumi.Output[str] = provider.arn
        else:
            provider_arn = pulumi.Output.from_input(args.provider_arn)

        preview = aws.iam.Role(
            f"{name}-preview",
            description=f"GitHub Actions: pull-request previews of {args.repository} (read-only)",
            assume_role_policy=provider_arn.apply(
                lambda arn: trust_policy(arn, preview_subjects(args.repository))
            ),
            max_session_duration=3600,
            tags=_tagged(args.tags, f"{name}-preview"),
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-preview-read-only", role=preview.name, policy_arn=READ_ONLY_POLICY, opts=child
        )
        aws.iam.RolePolicy(
            f"{name}-preview-state",
            role=preview.id,
            policy=state_access_policy(args.state_bucket_name, args.secrets_key_arn),
            opts=child,
        )

        deploy = aws.iam.Role(
            f"{name}-deploy",
            description=f"GitHub Actions: deploys of {args.repository} from main and production",
            assume_role_policy=provider_arn.apply(
                lambda arn: trust_policy(arn, deploy_subjects(args.repository))
            ),
            max_session_duration=3600 * 2,
            tags=_tagged(args.tags, f"{name}-deploy"),
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-deploy-power-user", role=deploy.name, policy_arn=POWER_USER_POLICY, opts=child
        )
        aws.iam.RolePolicy(
            f"{name}-deploy-iam",
            role=deploy.id,
            policy=deploy_iam_policy(account_id, args.resource_prefix),
            opts=child,
        )

        self.provider_arn = provider_arn
        self.preview_role_arn = preview.arn
        self.deploy_role_arn = deploy.arn
        self.register_outputs(
            {
                "provider_arn": self.provider_arn,
                "preview_role_arn": self.preview_role_arn,
                "deploy_role_arn": self.deploy_role_arn,
            }
        )


def _tagged(tags: Mapping[str, str], name: str) -> dict[str, Any]:
    return {**tags, "Name": name}

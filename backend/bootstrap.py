"""Creates the shared Pulumi state backend: an S3 bucket and a KMS key for the secrets provider.

`python -m backend.bootstrap --bucket NAME --region REGION` (idempotent: a second run finds both and
changes nothing but settings that drifted). Run once per AWS account with administrator credentials;
it prints what to put in the stack config and the GitHub repository secrets.

The bucket is versioned (a bad `pulumi up` can be rolled back to an earlier checkpoint), encrypted,
closed to the public, TLS-only, and owner-enforced (no ACLs). The key rotates yearly. One person
working alone needs none of this: the local file backend (`pulumi login --local`) stays the default.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from ops.arguments import Parser

DEFAULT_KEY_ALIAS = "alias/streamr-pulumi-secrets"
NONCURRENT_DAYS = 90  # old checkpoints kept this long
_BUCKET = re.compile(r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ALIAS = re.compile(r"^alias/(?!aws/)[A-Za-z0-9/_-]{1,250}$")


class BootstrapError(Exception):
    """The backend cannot be created as asked; the message says why and what is allowed."""


@dataclass(frozen=True)
class Backend:
    bucket: str
    region: str
    key_arn: str
    key_alias: str

    @property
    def backend_url(self) -> str:
        return f"s3://{self.bucket}?region={self.region}"

    @property
    def secrets_provider(self) -> str:
        return f"awskms://{self.key_alias}?region={self.region}"

    def instructions(self) -> str:
        return "\n".join(
            [
                f"State backend ready: bucket {self.bucket}, key {self.key_arn}",
                "",
                f"  pulumi login '{self.backend_url}'",
                f"  pulumi stack init dev --secrets-provider='{self.secrets_provider}'",
                "",
                "Stack config (to create the GitHub OIDC roles):",
                f"  streamr:stateBucket: {self.bucket}",
                f"  streamr:secretsKeyArn: {self.key_arn}",
                "GitHub repository secrets:",
                f"  PULUMI_BACKEND_URL={self.backend_url}",
                f"  AWS_REGION={self.region}",
                "",
            ]
        )


def tls_only_policy(bucket: str) -> str:
    arn = f"arn:aws:s3:::{bucket}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


def bootstrap(
    bucket: str, region: str, key_alias: str = DEFAULT_KEY_ALIAS, session: Any = None
) -> Backend:
    """Create (or find) the bucket and the key, and enforce their settings."""
    if not _BUCKET.match(bucket):
        raise BootstrapError(
            f"--bucket: {bucket!r} is not allowed; allowed values: an S3 bucket name "
            "(3-63 lower-case letters, digits, dots and hyphens, starting and ending alphanumeric)"
        )
    if not _ALIAS.match(key_alias):
        raise BootstrapError(
            f"--key-alias: {key_alias!r} is not allowed; allowed values: alias/<name> "
            "(letters, digits, /, _ and -; not under alias/aws/)"
        )
    session = session or boto3.session.Session(region_name=region)
    key_arn = _ensure_key(session.client("kms", region_name=region), key_alias, bucket)
    _ensure_bucket(session.client("s3", region_name=region), bucket, region)
    return Backend(bucket=bucket, region=region, key_arn=key_arn, key_alias=key_alias)


def _ensure_key(kms: Any, alias: str, bucket: str) -> str:
    try:
        key_id = kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "NotFoundException":
            raise
        key_id = kms.create_key(
            Description=f"Pulumi secrets provider for the state in s3://{bucket}",
            KeyUsage="ENCRYPT_DECRYPT",
            KeySpec="SYMMETRIC_DEFAULT",
            Tags=[
                {"TagKey": "Project", "TagValue": "streamr"},
                {"TagKey": "ManagedBy", "TagValue": "backend/bootstrap.py"},
            ],
        )["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    kms.enable_key_rotation(KeyId=key_id)
    return kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]


def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket, ObjectOwnership="BucketOwnerEnforced")
        else:
            s3.create_bucket(
                Bucket=bucket,
                CreateBucketConfiguration={"LocationConstraint": region},
                ObjectOwnership="BucketOwnerEnforced",
            )
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code == "BucketAlreadyExists":
            raise BootstrapError(
                f"--bucket: {bucket!r} belongs to another AWS account (bucket names are global); "
                "allowed values: a name nobody has taken, e.g. with your account id in it"
            ) from error
        if code != "BucketAlreadyOwnedByYou":
            raise
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_policy(Bucket=bucket, Policy=tls_only_policy(bucket))
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-old-checkpoints",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_DAYS},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                }
            ]
        },
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="python -m backend.bootstrap", description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True, help="S3 bucket for the Pulumi state")
    parser.add_argument("--region", required=True, help="AWS region of the bucket and the key")
    parser.add_argument("--key-alias", default=DEFAULT_KEY_ALIAS, help="KMS alias of the key")
    args = parser.parse_args(argv)
    try:
        backend = bootstrap(args.bucket, args.region, args.key_alias)
    except BootstrapError as error:
        print(f"{parser.prog}: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(backend.instructions())
    return 0


if __name__ == "__main__":
    sys.exit(main())

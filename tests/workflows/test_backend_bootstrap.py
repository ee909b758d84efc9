"""The state backend bootstrap against moto: bucket and key settings, idempotence, clear errors."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from backend import bootstrap as backend

REGION = "eu-west-1"
BUCKET = "acme-streamr-state"


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def test_the_bucket_is_versioned_encrypted_private_and_tls_only(
    session: boto3.session.Session,
) -> None:
    backend.bootstrap(BUCKET, REGION, session=session)
    s3 = session.client("s3")
    location = s3.get_bucket_location(Bucket=BUCKET)["LocationConstraint"]
    assert location == REGION
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    (rule,) = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    (statement,) = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(statement["Resource"]) == {f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"}
    ownership = s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (lifecycle,) = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert lifecycle["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90


def test_the_secrets_key_rotates_and_answers_to_its_alias(session: boto3.session.Session) -> None:
    created = backend.bootstrap(BUCKET, REGION, session=session)
    kms = session.client("kms")
    metadata = kms.describe_key(KeyId=backend.DEFAULT_KEY_ALIAS)["KeyMetadata"]
    assert metadata["Arn"] == created.key_arn
    assert metadata["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert kms.get_key_rotation_status(KeyId=metadata["KeyId"])["KeyRotationEnabled"] is True
    # The key really encrypts and decrypts, as the awskms secrets provider will ask it to.
    blob = kms.encrypt(KeyId=backend.DEFAULT_KEY_ALIAS, Plaintext=b"stack secret")
    assert kms.decrypt(CiphertextBlob=blob["CiphertextBlob"])["Plaintext"] == b"stack secret"


def test_a_second_run_finds_both_and_repairs_drift(session: boto3.session.Session) -> None:
    first = backend.bootstrap(BUCKET, REGION, session=session)
    s3 = session.client("s3")
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    s3.delete_bucket_policy(Bucket=BUCKET)
    second = backend.bootstrap(BUCKET, REGION, session=session)
    assert second == first
    assert len(session.client("kms").list_keys()["Keys"]) == 1
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [BUCKET]
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    assert "DenyInsecureTransport" in s3.get_bucket_policy(Bucket=BUCKET)["Policy"]


def test_us_east_1_needs_no_location_constraint(session: boto3.session.Session) -> None:
    created = backend.bootstrap(BUCKET, "us-east-1", session=session)
    assert created.key_arn.startswith("arn:aws:kms:us-east-1:")
    s3 = session.client("s3", region_name="us-east-1")
    assert s3.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] is None


def test_what_to_configure_is_printed(
    session: boto3.session.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    assert backend.main(["--bucket", BUCKET, "--region", REGION]) == 0
    printed = capsys.readouterr().out
    key_arn = session.client("kms").describe_key(KeyId=backend.DEFAULT_KEY_ALIAS)["KeyMetadata"][
        "Arn"
    ]
    assert f"pulumi login 's3://{BUCKET}?region={REGION}'" in printed
    assert f"--secrets-provider='awskms://alias/streamr-pulumi-secrets?region={REGION}'" in printed
    assert f"streamr:secretsKeyArn: {key_arn}" in printed
    assert f"PULUMI_BACKEND_URL=s3://{BUCKET}?region={REGION}" in printed


@pytest.mark.parametrize(
    "args,message",
    [
        (["--bucket", "Bad_Bucket"], "--bucket: 'Bad_Bucket' is not allowed; allowed values: "),
        (["--bucket", BUCKET, "--key-alias", "alias/aws/s3"], "--key-alias: 'alias/aws/s3'"),
        (["--bucket", BUCKET, "--key-alias", "pulumi"], "allowed values: alias/<name>"),
    ],
)
def test_bad_arguments_are_named(
    session: boto3.session.Session,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    assert backend.main([*args, "--region", REGION]) == 2
    assert message in capsys.readouterr().err
    assert session.client("s3").list_buckets()["Buckets"] == []

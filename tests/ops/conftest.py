"""Fixtures for the ops tests: a fresh moto account per test (see support.py) and the stand-ins
(stand_ins.py)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from ops.discovery import Clients
from tests.ops.stand_ins import Coordinator, GithubStandIn, Origin
from tests.ops.support import REGION, Account, tags

# An arm64 Amazon Linux image among those moto knows in every region (what a t4g host boots).
IMAGE_NAME = "al2022-ami-2022.0.20220728.1-kernel-5.15-arm64"


def _record(calls: list, service: str):
    def hook(model, params, **_kwargs):
        calls.append((service, model.name, params))

    return hook


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        clients = Clients.from_session(session)
        built = Account(clients)
        _build(built)
        for service in ("autoscaling", "ec2", "rds"):
            getattr(clients, service).meta.events.register(
                "before-call.*.*", _record(built.calls, service)
            )
        yield built


def _build(account: Account) -> None:
    ec2, autoscaling, rds = account.clients.ec2, account.clients.autoscaling, account.clients.rds
    # By name: describing all of moto's images (1,291 in eu-west-1) takes seconds, each test.
    (found,) = ec2.describe_images(Filters=[{"Name": "name", "Values": [IMAGE_NAME]}])["Images"]
    image = found["ImageId"]
    for stage in ("dev", "prod"):
        template = f"streamr-{stage}-coordinator"
        ec2.create_launch_template(
            LaunchTemplateName=template,
            LaunchTemplateData={"ImageId": image, "InstanceType": "t4g.micro"},
        )
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=template,
            LaunchTemplate={"LaunchTemplateName": template},
            MinSize=1,
            DesiredCapacity=2,
            MaxSize=4,
            AvailabilityZones=[f"{REGION}a"],
            Tags=[{**tag, "PropagateAtLaunch": True} for tag in tags(stage, template)],
        )
        for host in ("headscale", "srs"):
            name = f"streamr-{stage}-{host}"
            reservation = ec2.run_instances(
                ImageId=image,
                MinCount=1,
                MaxCount=1,
                InstanceType="t4g.micro",
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags(stage, name)}],
            )
            account.ids[name] = reservation["Instances"][0]["InstanceId"]
        rds.create_db_instance(
            DBInstanceIdentifier=f"streamr-{stage}-db",
            DBInstanceClass="db.t4g.micro",
            Engine="postgres",
            AllocatedStorage=20,
            MasterUsername="streamr",
            ManageMasterUserPassword=True,
            Tags=tags(stage, f"streamr-{stage}-db"),
        )
    # Someone's hand-made resources with no stack tags (one with only Project).
    untagged = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t4g.micro",
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Project", "Value": "streamr"}]}
        ],
    )
    account.ids["untagged"] = untagged["Instances"][0]["InstanceId"]
    rds.create_db_instance(
        DBInstanceIdentifier="handmade-db",
        DBInstanceClass="db.t4g.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="someone",
        ManageMasterUserPassword=True,
    )


@pytest.fixture
def origin() -> Iterator[Origin]:
    stand_in = Origin()
    yield stand_in
    stand_in.close()


@pytest.fixture
def github() -> Iterator[GithubStandIn]:
    stand_in = GithubStandIn()
    yield stand_in
    stand_in.server.shutdown()


@pytest.fixture
def coordinator() -> Iterator[Coordinator]:
    stand_in = Coordinator()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()

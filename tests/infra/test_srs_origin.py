"""The SRS origin under Pulumi mocks: public surface, the API only for the coordinator, least
privilege, validated user data, outputs, and its absence in a deep pause."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from offline.harness import UNKNOWN, ProgramRun, Resource
from ops import prices
from srs import cloud_init, parse, render
from tests.infra.support import evaluated, world_open


def part(run: ProgramRun, suffix: str) -> Resource:
    return run.named(f"streamr-{run.stack}-srs-{suffix}")


def ingress(run: ProgramRun) -> set[tuple]:
    group = part(run, "sg")
    rules = run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    found = set()
    for rule in rules:
        if rule.inputs["securityGroupId"] != group.id:
            continue
        peer = (
            rule.inputs.get("cidrIpv4") or run.by_id(rule.inputs["referencedSecurityGroupId"]).name
        )
        found.add((rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"], peer))
    return found


def test_rtmp_is_public_http_too_without_https_and_the_api_admits_only_the_coordinator(
    updated: ProgramRun,
) -> None:
    """With HTTPS (prod) viewers reach HTTP through the coordinator's load balancer only
    (tests/infra/test_origin_behind_https.py); without (dev) they play from it directly."""
    assert "ingress" not in part(updated, "sg").inputs  # every rule is a resource of its own
    coordinator_group = f"streamr-{updated.stack}-net-coordinator-sg"
    http_from = "0.0.0.0/0" if updated.stack == "dev" else "streamr-prod-web-alb-sg"
    assert ingress(updated) == {
        ("tcp", 1935, 1935, "0.0.0.0/0"),
        ("tcp", 8080, 8080, http_from),
        ("tcp", 1985, 1985, coordinator_group),
    }
    assert world_open(updated, render.API_PORT) == []


def test_the_host_requires_imdsv2_and_encrypts_its_disk(updated: ProgramRun) -> None:
    host = part(updated, "host").inputs
    assert host["metadataOptions"]["httpTokens"] == "required"
    # The internet-facing container is a hop further than the host: no instance credentials.
    assert host["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert host["rootBlockDevice"]["encrypted"] is True
    assert host["rootBlockDevice"]["volumeType"] == "gp3"
    # The AMI's own size (no smaller: a root volume cannot be smaller than its AMI's snapshot).
    assert host["rootBlockDevice"]["volumeSize"] == prices.DEFAULT_ROOT_VOLUME_GB == 8
    assert host["associatePublicIpAddress"] is False  # reached only through its Elastic IP
    association = part(updated, "eip-association").inputs
    assert association["instanceId"] == part(updated, "host").id


def test_the_role_reads_only_the_hook_secret_and_writes_only_its_logs(
    updated: ProgramRun,
) -> None:
    policy = json.loads(part(updated, "policy").inputs["policy"])
    hook_secret = updated.named(
        f"streamr-{updated.stack}-coordinator-hook-secret", "aws:ssm/parameter:Parameter"
    )
    arn = hook_secret.outputs["arn"]
    logs = part(updated, "logs")
    assert policy["Statement"] == [
        {
            "Sid": "ReadItsParameters",
            "Effect": "Allow",
            "Action": "ssm:GetParameter",
            "Resource": [arn],
        },
        {
            "Sid": "DecryptItsParameters",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": "arn:aws:kms:eu-west-1:123456789012:key/*",
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": "ssm.eu-west-1.amazonaws.com",
                    "kms:EncryptionContext:PARAMETER_ARN": [arn],
                }
            },
        },
        {
            # Session Manager's managed policy would allow reading every parameter.
            "Sid": "NoOtherParameters",
            "Effect": "Deny",
            "Action": [
                "ssm:GetParameter",
                "ssm:GetParameters",
                "ssm:GetParametersByPath",
                "ssm:GetParameterHistory",
            ],
            "NotResource": [arn],
        },
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{logs.outputs['arn']}:*",
        },
    ]
    assert logs.inputs["retentionInDays"] == 30


def user_data(run: ProgramRun) -> str:
    return part(run, "host").inputs["userData"]


def test_user_data_passes_cloud_init_schema(updated: ProgramRun, tmp_path: Path) -> None:
    validator = shutil.which("cloud-init")
    assert validator, "cloud-init is missing: run `make system-deps`"
    path = tmp_path / "user-data.yaml"
    path.write_text(user_data(updated))
    result = subprocess.run(
        [validator, "schema", "--config-file", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def written_files(run: ProgramRun) -> dict[str, str]:
    """The files the user data writes, decoded as cloud-init would."""
    files = {}
    for entry in yaml.safe_load(user_data(run))["write_files"]:
        content = entry["content"]
        if entry.get("encoding") == "gz+b64":
            content = gzip.decompress(base64.b64decode(content)).decode()
        files[entry["path"]] = content
    return files


def hook_urls(config_text: str) -> dict[str, str]:
    """Every URL SRS calls (and logs): its http_hooks and its heartbeat."""
    config = parse.parse(config_text)
    (vhost,) = config.find("vhost")
    (hooks,) = vhost.find("http_hooks")
    urls = {d.name: d.args[0] for d in hooks.children or [] if d.name != "enabled"}
    (heartbeat,) = config.find("heartbeat")
    urls["heartbeat"] = heartbeat.find("url")[0].args[0]
    return urls


def test_no_hook_url_carries_a_secret_and_the_relay_reaches_this_stacks_coordinator(
    updated: ProgramRun,
) -> None:
    """SRS logs each hook URL, and the ALB logs each request line it forwards: every URL SRS
    calls is the relay's on loopback, with no query; only the relay (whose URLs carry none
    either) goes to the coordinator, with the secret in a header."""
    files = written_files(updated)
    urls = hook_urls(files[cloud_init.CONFIG_PATH])
    assert set(urls) == {"on_publish", "on_unpublish", "on_play", "on_stop", "heartbeat"}
    for action, url in urls.items():
        parts = urlsplit(url)
        assert (parts.hostname, parts.port) == ("127.0.0.1", render.HOOK_RELAY_PORT)
        assert (parts.path, parts.query) == (f"/hooks/srs/{action}", "")
    env = dict(line.split("=", 1) for line in files[cloud_init.ENV_FILE].splitlines())
    assert env["COORDINATOR_URL"] == updated.outputs["coordinatorUrl"]
    assert urlsplit(env["COORDINATOR_URL"]).query == ""
    secret_value = updated.named(f"streamr-{updated.stack}-coordinator-hook-secret-value")
    assert all(secret_value.outputs["result"] not in text for text in files.values())
    assert secret_value.outputs["result"] not in user_data(updated)


def test_outputs_give_the_ingest_and_playback_urls(updated: ProgramRun) -> None:
    """By the origin's Elastic IP (dev), or with a hosted zone (prod) by `live.<domain>`, which
    points at it."""
    address = part(updated, "address-eip").outputs["publicIp"]
    if updated.stack == "prod":
        record = part(updated, "address-dns").inputs
        assert (record["name"], record["type"], record["records"]) == (
            "live.stream.example.org",
            "A",
            [address],
        )
        assert record["zoneId"] == updated.config["streamr:hostedZoneId"]
        address = record["name"]
    assert updated.outputs["rtmpIngestUrl"] == f"rtmp://{address}/live"
    # With HTTPS viewers play under the coordinator's own https origin.
    play = f"http://{address}:8080" if updated.stack == "dev" else "https://stream.example.org"
    assert updated.outputs["hlsUrlTemplate"] == f"{play}/live/{{stream}}.m3u8"
    assert updated.outputs["flvUrlTemplate"] == f"{play}/live/{{stream}}.flv"


def test_stage_sizes(dev: ProgramRun, prod: ProgramRun) -> None:
    assert part(dev, "host").inputs["instanceType"] == "t4g.small"
    assert part(prod, "host").inputs["instanceType"] == "c7g.medium"


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_a_deep_pause_leaves_the_origin_out_but_keeps_its_address(preview: bool) -> None:
    paused = evaluated("dev", {"paused": True}, preview=preview)
    assert not paused.of_type("streamr:streaming:SrsOrigin")
    # The URL in the streamer's OBS outlives the pause.
    address = paused.named("streamr-dev-srs-address-eip")
    assert paused.outputs["rtmpIngestUrl"] == (
        UNKNOWN if preview else f"rtmp://{address.outputs['publicIp']}/live"
    )
    # With a hosted zone the URL holds a name: the pause releases the address ($3.65/month) and
    # the name's record; the URL stays (tests/infra/test_stable_endpoints.py).
    zoned = evaluated("prod", {"paused": True}, preview=preview)
    released = [r.name for r in zoned.resources if r.name.startswith("streamr-prod-srs-address-")]
    assert released == []
    assert zoned.outputs["rtmpIngestUrl"] == "rtmp://live.stream.example.org/live"

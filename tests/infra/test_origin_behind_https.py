"""Issue 23, prod: the coordinator is HTTPS-only, and a browser on its https watch page refuses
the origin's http media. With HTTPS the coordinator's HTTPS listener forwards the origin's play
paths (HLS playlist and segments, HTTP-FLV) to a target group of the SRS host, whose HTTP port
admits that load balancer only, and the coordinator hands out https://<domain> as the origin's
play URL. Without HTTPS (dev) nothing of that exists and viewers play from the origin directly."""

from __future__ import annotations

import pytest

from components.srs_origin import HEALTH_CHECK_MATCHER, HEALTH_CHECK_PATH
from devenv.load_balancer import path_pattern
from offline.harness import UNKNOWN, ProgramRun, Resource
from srs import render
from tests.infra.support import evaluated
from tests.infra.test_coordinator_service import settings_file

RULE = "aws:lb/listenerRule:ListenerRule"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
ATTACHMENT = "aws:lb/targetGroupAttachment:TargetGroupAttachment"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def https_listener(run: ProgramRun) -> Resource:
    (listener,) = [
        r for r in run.of_type("aws:lb/listener:Listener") if r.inputs["protocol"] == "HTTPS"
    ]
    return listener


def test_the_https_listener_forwards_the_play_paths_to_the_origin_host(prod: ProgramRun) -> None:
    rule = prod.one(RULE)
    assert rule.inputs["listenerArn"] == https_listener(prod).outputs["arn"]
    assert rule.inputs["conditions"] == [{"pathPattern": {"values": list(render.PLAY_PATHS)}}]
    group = prod.named("streamr-prod-srs-tg")
    assert rule.inputs["actions"] == [{"type": "forward", "targetGroupArn": group.outputs["arn"]}]
    assert group.inputs["port"] == render.HTTP_PORT
    assert (group.inputs["protocol"], group.inputs["targetType"]) == ("HTTP", "instance")
    assert group.inputs["vpcId"] == prod.outputs["vpcId"]
    health = group.inputs["healthCheck"]
    assert (health["path"], health["matcher"]) == (HEALTH_CHECK_PATH, HEALTH_CHECK_MATCHER)
    attachment = prod.one(ATTACHMENT).inputs
    assert attachment["targetGroupArn"] == group.outputs["arn"]
    assert attachment["targetId"] == prod.named("streamr-prod-srs-host").id
    assert attachment["port"] == render.HTTP_PORT
    # All three belong to the origin, so they come and go with it.
    origin = prod.one("streamr:streaming:SrsOrigin")
    assert {rule.parent, group.parent, prod.one(ATTACHMENT).parent} == {origin.urn}


def test_the_origin_http_port_admits_the_load_balancer_only_and_it_may_reach_it(
    prod: ProgramRun,
) -> None:
    origin_group = prod.named("streamr-prod-srs-sg")
    balancer_group = prod.named("streamr-prod-web-alb-sg")
    (http_in,) = [
        r.inputs
        for r in prod.of_type(INGRESS)
        if r.inputs["securityGroupId"] == origin_group.id
        and r.inputs["fromPort"] == render.HTTP_PORT
    ]
    assert http_in["referencedSecurityGroupId"] == balancer_group.id
    assert (http_in["ipProtocol"], http_in["toPort"]) == ("tcp", render.HTTP_PORT)
    assert "cidrIpv4" not in http_in
    balancer_out = {
        (prod.by_id(r.inputs["referencedSecurityGroupId"]).name, r.inputs["fromPort"])
        for r in prod.of_type(EGRESS)
        if r.inputs["securityGroupId"] == balancer_group.id
    }
    assert balancer_out == {
        ("streamr-prod-net-coordinator-sg", 8000),
        ("streamr-prod-srs-sg", render.HTTP_PORT),
    }


def test_the_coordinator_hands_out_the_https_origin_with_https_and_the_http_one_without(
    dev: ProgramRun, prod: ProgramRun
) -> None:
    assert "ORIGIN_PLAY_URL=https://stream.example.org\n" in settings_file(prod)
    ip = dev.named("streamr-dev-srs-address-eip").outputs["publicIp"]
    assert f"ORIGIN_PLAY_URL=http://{ip}:{render.HTTP_PORT}\n" in settings_file(dev)


def test_without_https_nothing_forwards_and_the_balancer_reaches_only_the_coordinator(
    dev: ProgramRun,
) -> None:
    assert dev.of_type(RULE) == [] and dev.of_type(ATTACHMENT) == []
    assert [group.name for group in dev.of_type(TARGET_GROUP)] == ["streamr-dev-web-tg"]
    assert [rule.name for rule in dev.of_type(EGRESS)] == ["streamr-dev-web-to-instances"]


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_a_deep_pause_takes_the_rule_the_target_group_and_the_attachment_along(
    preview: bool,
) -> None:
    paused = evaluated("prod", {"paused": True}, preview=preview)
    for kind in (RULE, TARGET_GROUP, ATTACHMENT, EGRESS):
        assert paused.of_type(kind) == [], kind
    # The play URL the coordinator is told stays the https one, ready for the resume.
    assert paused.outputs["hlsUrlTemplate"] == "https://stream.example.org/live/{stream}.m3u8"


def test_in_preview_the_rule_waits_for_the_listener() -> None:
    preview = evaluated("prod", preview=True)
    rule = preview.one(RULE)
    assert https_listener(preview).urn in rule.dependencies
    assert rule.inputs["conditions"][0]["pathPattern"]["values"] == list(render.PLAY_PATHS)
    assert preview.outputs["flvUrlTemplate"] == "https://stream.example.org/live/{stream}.flv"
    assert preview.outputs["flvUrlTemplate"] != UNKNOWN


def test_no_coordinator_route_lies_under_the_play_paths() -> None:
    """What the rule forwards never reaches the coordinator: none of its pages or APIs may
    answer a path the origin serves. The app routes them as it would (without its database: a
    matched route fails for want of it, an unmatched path gets the router's own 404)."""
    from starlette.testclient import TestClient
    from streamr_coordinator.app import create_app
    from streamr_coordinator.settings import Settings

    settings = Settings(
        database_url="postgresql+asyncpg://nobody@127.0.0.1/nothing",  # never connected
        token_pepper="p" * 32,
        hook_secret="h" * 32,
    )
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    unrouted = {"detail": "Not Found"}
    assert client.get("/watch/garden-cam").status_code == 500  # routed: needs its database
    for tail in (".m3u8", "-12.ts", ".flv"):
        path = f"/{render.APP}/garden-cam{tail}"
        assert any(path_pattern(p).fullmatch(path) for p in render.PLAY_PATHS), path
        answer = client.get(path)
        assert (answer.status_code, answer.json()) == (404, unrouted), path

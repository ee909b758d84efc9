"""SRS configs: well-formed, every directive known to SRS in its block context, hooks aimed at the
coordinator's real routes through the host's relay, no secret in them at all."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from streamr_coordinator.api import hooks as coordinator_hooks

from srs import cloud_init, parse, render
from tests import reference

REFERENCE = reference.SRS
SCRIPT = Path("srs/bootstrap.sh")
COORDINATOR = "https://api.example.com"

ORIGINS = {
    "dev": render.OriginSettings(coordinator_url="http://streamr-dev-alb.example.com"),
    "prod": render.OriginSettings(coordinator_url=COORDINATOR, max_connections=3000),
}
EDGE = render.EdgeSettings(origin_host="100.64.0.1", server_id="n-7")
EDGE_HTTPS = render.EdgeSettings("100.64.0.1", "n-7", tls_name="n7.edge.example.com")
# What a real SRS 6 edge did with this kit's HTTPS config (scripts/real_edge_https_run.py).
HTTPS_RUN = Path("tests/fixtures/srs/edge-https/run.json")


@pytest.fixture(scope="module")
def known() -> set[tuple[str, ...]]:
    """(block…, directive) paths in SRS's own reference config."""
    return parse.parse((REFERENCE / "full.conf").read_text()).contexts()


def rendered() -> dict[str, str]:
    return {
        **{f"origin-{stage}": render.render_origin(s) for stage, s in ORIGINS.items()},
        "edge": render.render_edge(EDGE),
        "edge-https": render.render_edge(EDGE_HTTPS),
    }


def hooks_of(text: str) -> dict[str, str]:
    (vhost,) = parse.parse(text).find("vhost")
    (block,) = vhost.find("http_hooks")
    return {d.name: d.args[0] for d in block.children or [] if d.name != "enabled"}


def test_the_reader_understands_srs_configs_that_ran() -> None:
    config = parse.parse((REFERENCE / "test.conf").read_text())
    (vhost,) = config.find("vhost")
    assert vhost.args == ["__defaultVhost__"]
    assert [d.args for d in config.find("listen")] == [["127.0.0.1:19350"]]
    assert hooks_of((REFERENCE / "test.conf").read_text())["on_publish"].endswith("/on_publish")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("vhost a { hls { enabled on; }", "unbalanced braces"),
        ("vhost a { } }", "closes no block"),
        ("listen 1935", "lacks its ';'"),
        ('server_id "x;', "unterminated"),
    ],
)
def test_the_reader_refuses_broken_configs(text: str, problem: str) -> None:
    with pytest.raises(parse.SrsConfigError, match=problem):
        parse.parse(text)


@pytest.mark.parametrize("name", sorted(rendered()))
def test_every_directive_exists_in_srs_in_the_same_block(name: str, known) -> None:
    contexts = parse.parse(rendered()[name]).contexts()
    assert contexts - known == set()


def test_the_check_catches_a_directive_in_the_wrong_block(known) -> None:
    misplaced = parse.parse("vhost x { hls_fragment 2; }").contexts()
    assert misplaced - known == {("vhost", "hls_fragment")}


def relayed(url: str, action: str) -> bool:
    parts = urlsplit(url)
    return (parts.scheme, parts.hostname, parts.port, parts.path, parts.query) == (
        "http",
        "127.0.0.1",
        render.HOOK_RELAY_PORT,
        f"/hooks/srs/{action}",
        "",
    )


@pytest.mark.parametrize("stage", sorted(ORIGINS))
def test_origin_hooks_reach_the_coordinators_routes_through_the_relay_with_no_query(
    stage: str,
) -> None:
    text = render.render_origin(ORIGINS[stage])
    hooks = hooks_of(text)
    assert set(hooks) == {"on_publish", "on_unpublish", "on_play", "on_stop"}
    routes = {route.path for route in coordinator_hooks.router.routes}
    (heartbeat,) = parse.parse(text).find("heartbeat")
    for action, url in {**hooks, "heartbeat": heartbeat.find("url")[0].args[0]}.items():
        assert relayed(url, action), url
        assert urlsplit(url).path in routes
    assert "secret" not in text and "token" not in text


def test_the_edge_reports_viewers_through_its_relay_and_cannot_publish() -> None:
    hooks = hooks_of(render.render_edge(EDGE))
    assert set(hooks) == {"on_play", "on_stop"}
    for action, url in hooks.items():
        assert relayed(url, action), url
    assert "node_token" not in render.render_edge(EDGE)
    (vhost,) = parse.parse(render.render_edge(EDGE)).find("vhost")
    (cluster,) = vhost.find("cluster")
    settings = {d.name: d.args for d in cluster.children or []}
    assert settings["mode"] == ["remote"]
    assert settings["origin"] == ["100.64.0.1:1935"]
    (api,) = parse.parse(render.render_edge(EDGE)).find("http_api")
    assert api.find("listen")[0].args == ["127.0.0.1:1985"]


def https_block(text: str) -> dict[str, list[str]]:
    (server,) = parse.parse(text).find("http_server")
    blocks = server.find("https")
    return {d.name: d.args for block in blocks for d in block.children or []}


def test_the_edge_serves_https_only_with_a_certificate() -> None:
    assert https_block(render.render_edge(EDGE)) == {}
    assert https_block(render.render_edge(EDGE_HTTPS)) == {
        "enabled": ["on"],
        "listen": ["8443"],
        "key": ["./conf/tls/n7.edge.example.com.key"],
        "cert": ["./conf/tls/n7.edge.example.com.crt"],
    }
    (server,) = parse.parse(render.render_edge(EDGE_HTTPS)).find("http_server")
    assert server.find("listen")[0].args == ["8080"]  # HTTP stays, for viewers on the mesh


def test_the_https_edge_played_on_a_real_srs_as_the_node_kit_expects() -> None:
    """The recorded run used the config render_edge makes (its ports moved) and shows what the
    kit relies on: HTTPS-FLV with CORS for a watch page, an RSA key (lego's default EC key is
    refused: edge_cert.sh asks for rsa2048), the intermediate sent from lego's bundle, and a
    renewed certificate served without a restart (so renewal does not restart the edge)."""
    run = json.loads(HTTPS_RUN.read_text())
    recorded = https_block(run["edge_config"])
    rendered = https_block(
        render.render_edge(render.EdgeSettings("1.2.3.4", "e", tls_name=run["edge_name"]))
    )
    assert {**recorded, "listen": ["8443"]} == rendered
    assert run["ec256_key"].startswith("handshake failed")
    assert run["rsa2048_key_trusting_intermediate"] is True
    assert isinstance(run["rsa2048_key_trusting_root_only"], int)
    for fetch in ("https_curl", "https_curl_root_only"):
        assert run[fetch]["http_status"] == 200 and run[fetch]["ssl_verify_result"] == 0
        assert run[fetch]["received_bytes"] > 100_000 and run[fetch]["cors_allow_origin"] == "*"
    assert run["https_curl_ffprobe"]["codecs"] == ["aac", "h264"]
    assert run["https_ffprobe_direct"]["codecs"] == ["aac", "h264"]
    assert run["renewed_served_without_restart"] is True
    edge_cert = Path("node/edge_cert.sh").read_text()
    assert "--key-type rsa2048" in edge_cert and "docker" not in edge_cert


def test_the_origin_serves_low_latency_hls_with_a_bounded_window_and_http_flv() -> None:
    config = parse.parse(render.render_origin(ORIGINS["prod"]))
    (vhost,) = config.find("vhost")
    (hls,) = vhost.find("hls")
    hls_settings = {d.name: d.args for d in hls.children or []}
    assert hls_settings["hls_fragment"] == ["2"]
    assert hls_settings["hls_window"] == ["12"]
    assert hls_settings["hls_cleanup"] == ["on"]
    (remux,) = vhost.find("http_remux")
    assert {d.name: d.args for d in remux.children or []}["enabled"] == ["on"]
    assert config.find("max_connections")[0].args == ["3000"]
    (api,) = config.find("http_api")
    assert api.find("listen")[0].args == ["1985"]
    (raw,) = api.find("raw_api")
    assert raw.find("enabled")[0].args == ["off"]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: render.OriginSettings("ftp://x"), "coordinator_url 'ftp://x' must be an http"),
        (lambda: render.OriginSettings(COORDINATOR + "?a=1"), "without a query"),
        (lambda: render.OriginSettings(COORDINATOR, hls_fragment_seconds=0), "hls_fragment"),
        (lambda: render.OriginSettings(COORDINATOR, hls_window_seconds=3), "hls_window_seconds"),
        (lambda: render.OriginSettings(COORDINATOR, server_id="Bad Id"), "server_id 'Bad Id'"),
        (lambda: render.OriginSettings(COORDINATOR, hook_relay_port=80), "hook_relay_port is 80"),
        (lambda: render.EdgeSettings("not a host!", "e1"), "origin_host"),
        (lambda: render.EdgeSettings("1.2.3.4", "e1", max_connections=1), "max_con"),
        (lambda: render.EdgeSettings("1.2.3.4", "e1", tls_name="a b"), "tls_name 'a b'"),
        (lambda: render.EdgeSettings("1.2.3.4", "e1", https_port=8080), "https_port must not"),
        (lambda: render.EdgeSettings("1.2.3.4", "e1", https_port=0), "https_port is 0"),
    ],
)
def test_bad_settings_name_the_setting(build, message: str) -> None:
    with pytest.raises(render.SrsSettingsError, match=message):
        build()


def test_user_data_holds_the_template_and_names_but_no_secret() -> None:
    text = cloud_init.render_user_data(
        ORIGINS["prod"],
        cloud_init.OriginHost(
            region="eu-west-1",
            hook_secret_parameter="/streamr-prod-coordinator/hook-secret",
            log_group="streamr-prod-srs-logs",
        ),
    )
    assert text.startswith("#cloud-config\n")
    assert "HOOK_SECRET_PARAMETER=/streamr-prod-coordinator/hook-secret" in text
    assert f"HOOK_RELAY_PORT={render.HOOK_RELAY_PORT}" in text
    assert len(text.encode()) < cloud_init.USER_DATA_LIMIT


def test_bootstrap_passes_shellcheck() -> None:
    result = subprocess.run(
        [".venv/bin/shellcheck", "--severity=style", "--shell=bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_the_image_is_an_exact_srs_release_with_the_edge_flv_fix() -> None:
    """Not the floating `ossrs/srs:6`: 6.0.155-6.0.157 break an edge whose first viewer plays
    HTTP-FLV (SRS #4215, fixed in 6.0.158)."""
    repository, tag = render.SRS_IMAGE.split(":")
    assert repository == "ossrs/srs"
    major, minor, revision = (int(part) for part in tag.split("."))
    assert (major, minor) == (6, 0) and revision >= 158

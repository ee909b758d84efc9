"""SRS configs: well-formed, every directive known to SRS in its block context, hooks aimed at the
coordinator's real routes, no secret values; the origin bootstrap fills the secret in."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

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
EDGE = render.EdgeSettings(coordinator_url=COORDINATOR, origin_host="100.64.0.1", server_id="n-7")


@pytest.fixture(scope="module")
def known() -> set[tuple[str, ...]]:
    """(block…, directive) paths in SRS's own reference config."""
    return parse.parse((REFERENCE / "full.conf").read_text()).contexts()


def rendered() -> dict[str, str]:
    return {
        **{f"origin-{stage}": render.render_origin(s) for stage, s in ORIGINS.items()},
        "edge": render.render_edge(EDGE),
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


@pytest.mark.parametrize("stage", sorted(ORIGINS))
def test_origin_hooks_reach_the_coordinators_routes_with_the_secret_placeholder(
    stage: str,
) -> None:
    hooks = hooks_of(render.render_origin(ORIGINS[stage]))
    assert set(hooks) == {"on_publish", "on_unpublish", "on_play", "on_stop"}
    routes = {route.path for route in coordinator_hooks.router.routes}
    for action, url in hooks.items():
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == ORIGINS[stage].coordinator_url
        assert parts.path == f"/hooks/srs/{action}"
        assert parts.path in routes
        assert parse_qs(parts.query) == {"secret": [render.HOOK_SECRET_PLACEHOLDER]}


def test_the_edge_reports_viewers_with_its_own_token_and_cannot_publish() -> None:
    hooks = hooks_of(render.render_edge(EDGE))
    assert set(hooks) == {"on_play", "on_stop"}
    for url in hooks.values():
        assert parse_qs(urlsplit(url).query) == {"node_token": [render.NODE_TOKEN_PLACEHOLDER]}
    (vhost,) = parse.parse(render.render_edge(EDGE)).find("vhost")
    (cluster,) = vhost.find("cluster")
    settings = {d.name: d.args for d in cluster.children or []}
    assert settings["mode"] == ["remote"]
    assert settings["origin"] == ["100.64.0.1:1935"]
    (api,) = parse.parse(render.render_edge(EDGE)).find("http_api")
    assert api.find("listen")[0].args == ["127.0.0.1:1985"]


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
        (lambda: render.EdgeSettings(COORDINATOR, "not a host!", "e1"), "origin_host"),
        (lambda: render.EdgeSettings(COORDINATOR, "1.2.3.4", "e1", max_connections=1), "max_con"),
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
            hook_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:hook-AbCdEf",
            log_group="streamr-prod-srs-logs",
        ),
    )
    assert text.startswith("#cloud-config\n")
    assert render.HOOK_SECRET_PLACEHOLDER in text
    assert "HOOK_SECRET_ARN=arn:aws:secretsmanager:" in text
    assert len(text.encode()) < cloud_init.USER_DATA_LIMIT


def test_bootstrap_passes_shellcheck() -> None:
    result = subprocess.run(
        [".venv/bin/shellcheck", "--severity=style", "--shell=bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_bootstrap_fills_the_secret_into_a_private_config(tmp_path: Path) -> None:
    template = tmp_path / "srs.conf.template"
    template.write_text(render.render_origin(ORIGINS["prod"]))
    config = tmp_path / "srs.conf"
    secret = "s3cr3t/with+odd&chars"
    environment = {**os.environ, "TEMPLATE": str(template), "CONFIG": str(config)}
    subprocess.run(
        ["bash", "-c", f'source {SCRIPT} && write_config "$0"', secret],
        env=environment,
        check=True,
    )
    written = config.read_text()
    assert render.HOOK_SECRET_PLACEHOLDER not in written
    assert hooks_of(written)["on_publish"] == f"{COORDINATOR}/hooks/srs/on_publish?secret={secret}"
    assert config.stat().st_mode & 0o077 == 0


def test_the_image_is_an_exact_srs_release_with_the_edge_flv_fix() -> None:
    """Not the floating `ossrs/srs:6`: 6.0.155-6.0.157 break an edge whose first viewer plays
    HTTP-FLV (SRS #4215, fixed in 6.0.158)."""
    repository, tag = render.SRS_IMAGE.split(":")
    assert repository == "ossrs/srs"
    major, minor, revision = (int(part) for part in tag.split("."))
    assert (major, minor) == (6, 0) and revision >= 158

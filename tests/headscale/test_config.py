"""The rendered Headscale config against the v0.29 reference: keys, types, startup rules."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from headscale import render
from headscale.render import HeadscaleConfigError, HeadscaleSettings
from tests import reference

REFERENCE = reference.HEADSCALE
EXAMPLE = yaml.safe_load((REFERENCE / "config-example.yaml").read_text())

DEV = HeadscaleSettings(
    hostname=render.sslip_hostname("3.120.44.7"),
    public_ipv4="3.120.44.7",
    acme_email="ops@streamr.example.org",
    magic_dns_base_domain="mesh.streamr.internal",
)
PROD = HeadscaleSettings(
    hostname="mesh.streamr.example.org",
    public_ipv4="18.197.3.250",
    acme_email="ops@streamr.example.org",
    magic_dns_base_domain="nodes.streamr.internal",
    derp_region_id=901,
    derp_region_code="streamr-prod",
    log_level="warn",
)

# Keys Headscale renamed or dropped (upstream CHANGELOG, 0.20-0.29) → where they went. Old names
# are ignored or fatal at startup depending on the release, so we must never emit them.
REMOVED_KEYS = {
    "dns_config": "dns (0.23)",
    "acl_policy_path": "policy.path (0.23)",
    "db_type": "database.type (0.23)",
    "db_path": "database.sqlite.path (0.23)",
    "ip_prefixes": "prefixes (0.23)",
    "private_key_path": "removed with the legacy protocol; noise.private_key_path (0.23)",
    "log_level": "log.level (0.20)",
    "node_update_check_interval": "removed (0.23)",
    "ephemeral_node_inactivity_timeout": "node.ephemeral.inactivity_timeout (0.29)",
    "randomize_client_port": "removed; a policy setting now",
    "dns.use_username_in_magic_dns": "removed (0.24)",
}
REQUIRED_KEYS = (
    "server_url",
    "listen_addr",
    "noise.private_key_path",
    "prefixes.v4",
    "prefixes.v6",
    "derp.server.enabled",
    "derp.server.stun_listen_addr",
    "derp.server.private_key_path",
    "derp.server.ipv4",
    "database.type",
    "database.sqlite.path",
    "database.sqlite.write_ahead_log",
    "tls_letsencrypt_hostname",
    "tls_letsencrypt_cache_dir",
    "tls_letsencrypt_challenge_type",
    "policy.mode",
    "policy.path",
    "dns.base_domain",
    "metrics_listen_addr",
    "disable_check_updates",
    "unix_socket",
    "unix_socket_permission",
)
LOG_LEVELS = {"panic", "fatal", "error", "warn", "info", "debug", "trace"}
EXAMPLE_DERP_IPV4 = "198.51.100.1"


def leaves(document: dict, prefix: str = "") -> dict[str, Any]:
    """Dotted path → value for every leaf (lists and scalars are leaves, mappings are walked)."""
    found: dict[str, Any] = {}
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            found.update(leaves(value, path + "."))
        else:
            found[path] = value
    return found


def all_paths(document: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key, value in document.items():
        paths.add(f"{prefix}{key}")
        if isinstance(value, dict):
            paths |= all_paths(value, f"{prefix}{key}.")
    return paths


def get(document: dict, path: str) -> Any:
    for key in path.split("."):
        document = document[key]
    return document


def duration_seconds(value: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    parts = re.fullmatch(r"((\d+)h)?((\d+)m)?((\d+)s)?", value)
    if not value or parts is None:
        raise ValueError(f"not a Go duration: {value!r}")
    return sum(
        int(parts.group(i)) * units[u] for i, u in ((2, "h"), (4, "m"), (6, "s")) if parts.group(i)
    )


def startup_problems(config: dict) -> list[str]:
    """The checks Headscale's config loader and server start make, as far as our keys reach."""
    problems = []
    url = urlsplit(config["server_url"])
    host = url.hostname or ""
    derp = config["derp"]
    if derp["server"]["enabled"]:
        if url.scheme != "https":
            problems.append("embedded DERP needs an https server_url")
        if not derp["server"].get("stun_listen_addr"):
            problems.append("embedded DERP needs stun_listen_addr")
        if derp["server"].get("ipv4") == EXAMPLE_DERP_IPV4:
            problems.append("derp.server.ipv4 still holds the example address")
    if not (
        derp["urls"]
        or derp["paths"]
        or (derp["server"]["enabled"] and derp["server"]["automatically_add_embedded_derp_region"])
    ):
        problems.append("no DERP source: clients behind hard NAT could not connect")
    if config["tls_letsencrypt_hostname"]:
        if config["tls_cert_path"] or config["tls_key_path"]:
            problems.append("Let's Encrypt and tls_cert_path are mutually exclusive")
        if config["tls_letsencrypt_hostname"] != host:
            problems.append("tls_letsencrypt_hostname differs from the server_url host")
        if not config["tls_letsencrypt_cache_dir"]:
            problems.append("tls_letsencrypt_cache_dir is required with Let's Encrypt")
        challenge = config["tls_letsencrypt_challenge_type"]
        if challenge not in ("HTTP-01", "TLS-ALPN-01"):
            problems.append(f"unknown ACME challenge {challenge}")
        if challenge == "HTTP-01" and config["tls_letsencrypt_listen"] not in (":http", ":80"):
            problems.append("HTTP-01 must listen on port 80")
        if challenge == "TLS-ALPN-01" and not config["listen_addr"].endswith(":443"):
            problems.append("TLS-ALPN-01 needs listen_addr on 443")
    if url.port not in (None, int(config["listen_addr"].rsplit(":", 1)[1])):
        problems.append("server_url port differs from listen_addr")
    dns = config["dns"]
    if dns["magic_dns"] and not dns["base_domain"]:
        problems.append("magic_dns needs dns.base_domain")
    if dns["base_domain"] and (
        host == dns["base_domain"] or host.endswith("." + dns["base_domain"])
    ):
        problems.append("server_url cannot be inside dns.base_domain")
    if dns["override_local_dns"] and not dns["nameservers"]["global"]:
        problems.append("override_local_dns needs global nameservers")
    prefixes = config["prefixes"]
    v4, v6 = (ipaddress.ip_network(prefixes[family]) for family in ("v4", "v6"))
    if not v4.subnet_of(ipaddress.ip_network("100.64.0.0/10")):
        problems.append("prefixes.v4 outside 100.64.0.0/10")
    if not v6.subnet_of(ipaddress.ip_network("fd7a:115c:a1e0::/48")):
        problems.append("prefixes.v6 outside fd7a:115c:a1e0::/48")
    if prefixes["allocation"] not in ("sequential", "random"):
        problems.append("prefixes.allocation must be sequential or random")
    if config["policy"]["mode"] not in ("file", "database"):
        problems.append("policy.mode must be file or database")
    if config["policy"]["mode"] == "file" and not config["policy"]["path"]:
        problems.append("policy.mode file needs policy.path")
    if not re.fullmatch(r"0?[0-7]{3}", config["unix_socket_permission"]):
        problems.append("unix_socket_permission is not an octal mode")
    if config["log"]["level"] not in LOG_LEVELS:
        problems.append("log.level invalid")
    if duration_seconds(config["node"]["ephemeral"]["inactivity_timeout"]) < 65:
        problems.append("node.ephemeral.inactivity_timeout must be more than 65s")
    if config["database"]["type"] not in ("sqlite", "postgres"):
        problems.append("database.type must be sqlite or postgres")
    return problems


@pytest.fixture(params=[DEV, PROD], ids=["dev", "prod"])
def settings(request: pytest.FixtureRequest) -> HeadscaleSettings:
    return request.param


@pytest.fixture
def config(settings: HeadscaleSettings) -> dict:
    return yaml.safe_load(render.render_config(settings))


def test_every_emitted_key_exists_in_the_reference_example(config: dict) -> None:
    known = all_paths(EXAMPLE)
    unknown = sorted(path for path in leaves(config) if path not in known)
    assert unknown == []


def test_every_emitted_value_has_the_reference_type(config: dict) -> None:
    example = leaves(EXAMPLE)
    mismatched = {
        path: (type(value).__name__, type(example[path]).__name__)
        for path, value in leaves(config).items()
        if example[path] is not None
        and type(value) is not type(example[path])
        and not (isinstance(value, list) and isinstance(example[path], list))
    }
    assert mismatched == {}


def test_required_keys_are_present_and_set(config: dict) -> None:
    missing = [path for path in REQUIRED_KEYS if get(config, path) in (None, "")]
    assert missing == []


def test_removed_keys_are_absent_from_config_and_reference() -> None:
    emitted = all_paths(config_document := render.config_document(DEV))
    assert config_document
    assert sorted(key for key in REMOVED_KEYS if key in emitted) == []
    # The reference (v0.29.2) agrees that these names are gone.
    assert sorted(key for key in REMOVED_KEYS if key in all_paths(EXAMPLE)) == []


def test_startup_rules_hold(config: dict) -> None:
    assert startup_problems(config) == []


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        ("server_url", "http://mesh.streamr.example.org", "https"),
        ("derp.server.ipv4", EXAMPLE_DERP_IPV4, "example address"),
        ("dns.base_domain", "streamr.example.org", "inside dns.base_domain"),
        ("tls_cert_path", "/etc/ssl/cert.pem", "mutually exclusive"),
        ("tls_letsencrypt_listen", ":8081", "port 80"),
        ("prefixes.v4", "10.0.0.0/8", "outside"),
        ("node.ephemeral.inactivity_timeout", "30s", "65s"),
        ("policy.path", "", "policy.path"),
    ],
)
def test_startup_rule_checker_catches_violations(path: str, value: str, problem: str) -> None:
    broken = render.config_document(PROD)
    *parents, leaf = path.split(".")
    target = broken
    for key in parents:
        target = target[key]
    target[leaf] = value
    assert any(problem in found for found in startup_problems(broken))


def test_specific_settings(settings: HeadscaleSettings, config: dict) -> None:
    assert config["server_url"] == f"https://{settings.hostname}"
    assert config["tls_letsencrypt_hostname"] == settings.hostname
    assert config["tls_letsencrypt_challenge_type"] == "HTTP-01"
    assert config["listen_addr"] == "0.0.0.0:443"
    assert config["derp"]["server"]["ipv4"] == settings.public_ipv4
    assert config["derp"]["server"]["region_id"] == settings.derp_region_id
    assert config["derp"]["server"]["stun_listen_addr"] == "0.0.0.0:3478"
    assert config["derp"]["urls"] == []  # only our own relay
    assert config["database"]["sqlite"]["write_ahead_log"] is True
    data_paths = [
        config["database"]["sqlite"]["path"],
        config["noise"]["private_key_path"],
        config["derp"]["server"]["private_key_path"],
        config["tls_letsencrypt_cache_dir"],
    ]
    assert all(path.startswith(render.DATA_DIR + "/") for path in data_paths)
    assert config["policy"] == {"mode": "file", "path": render.POLICY_PATH}
    assert ipaddress.ip_address(config["metrics_listen_addr"].rsplit(":", 1)[0]).is_loopback
    assert ipaddress.ip_address(config["grpc_listen_addr"].rsplit(":", 1)[0]).is_loopback
    assert config["disable_check_updates"] is True
    assert config["unix_socket_permission"] == "0770"
    assert config["logtail"]["enabled"] is False


def test_rendered_text_is_yaml_with_a_header() -> None:
    text = render.render_config(PROD)
    assert text.startswith("# Headscale ")
    # The socket mode must stay a string: unquoted 0770 would be read as an int by YAML 1.1.
    assert "unix_socket_permission: '0770'" in text


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"hostname": "Mesh.Example.org"}, "hostname"),
        ({"hostname": "localhost"}, "hostname"),
        ({"public_ipv4": "10.0.0.5"}, "public_ipv4"),
        ({"public_ipv4": "not-an-ip"}, "public_ipv4"),
        ({"acme_email": "ops"}, "acme_email"),
        ({"magic_dns_base_domain": "example.org"}, "magic_dns_base_domain"),
        ({"magic_dns_base_domain": "mesh.streamr.example.org"}, "magic_dns_base_domain"),
        ({"derp_region_id": 1}, "derp_region_id"),
        ({"derp_region_code": "Streamr Prod"}, "derp_region_code"),
        ({"log_level": "verbose"}, "log_level"),
    ],
)
def test_bad_inputs_are_refused_naming_the_field(changes: dict, field: str) -> None:
    settings = HeadscaleSettings(**{**PROD.__dict__, **changes})
    with pytest.raises(HeadscaleConfigError, match=field):
        render.render_config(settings)


def test_sslip_hostname_embeds_the_address() -> None:
    assert render.sslip_hostname("3.120.44.7") == "3-120-44-7.sslip.io"
    with pytest.raises(HeadscaleConfigError, match="public_ipv4"):
        render.sslip_hostname("192.168.1.1")

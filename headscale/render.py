"""Render Headscale's `config.yaml` and ACL policy from typed inputs.

Pure functions: the Pulumi component calls them with the Elastic IP and hostname, the tests call
them with dev- and prod-like inputs and check the result against the v0.29 reference config.
Nothing rendered here is secret (keys are generated on the host, API keys live in Secrets Manager).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Literal

import yaml

# Pinned release. Config keys follow the v0.29.2 reference (`config-example.yaml`); 0.29.3 is a
# patch release of the same branch. Checksum of the GitHub release asset
# `headscale_0.29.3_linux_arm64` (the bare binary).
HEADSCALE_VERSION = "0.29.3"
HEADSCALE_LINUX_ARM64_SHA256 = "ecf0099f9aa1efb56e7c74718342a493f7d44a840626a2877ca526e675040f4e"

CONFIG_PATH = "/etc/headscale/config.yaml"
POLICY_PATH = "/etc/headscale/acl.hujson"
# The persistent EBS data volume is mounted here; everything Headscale must keep lives on it.
DATA_DIR = "/var/lib/headscale"
UNIX_SOCKET = "/var/run/headscale/headscale.sock"

STUN_PORT = 3478
HTTPS_PORT = 443
METRICS_ADDR = "127.0.0.1:9090"

# Mesh roles. Tags are owned by nobody (`[]`): only pre-auth keys minted through the admin API
# can carry them, so no node can promote itself to `tag:origin`.
TAG_ORIGIN = "tag:origin"
TAG_FRIEND = "tag:friend"
TAG_VIEWER = "tag:viewer"
MESH_TAGS = (TAG_ORIGIN, TAG_FRIEND, TAG_VIEWER)
SRS_RTMP_PORT = 1935
SRS_HTTP_PORT = 8080

LogLevel = Literal["panic", "fatal", "error", "warn", "info", "debug", "trace"]
LOG_LEVELS: tuple[LogLevel, ...] = ("panic", "fatal", "error", "warn", "info", "debug", "trace")

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_REGION_CODE = re.compile(r"^[a-z0-9-]{1,32}$")


class HeadscaleConfigError(ValueError):
    """An input cannot produce a config Headscale would start with; the message names the field."""


@dataclass(frozen=True)
class HeadscaleSettings:
    """What varies between stacks; everything else is fixed policy in `render_config`."""

    hostname: str  # public DNS name in server_url and the Let's Encrypt certificate
    public_ipv4: str  # the Elastic IP, advertised in the DERP map
    acme_email: str  # Let's Encrypt expiry notices; "" registers without one
    magic_dns_base_domain: str  # must not contain the server hostname (Headscale refuses to start)
    derp_region_id: int = 900
    derp_region_code: str = "streamr"
    derp_region_name: str = "StreamrP2P"
    log_level: LogLevel = "info"


def sslip_hostname(public_ipv4: str) -> str:
    """`203.0.113.7` → `203-0-113-7.sslip.io`: a try-out hostname when no domain is configured.

    sslip.io is a public wildcard DNS service that answers with the IP embedded in the name; it is
    enough for Let's Encrypt HTTP-01, but the platform's reachability then depends on it.
    """
    address = _ipv4(public_ipv4, "public_ipv4")
    return f"{str(address).replace('.', '-')}.sslip.io"


def server_url(settings: HeadscaleSettings) -> str:
    return f"https://{settings.hostname}"


def validate(settings: HeadscaleSettings) -> None:
    problems = []
    if not _HOSTNAME.match(settings.hostname):
        problems.append(f"hostname {settings.hostname!r} is not a lowercase DNS name")
    try:
        _ipv4(settings.public_ipv4, "public_ipv4")
    except HeadscaleConfigError as error:
        problems.append(str(error))
    email = settings.acme_email
    if email and ("@" not in email or email.startswith("@")):
        problems.append(f"acme_email {settings.acme_email!r} is not an email address")
    base = settings.magic_dns_base_domain
    if not _HOSTNAME.match(base):
        problems.append(f"magic_dns_base_domain {base!r} is not a lowercase DNS name")
    elif settings.hostname == base or settings.hostname.endswith("." + base):
        problems.append(
            f"magic_dns_base_domain {base!r} contains the server hostname {settings.hostname!r}; "
            "nodes would resolve the control server inside the mesh"
        )
    if not 900 <= settings.derp_region_id <= 999:
        problems.append(
            f"derp_region_id {settings.derp_region_id} must be in 900..999 "
            "(Tailscale's public DERP regions use lower ids)"
        )
    if not _REGION_CODE.match(settings.derp_region_code):
        problems.append(f"derp_region_code {settings.derp_region_code!r} must match [a-z0-9-]+")
    if settings.log_level not in LOG_LEVELS:
        problems.append(f"log_level {settings.log_level!r} must be one of {', '.join(LOG_LEVELS)}")
    if problems:
        raise HeadscaleConfigError("; ".join(problems))


def config_document(settings: HeadscaleSettings) -> dict:
    """The config as a mapping (tests inspect this; `render_config` serialises it)."""
    validate(settings)
    return {
        "server_url": server_url(settings),
        "listen_addr": f"0.0.0.0:{HTTPS_PORT}",
        "metrics_listen_addr": METRICS_ADDR,
        # The CLI talks over the unix socket; remote gRPC stays on loopback.
        "grpc_listen_addr": "127.0.0.1:50443",
        "grpc_allow_insecure": False,
        "trusted_proxies": [],
        "noise": {"private_key_path": f"{DATA_DIR}/noise_private.key"},
        "prefixes": {
            "v4": "100.64.0.0/10",
            "v6": "fd7a:115c:a1e0::/48",
            "allocation": "sequential",
        },
        "derp": {
            "server": {
                "enabled": True,
                "region_id": settings.derp_region_id,
                "region_code": settings.derp_region_code,
                "region_name": settings.derp_region_name,
                "verify_clients": True,
                "stun_listen_addr": f"0.0.0.0:{STUN_PORT}",
                "private_key_path": f"{DATA_DIR}/derp_server_private.key",
                "automatically_add_embedded_derp_region": True,
                "ipv4": settings.public_ipv4,
            },
            # Only our own relay: mesh traffic never falls back to third-party DERP servers.
            "urls": [],
            "paths": [],
            "auto_update_enabled": False,
            "update_frequency": "3h",
        },
        "disable_check_updates": True,
        "node": {"expiry": 0, "ephemeral": {"inactivity_timeout": "30m"}},
        "database": {
            "type": "sqlite",
            "debug": False,
            "sqlite": {
                "path": f"{DATA_DIR}/db.sqlite",
                "write_ahead_log": True,
                "wal_autocheckpoint": 1000,
            },
        },
        "acme_url": "https://acme-v02.api.letsencrypt.org/directory",
        "acme_email": settings.acme_email,
        "tls_letsencrypt_hostname": settings.hostname,
        "tls_letsencrypt_cache_dir": f"{DATA_DIR}/cache",
        "tls_letsencrypt_challenge_type": "HTTP-01",
        "tls_letsencrypt_listen": ":http",
        "tls_cert_path": "",
        "tls_key_path": "",
        "log": {"level": settings.log_level, "format": "json"},
        "policy": {"mode": "file", "path": POLICY_PATH},
        "dns": {
            "magic_dns": True,
            "base_domain": settings.magic_dns_base_domain,
            # Friends run nodes on their own machines: leave their resolvers alone.
            "override_local_dns": False,
            "nameservers": {"global": ["1.1.1.1", "1.0.0.1"], "split": {}},
            "search_domains": [],
            "extra_records": [],
        },
        "unix_socket": UNIX_SOCKET,
        # Owner and group only: the socket grants full admin without an API key.
        "unix_socket_permission": "0770",
        "logtail": {"enabled": False},
        "taildrop": {"enabled": False},
        "auto_update": {"enabled": False},
    }


def render_config(settings: HeadscaleSettings) -> str:
    header = (
        f"# Headscale {HEADSCALE_VERSION} configuration, rendered by headscale/render.py.\n"
        "# Do not edit on the host: the next deploy rewrites it.\n"
    )
    return header + yaml.safe_dump(config_document(settings), sort_keys=False)


def policy_document() -> dict:
    """The ACL policy: friends pull from the origin, viewers pull from friends, nothing else."""
    return {
        "tagOwners": {tag: [] for tag in MESH_TAGS},
        "acls": [
            {
                "action": "accept",
                "src": [TAG_FRIEND],
                "proto": "tcp",
                "dst": [f"{TAG_ORIGIN}:{SRS_RTMP_PORT},{SRS_HTTP_PORT}"],
            },
            {
                "action": "accept",
                "src": [TAG_VIEWER],
                "proto": "tcp",
                "dst": [f"{TAG_FRIEND}:{SRS_HTTP_PORT}"],
            },
        ],
    }


def render_policy() -> str:
    """HuJSON (JSON plus comments and trailing commas); we emit comments, strict JSON otherwise."""
    body = json.dumps(policy_document(), indent=2)
    return (
        "// StreamrP2P mesh policy, rendered by headscale/render.py.\n"
        "// Tags are assigned only by pre-auth keys minted through the Headscale API.\n"
        f"// Friends relay from the origin (RTMP {SRS_RTMP_PORT}, HTTP {SRS_HTTP_PORT});\n"
        f"// viewers play from friends (HTTP {SRS_HTTP_PORT}). Everything else is denied.\n"
        f"{body}\n"
    )


def _ipv4(value: str, field: str) -> ipaddress.IPv4Address:
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        raise HeadscaleConfigError(f"{field} {value!r} is not an IPv4 address") from None
    if any(address in network for network in _NEVER_PUBLIC):
        raise HeadscaleConfigError(f"{field} {value} is not a public address")
    return address


# Ranges an Elastic IP can never come from (private, shared/CGNAT, loopback, link-local, "this").
_NEVER_PUBLIC = tuple(
    ipaddress.IPv4Network(block)
    for block in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/3",
    )
)

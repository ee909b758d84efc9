"""SRS configs rendered from typed settings: the origin (RTMP ingest, HLS, HTTP-FLV, hooks to the
coordinator) and a friend's edge (pulls from the origin over the mesh, reports its viewers).

No secret appears in what we render, nor in what SRS logs of it: SRS writes every hook URL to its
log, so hooks go to the host's hook relay on loopback (`srs/hook_relay.py`), which adds the hook
secret (origin) or node token (edge) as an `Authorization` header on the way to the coordinator.
Configs can sit in user data, Pulumi state and git as they are.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

# An exact SRS 6 release, never the floating `ossrs/srs:6`: 6.0.155-6.0.157 name an edge's pull
# `<stream>.flv` when its first viewer plays HTTP-FLV (SRS #4215, fixed in 6.0.158), so the
# release must be 6.0.158 or later. The behaviour we rely on is recorded in tests/fixtures/srs
# (6.0.157 built from source with that fix). No digest: Docker Hub cannot be reached from where
# this was written, see tests/fixtures/srs/README.md.
SRS_VERSION = "6.0.158"
SRS_IMAGE = f"ossrs/srs:{SRS_VERSION}"
APP = "live"
RTMP_PORT = 1935
HTTP_PORT = 8080
# The edge's HTTPS (HTTP-FLV for https watch pages, which may not fetch http:// media), under the
# edge name the coordinator gave the node; 8443 because a friend's box may already serve 443.
HTTPS_PORT = 8443
# Where the edge container finds the node's certificate (node/setup.sh mounts lego's folder here).
EDGE_TLS_DIR = "./conf/tls"
API_PORT = 1985
# Where SRS finds the hook relay on its own host (loopback only).
HOOK_RELAY_PORT = 1990
ORIGIN_HOOKS = ("on_publish", "on_unpublish", "on_play", "on_stop")
# The origin's heartbeat to the coordinator, which ends the streams of an origin gone silent
# (STREAMR_ORIGIN_SILENCE_SECONDS, 30 by default: three beats).
HEARTBEAT_SECONDS = 10
EDGE_HOOKS = ("on_play", "on_stop")  # an edge cannot publish, and holds no shared secret
HOOK_PATH = "/hooks/srs/"
# Every path viewers play from the origin's HTTP server (the HLS playlist and segments and the
# HTTP-FLV mount below), as ALB path patterns: what the coordinator's HTTPS listener forwards to
# the origin (components/srs_origin.py).
PLAY_PATHS = (f"/{APP}/*.m3u8", f"/{APP}/*.ts", f"/{APP}/*.flv")

_SERVER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9-]{1,63})*$")


class SrsSettingsError(ValueError):
    """A setting is out of range; the message names it and what is allowed."""


def _coordinator(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise SrsSettingsError(
            f"coordinator_url {url!r} must be an http(s) URL without a query, "
            "e.g. https://api.example.com"
        )
    return url.rstrip("/")


def _range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise SrsSettingsError(f"{name} is {value}; allowed: {low}..{high}")


def _server_id(value: str) -> None:
    if not _SERVER_ID.match(value):
        raise SrsSettingsError(f"server_id {value!r} must be 1-63 of a-z, 0-9 and '-'")


@dataclass(frozen=True)
class OriginSettings:
    coordinator_url: str
    server_id: str = "streamr-origin"
    max_connections: int = 1000
    # Short fragments keep HLS latency near 3 fragments; the window bounds memory and disk.
    hls_fragment_seconds: int = 2
    hls_window_seconds: int = 12
    hook_relay_port: int = HOOK_RELAY_PORT

    def __post_init__(self) -> None:
        _coordinator(self.coordinator_url)
        _server_id(self.server_id)
        _range("hook_relay_port", self.hook_relay_port, 1024, 65535)
        _range("max_connections", self.max_connections, 10, 100_000)
        _range("hls_fragment_seconds", self.hls_fragment_seconds, 1, 10)
        _range("hls_window_seconds", self.hls_window_seconds, 2 * self.hls_fragment_seconds, 120)


@dataclass(frozen=True)
class EdgeSettings:
    origin_host: str  # the origin's mesh address (a Tailscale IP or MagicDNS name)
    server_id: str
    max_connections: int = 200
    hook_relay_port: int = HOOK_RELAY_PORT
    # The node's edge name when it has a certificate for it (lego's `<name>.crt`/`.key` in
    # EDGE_TLS_DIR): the edge then serves HTTPS on https_port too. None: HTTP only.
    tls_name: str | None = None
    https_port: int = HTTPS_PORT

    def __post_init__(self) -> None:
        _server_id(self.server_id)
        _range("https_port", self.https_port, 1, 65535)
        if self.https_port == HTTP_PORT:
            raise SrsSettingsError(f"https_port must not be the HTTP port {HTTP_PORT}")
        if self.tls_name is not None and not _HOSTNAME.match(self.tls_name):
            raise SrsSettingsError(f"tls_name {self.tls_name!r} must be a DNS name")
        _range("hook_relay_port", self.hook_relay_port, 1024, 65535)
        _range("max_connections", self.max_connections, 10, 100_000)
        try:
            ipaddress.ip_address(self.origin_host)
        except ValueError:
            if not _HOSTNAME.match(self.origin_host):
                raise SrsSettingsError(
                    f"origin_host {self.origin_host!r} must be an IP address or a host name"
                ) from None


def hook_url(relay_port: int, action: str) -> str:
    """The relay's URL for `action`: no credential, no query (SRS logs it as it is)."""
    return f"http://127.0.0.1:{relay_port}{HOOK_PATH}{action}"


def _hooks(relay_port: int, actions: tuple[str, ...]) -> str:
    lines = "".join(f"        {action:<14}{hook_url(relay_port, action)};\n" for action in actions)
    return f"    http_hooks {{\n        enabled       on;\n{lines}    }}\n"


def _common(server_id: str, max_connections: int) -> str:
    return (
        f"listen              {RTMP_PORT};\n"
        f"max_connections     {max_connections};\n"
        "daemon              off;\n"
        "srs_log_tank        console;\n"
        f"server_id           {server_id};\n"
        "query_latest_version off;\n"
        "disable_daemon_for_docker on;\n"
    )


def render_origin(settings: OriginSettings) -> str:
    """The origin: RTMP in; HLS and HTTP-FLV out; every publish and play asks the coordinator.

    The HTTP API (1985) listens on all addresses because the coordinator reads it across the VPC;
    the security group admits only the coordinator's group to it.
    """
    return (
        "# StreamrP2P SRS origin. Rendered by srs/render.py; hooks go to the host's relay.\n"
        + _common(settings.server_id, settings.max_connections)
        + f"""
http_api {{
    enabled         on;
    listen          {API_PORT};
    crossdomain     off;
    raw_api {{
        enabled     off;
    }}
}}
http_server {{
    enabled         on;
    listen          {HTTP_PORT};
    dir             ./objs/nginx/html;
    crossdomain     on;
}}
heartbeat {{
    enabled         on;
    interval        {HEARTBEAT_SECONDS};
    url             {hook_url(settings.hook_relay_port, "heartbeat")};
    device_id       "{settings.server_id}";
    summaries       off;
}}

vhost __defaultVhost__ {{
    hls {{
        enabled         on;
        hls_fragment    {settings.hls_fragment_seconds};
        hls_window      {settings.hls_window_seconds};
        hls_path        ./objs/nginx/html;
        hls_m3u8_file   [app]/[stream].m3u8;
        hls_ts_file     [app]/[stream]-[seq].ts;
        hls_cleanup     on;
        hls_dispose     30;
        hls_wait_keyframe on;
    }}
    http_remux {{
        enabled     on;
        mount       [vhost]/[app]/[stream].flv;
    }}
"""
        + _hooks(settings.hook_relay_port, ORIGIN_HOOKS)
        + "}\n"
    )


def _https(settings: EdgeSettings) -> str:
    if settings.tls_name is None:
        return ""
    path = f"{EDGE_TLS_DIR}/{settings.tls_name}"
    return f"""    https {{
        enabled     on;
        listen      {settings.https_port};
        key         {path}.key;
        cert        {path}.crt;
    }}
"""


def render_edge(settings: EdgeSettings) -> str:
    """A friend's edge: pulls each stream from the origin over the mesh on its first viewer, serves
    RTMP and HTTP-FLV (and HTTPS-FLV with the node's certificate), and reports its viewers through
    the node's relay, which holds the node's own token (never the origin's secret).
    Its HTTP API answers only on loopback, for the node's reporter."""
    return (
        "# StreamrP2P friend edge. Rendered by srs/render.py; hooks go to the node's relay.\n"
        + _common(settings.server_id, settings.max_connections)
        + f"""
http_api {{
    enabled         on;
    listen          127.0.0.1:{API_PORT};
    crossdomain     off;
}}
http_server {{
    enabled         on;
    listen          {HTTP_PORT};
    dir             ./objs/nginx/html;
    crossdomain     on;
{_https(settings)}}}

vhost __defaultVhost__ {{
    cluster {{
        mode            remote;
        origin          {settings.origin_host}:{RTMP_PORT};
        token_traverse  off;
    }}
    http_remux {{
        enabled     on;
        mount       [vhost]/[app]/[stream].flv;
    }}
"""
        + _hooks(settings.hook_relay_port, EDGE_HOOKS)
        + "}\n"
    )

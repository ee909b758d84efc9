"""Edge names: each friend's edge gets a public DNS name, `n<node id>.<STREAMR_EDGE_DOMAIN>`, whose
A record is the edge's mesh IPv4, so it can hold a real TLS certificate and an https watch page
may play from it (a browser blocks http media on an https page).

Like `tailscale cert`, the node proves it owns the name with ACME DNS-01 and the coordinator
writes the challenge's TXT record for it: the node's private key never leaves the node. Node ids
are never reused, so neither is a name (an old certificate never names a new node).

Pure decisions only; `edge_dns` writes the records.
"""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address
from typing import Any
from urllib.parse import urlsplit

# Short, so a changed mesh address or a finished challenge is forgotten quickly by resolvers.
RECORD_TTL = 60
# An ACME DNS-01 value: the unpadded base64url SHA-256 digest of the key authorization (RFC 8555
# section 8.4), 43 characters.
CHALLENGE_VALUE_PATTERN = r"^[A-Za-z0-9_-]{43}$"


def edge_name(domain: str, node_id: int) -> str:
    return f"n{node_id}.{domain}"


def challenge_name(name: str) -> str:
    return f"_acme-challenge.{name}"


def edge_base_url(name: str, tls_port: int) -> str:
    """Where viewers play from an edge serving HTTPS for its name."""
    return f"https://{name}:{tls_port}"


def mesh_ipv4(play_base_url: str) -> str | None:
    """The IPv4 address in an (already validated) play URL; None for an IPv6 one."""
    address = ip_address(urlsplit(play_base_url).hostname or "")
    return str(address) if isinstance(address, IPv4Address) else None


def address_change(action: str, name: str, ipv4: str) -> dict[str, Any]:
    """A Route 53 change of the edge's A record (`UPSERT` or `DELETE`)."""
    return _change(action, name, "A", ipv4)


def challenge_change(action: str, name: str, value: str) -> dict[str, Any]:
    """A Route 53 change of the edge's ACME challenge record (TXT values are quoted)."""
    return _change(action, challenge_name(name), "TXT", f'"{value}"')


def _change(action: str, name: str, record_type: str, value: str) -> dict[str, Any]:
    return {
        "Action": action,
        "ResourceRecordSet": {
            "Name": name,
            "Type": record_type,
            "TTL": RECORD_TTL,
            "ResourceRecords": [{"Value": value}],
        },
    }

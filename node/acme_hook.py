#!/usr/bin/env python3
"""lego's `exec` DNS hook: the coordinator writes this node's ACME DNS-01 TXT record.

lego runs `acme_hook.py present|cleanup <fqdn> <value>` (EXEC_PATH) while it obtains or renews
the edge's certificate. The node holds no DNS credential and its certificate key never leaves it:
the hook asks the coordinator, with the node's own token, to set or remove the TXT record
`_acme-challenge.<edge name>` (`PUT`/`DELETE /api/v1/nodes/<id>/acme-challenge`). The token is
read at each call from `node.json` in the state directory (STREAMR_STATE_DIR, mode 0600: the
reporter may have renewed it) and sent only as an `Authorization` header, never as an argument,
in a URL or in what the hook prints.

Standard library only, Python 3.9+ (a Raspberry Pi's python3).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_STATE_DIR = "/var/lib/streamr-node"
METHODS = {"present": "PUT", "cleanup": "DELETE"}
TIMEOUT_SECONDS = 30.0


class HookError(RuntimeError):
    """Why the record was not written; the message holds no credential."""


def node_state(state_dir: Path) -> dict[str, str]:
    path = state_dir / "node.json"
    try:
        node = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise HookError(f"cannot read {path}: {error.__class__.__name__}") from None
    missing = [key for key in ("id", "node_token", "coordinator", "edge_name") if not node.get(key)]
    if missing:
        raise HookError(f"{path} has no {', '.join(missing)} (run node/setup.sh again)")
    return node


def challenge_request(
    action: str, fqdn: str, value: str, node: dict[str, str]
) -> urllib.request.Request:
    """The coordinator call for lego's `action` on `fqdn`, refused for any name but this node's."""
    if action not in METHODS:
        raise HookError(f"action must be one of {', '.join(METHODS)}, got {action!r}")
    expected = f"_acme-challenge.{node['edge_name']}"
    if fqdn.rstrip(".").lower() != expected:
        raise HookError(f"lego asked for {fqdn!r}; this node can only answer for {expected}.")
    if not value:
        raise HookError("the TXT value is empty")
    return urllib.request.Request(  # noqa: S310 - the coordinator node/setup.sh registered with
        f"{node['coordinator'].rstrip('/')}/api/v1/nodes/{node['id']}/acme-challenge",
        data=json.dumps({"value": value}).encode(),
        method=METHODS[action],
        headers={
            "Authorization": f"Bearer {node['node_token']}",
            "Content-Type": "application/json",
        },
    )


def send(request: urllib.request.Request) -> None:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            status = answer.status
    except urllib.error.HTTPError as error:
        detail = error.read(300).decode(errors="replace")
        hints = {
            401: "the coordinator no longer accepts this node's token (removed?)",
            409: "the coordinator has no edge domain: it cannot give this node a certificate",
        }
        raise HookError(f"HTTP {error.code}: {hints.get(error.code, detail)}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise HookError(f"the coordinator cannot be reached: {error}") from None
    if status != 204:
        raise HookError(f"the coordinator answered HTTP {status}, expected 204")


def main(arguments: list[str]) -> int:
    if len(arguments) != 3:
        print("usage: acme_hook.py present|cleanup <fqdn> <value>", file=sys.stderr)
        return 2
    action, fqdn, value = arguments
    try:
        node = node_state(Path(os.environ.get("STREAMR_STATE_DIR", DEFAULT_STATE_DIR)))
        send(challenge_request(action, fqdn, value, node))
    except HookError as error:
        print(f"acme_hook: {action} {fqdn}: {error}", file=sys.stderr)
        return 1
    print(f"acme_hook: {action} {fqdn}: done", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The edge's HTTPS certificate: node/acme_hook.py (lego's `exec` DNS hook) and node/edge_cert.sh
(lego run/renew) against a real ACME CA, Pebble, validating DNS-01 against pebble-challtestsrv.

Here the hook talks to a loopback HTTP server that answers as the coordinator's acme-challenge
endpoint does (`PUT`/`DELETE /api/v1/nodes/<id>/acme-challenge`, 204, 401 for another token) and
records each request exactly as sent (which the real coordinator cannot show), writing the TXT
record to challtestsrv where the coordinator writes it to Route 53; the real coordinator's refusals
are checked too, and test_kit_scripts.py runs the whole path through the real coordinator. The
hook runs on the plain /usr/bin/python3 a friend's box has."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest
from cryptography import x509

from . import acme
from .conftest import Api, CoordinatorProcess

HOOK = Path("node/acme_hook.py").resolve()
EDGE_CERT = Path("node/edge_cert.sh").resolve()
TOKEN = "node-token-7Yq3-never-on-a-command-line"
EDGE_NAME = "n7.edge.example.test"
FQDN = f"_acme-challenge.{EDGE_NAME}."


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    body: dict


@dataclass
class ChallengeEndpoint:
    """The coordinator's acme-challenge endpoint as the contract states it, on loopback."""

    pebble: acme.Pebble | None = None
    status: int = 204
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                endpoint.seen.append(
                    Seen(self.command, self.path, self.headers.get("Authorization"), body)
                )
                status = endpoint.status
                authorized = self.headers.get("Authorization") == f"Bearer {TOKEN}"
                if not authorized:
                    status = 401
                elif self.path != "/api/v1/nodes/7/acme-challenge":
                    status = 404
                if status == 204 and endpoint.pebble is not None:
                    host = f"_acme-challenge.{EDGE_NAME}."
                    if self.command == "PUT":
                        endpoint.pebble.set_txt(host, body["value"])
                    else:
                        endpoint.pebble.clear_txt(host)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = do_DELETE = _answer

            def log_message(self, *_: object) -> None:
                pass

        return Handler


@pytest.fixture
def endpoint() -> Iterator[ChallengeEndpoint]:
    state = ChallengeEndpoint()
    server = ThreadingHTTPServer(("127.0.0.1", 0), state.handler())
    server.daemon_threads = True
    Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def node_state(directory: Path, coordinator: str, node_id: int = 7, token: str = TOKEN) -> Path:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    node = {"id": node_id, "name": "attic", "node_token": token, "coordinator": coordinator}
    (directory / "node.json").write_text(json.dumps({**node, "edge_name": EDGE_NAME}))
    (directory / "node.json").chmod(0o600)
    return directory


def run_hook(state: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/usr/bin/python3", str(HOOK), *arguments],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "STREAMR_STATE_DIR": str(state)},
        timeout=60,
        check=False,
    )


def test_hook_asks_the_coordinator_with_the_token_in_a_header_only(
    endpoint: ChallengeEndpoint, tmp_path: Path
) -> None:
    state = node_state(tmp_path / "state", endpoint.url)
    present = run_hook(state, "present", FQDN, "txt-value-1")
    assert present.returncode == 0, present.stderr
    cleanup = run_hook(state, "cleanup", FQDN, "txt-value-1")
    assert cleanup.returncode == 0, cleanup.stderr

    assert endpoint.seen == [
        Seen("PUT", "/api/v1/nodes/7/acme-challenge", f"Bearer {TOKEN}", {"value": "txt-value-1"}),
        Seen(
            "DELETE", "/api/v1/nodes/7/acme-challenge", f"Bearer {TOKEN}", {"value": "txt-value-1"}
        ),
    ]
    for result in (present, cleanup):
        assert TOKEN not in result.stdout + result.stderr


def test_hook_answers_only_for_its_own_name_and_explains_refusals(
    endpoint: ChallengeEndpoint, tmp_path: Path
) -> None:
    state = node_state(tmp_path / "state", endpoint.url)
    other = run_hook(state, "present", "_acme-challenge.n8.edge.example.test.", "v")
    assert other.returncode == 1
    assert f"this node can only answer for _acme-challenge.{EDGE_NAME}." in other.stderr
    assert run_hook(state, "publish", FQDN, "v").stderr.count("must be one of present, cleanup")
    assert run_hook(state, "present", FQDN).returncode == 2
    assert endpoint.seen == []  # nothing was asked of the coordinator

    endpoint.status = 409
    no_domain = run_hook(state, "present", FQDN, "v")
    assert no_domain.returncode == 1
    assert "HTTP 409: the coordinator has no edge domain" in no_domain.stderr

    node = json.loads((state / "node.json").read_text())
    (state / "node.json").write_text(json.dumps({**node, "node_token": "revoked-token"}))
    revoked = run_hook(state, "present", FQDN, "v")
    assert "HTTP 401: the coordinator no longer accepts this node's token" in revoked.stderr
    assert "revoked-token" not in revoked.stderr

    (state / "node.json").write_text(json.dumps({**node, "edge_name": None}))
    unnamed = run_hook(state, "present", FQDN, "v")
    assert "node.json has no edge_name (run node/setup.sh again)" in unnamed.stderr

    (state / "node.json").write_text(json.dumps({**node, "coordinator": "http://127.0.0.1:9"}))
    unreachable = run_hook(state, "present", FQDN, "v")
    assert "the coordinator cannot be reached" in unreachable.stderr
    for result in (no_domain, revoked, unnamed, unreachable):
        assert TOKEN not in result.stderr


def test_the_real_coordinator_without_an_edge_domain_refuses_and_the_hook_says_why(
    coordinator: CoordinatorProcess, tmp_path: Path
) -> None:
    api = Api(coordinator.url)
    friend = api.account("friend")
    node = api.client.post(
        "/api/v1/nodes", json={"name": "attic", "capacity_viewers": 5}, headers=friend.auth
    ).json()
    value = "A" * 43  # the shape of a DNS-01 value (base64url SHA-256)
    state = node_state(tmp_path / "state", coordinator.url, node["id"], node["node_token"])
    refused = run_hook(state, "present", FQDN, value)
    assert refused.returncode == 1
    assert "HTTP 409: the coordinator has no edge domain" in refused.stderr
    other = node_state(tmp_path / "other", coordinator.url, node["id"], "not-this-nodes-token")
    assert (
        "HTTP 401: the coordinator no longer accepts"
        in run_hook(other, "present", FQDN, value).stderr
    )
    assert node["node_token"] not in refused.stdout + refused.stderr


def edge_cert(
    state: Path, pebble: acme.Pebble, action: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *("bash", str(EDGE_CERT), action, "--state-dir", str(state), "--hook", str(HOOK)),
            *("--domain", EDGE_NAME, "--email", "friend@example.test"),
            *("--directory", pebble.directory_url, "--dns-server", pebble.dns_server, *extra),
        ],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "LEGO_CA_CERTIFICATES": str(pebble.ca_file),
            "HOME": str(state.parent),
        },
        timeout=300,
        check=False,
    )


def test_lego_obtains_and_renews_the_edge_certificate_through_the_coordinator(
    endpoint: ChallengeEndpoint, tmp_path: Path
) -> None:
    state = node_state(tmp_path / "state", endpoint.url)

    with acme.pebble(tmp_path / "pebble") as pebble:
        endpoint.pebble = pebble
        obtained = edge_cert(state, pebble, "obtain")
        assert obtained.returncode == 0, obtained.stderr
        certificates = state / "acme" / "certificates"
        crt = certificates / f"{EDGE_NAME}.crt"
        certificate = x509.load_pem_x509_certificate(crt.read_bytes())
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert names.value.get_values_for_type(x509.DNSName) == [EDGE_NAME]
        key = certificates / f"{EDGE_NAME}.key"
        assert oct(key.stat().st_mode & 0o777) == "0o600"
        # RSA: SRS 6 refuses EC keys (tests/fixtures/srs/edge-https, test_render.py).
        assert key.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----\n")
        assert oct((state / "acme").stat().st_mode & 0o777) == "0o700"
        # The record was written and removed through the coordinator, with the token in the
        # header; nothing but the TXT value left the node.
        assert [(seen.method, seen.authorization) for seen in endpoint.seen] == [
            ("PUT", f"Bearer {TOKEN}"),
            ("DELETE", f"Bearer {TOKEN}"),
        ]
        assert endpoint.seen[0].body == endpoint.seen[1].body
        assert list(endpoint.seen[0].body) == ["value"]
        assert TOKEN not in obtained.stdout + obtained.stderr

        again = edge_cert(state, pebble, "obtain")
        assert again.returncode == 0, again.stderr
        assert "already has a certificate" in again.stderr
        assert len(endpoint.seen) == 2

        # Not due (Pebble's certificates last years): nothing renewed.
        not_due = edge_cert(state, pebble, "renew")
        assert not_due.returncode == 0, not_due.stderr
        assert len(endpoint.seen) == 2
        before = certificate.serial_number

        # Due: a new certificate in the same files, which SRS reads at each handshake.
        due = edge_cert(state, pebble, "renew", "--renew-days", "99999")
        assert due.returncode == 0, due.stderr
        renewed = x509.load_pem_x509_certificate(crt.read_bytes())
        assert renewed.serial_number != before
        assert len(endpoint.seen) == 4
        assert TOKEN not in due.stdout + due.stderr


def test_edge_cert_refuses_bad_options(tmp_path: Path) -> None:
    state = node_state(tmp_path / "state", "http://127.0.0.1:9")
    base = ["bash", str(EDGE_CERT), "obtain", "--state-dir", str(state), "--hook", str(HOOK)]
    good = {
        "--domain": EDGE_NAME,
        "--email": "friend@example.test",
        "--directory": "https://acme-staging-v02.api.letsencrypt.org/directory",
    }
    cases = {
        ("--domain", "Not A Name"): "--domain must be a DNS name such as n7.edge.example.com",
        ("--email", "friend"): "--email must be an email address, got 'friend'",
        ("--directory", "http://ca.test/dir"): "--directory must be an ACME directory's https URL",
    }
    for (option, value), message in cases.items():
        options = {**good, option: value}
        result = subprocess.run(
            base + [item for pair in options.items() for item in pair],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 1
        assert message in result.stderr
    wrong = subprocess.run(["bash", str(EDGE_CERT), "fetch"], capture_output=True, text=True)
    assert "the first argument must be obtain or renew, got 'fetch'" in wrong.stderr
    assert not (state / "acme").exists()

"""setup.sh and teardown.sh: shellcheck-clean, and run for real against the real coordinator (a
subprocess on PostgreSQL and Redis, with the spec-checked fake Headscale as its mesh) with stand-in
`tailscale`, `docker` and `systemctl` commands on PATH that record what they were asked to do.
Both scripts are run twice, to show they are idempotent.

With an edge domain, the edge's certificate comes from a real ACME CA: the real `lego` against
Pebble, which validates DNS-01 against pebble-challtestsrv; the coordinator's Route 53 writer is
pointed (AWS_ENDPOINT_URL_ROUTE_53) at a test-only adapter that writes challtestsrv's records
(tests/node/route53_challtestsrv.py), since Route 53 cannot run here."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import create_engine, text

from devenv import services
from srs.render import HOOK_RELAY_PORT
from tests.coordinator.test_mesh_client import API_KEY, FakeHeadscale, _handler

from . import acme
from .conftest import Api, CoordinatorProcess
from .route53_challtestsrv import route53_to_challtestsrv

SETUP = Path("node/setup.sh")
RELAY_UNIT = "streamr-hook-relay.service"
TEARDOWN = Path("node/teardown.sh")
EDGE_CERT = Path("node/edge_cert.sh")
SHELLCHECK = Path(".venv/bin/shellcheck")
MESH_IP = "100.64.0.7"
EDGE_DOMAIN = "edge.example.test"
ZONE_ID = "ZEDGE1"
CERT_UNITS = ("streamr-edge-cert.service", "streamr-edge-cert.timer")

# Stand-ins: each appends its argv to calls.log and keeps what it was told in $STANDIN_DIR.
STANDINS = {
    "tailscale": r"""
case $1 in
  status)
    state=$(cat "$dir/tailscale.state" 2>/dev/null || echo NeedsLogin)
    printf '{"BackendState": "%s"}\n' "$state" ;;
  up)
    for arg in "$@"; do [[ $arg == file:* ]] && cp "${arg#file:}" "$dir/used-key"; done
    echo Running >"$dir/tailscale.state" ;;
  ip) echo "__MESH_IP__" ;;
  logout) echo NeedsLogin >"$dir/tailscale.state" ;;
esac
""".replace("__MESH_IP__", MESH_IP),
    "docker": r"""
case $1 in
  inspect) [[ -f $dir/container ]] ;;
  rm) [[ -f $dir/container ]] && rm "$dir/container" ;;
  run)
    for arg in "$@"; do
      [[ $arg == *:/usr/local/srs/conf/streamr-edge.conf:ro ]] && cp "${arg%%:*}" "$dir/edge.conf"
    done
    touch "$dir/container" ;;
esac
""",
    "systemctl": "",
}


@pytest.fixture
def headscale() -> Iterator[FakeHeadscale]:
    """The coordinator tests' spec-derived fake Headscale, served on loopback."""
    from http.server import ThreadingHTTPServer
    from threading import Thread

    state = FakeHeadscale()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    yield state
    server.shutdown()
    server.server_close()
    assert state.violations == []


def meshed(
    database_url: str,
    redis_server: services.Redis,
    headscale: FakeHeadscale,
    tmp_path: Path,
    **settings: str,
) -> CoordinatorProcess:
    """The coordinator with the fake Headscale as its mesh (and `settings`), not started yet."""
    redis_server.start()
    return CoordinatorProcess(
        database_url,
        redis_server.url,
        tmp_path / "coordinator.log",
        headscale_url=headscale.url,  # type: ignore[attr-defined]
        headscale_api_key=API_KEY,
        **settings,
    )


@pytest.fixture
def meshed_coordinator(
    database_url: str, redis_server: services.Redis, headscale: FakeHeadscale, tmp_path: Path
) -> Iterator[CoordinatorProcess]:
    process = meshed(database_url, redis_server, headscale, tmp_path)
    process.start()
    yield process
    process.stop()


class Box:
    """A friend's machine: the kit's directories under tmp_path, stand-ins first on PATH."""

    def __init__(self, root: Path, coordinator: str, friend_token: str) -> None:
        self.root = root
        self.coordinator = coordinator
        self.standins = root / "standins"
        self.standins.mkdir(parents=True)
        bin_dir = root / "bin"
        bin_dir.mkdir()
        for name, body in STANDINS.items():
            script = bin_dir / name
            script.write_text(
                "#!/usr/bin/env bash\nset -euo pipefail\ndir=$STANDIN_DIR\n"
                f'printf "{name} %s\\n" "$*" >>"$dir/calls.log"\n{body}'
            )
            script.chmod(0o755)
        self.state = root / "state"
        self.install = root / "opt"
        self.units = root / "units"
        self.environment = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",  # a bare python3, as on a Raspberry Pi
            "STANDIN_DIR": str(self.standins),
            "STREAMR_FRIEND_TOKEN": friend_token,
            "HOME": str(root),
        }

    def run(self, script: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
        dirs = ["--state-dir", str(self.state), "--install-dir", str(self.install)]
        return subprocess.run(
            ["bash", str(script), *dirs, "--unit-dir", str(self.units), *arguments],
            capture_output=True,
            text=True,
            env=self.environment,
            timeout=120,
            check=False,
        )

    def setup(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return self.run(SETUP, "--coordinator", self.coordinator, *arguments)

    def calls(self) -> list[str]:
        log = self.standins / "calls.log"
        return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("script", [SETUP, TEARDOWN, EDGE_CERT])
def test_scripts_pass_shellcheck_and_are_strict(script: Path) -> None:
    result = subprocess.run(
        [str(SHELLCHECK), "--severity=style", "--shell=bash", str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in script.read_text()
    assert script.stat().st_mode & 0o111


def test_setup_joins_relays_and_reports_and_teardown_removes_everything(
    meshed_coordinator: CoordinatorProcess, headscale: FakeHeadscale, tmp_path: Path
) -> None:
    api = Api(meshed_coordinator.url)
    friend = api.account("friend")
    box = Box(tmp_path / "box", meshed_coordinator.url, friend.token)
    database = create_engine(meshed_coordinator.database_url)

    first = box.setup("--name", "attic_pi", "--capacity", "25", "--origin-host", "origin-mesh")
    assert first.returncode == 0, first.stderr

    # Registered once, with a single-use friend key that tailscale got from a file.
    (node,) = api.client.get("/api/v1/nodes", headers=friend.auth).json()
    assert (node["name"], node["capacity_viewers"]) == ("attic_pi", 25)
    (key,) = headscale.keys
    assert (box.standins / "used-key").read_text() == key["key"]
    state = json.loads((box.state / "node.json").read_text())
    assert state["id"] == node["id"]
    assert state["coordinator"] == meshed_coordinator.url
    assert sorted(os.listdir(box.state)) == ["node.json", "srs-edge.conf"]  # key used, gone
    assert oct(box.state.stat().st_mode & 0o777) == "0o700"
    assert oct((box.state / "node.json").stat().st_mode & 0o777) == "0o600"
    calls = box.calls()
    up = next(call for call in calls if call.startswith("tailscale up"))
    assert f"--login-server {headscale.url}" in up  # type: ignore[attr-defined]
    assert "--hostname attic-pi" in up  # a DNS label: no underscore
    assert not any(state["node_token"] in call or key["key"] in call for call in calls)

    # The coordinator knows where viewers can play from this edge.
    with database.connect() as connection:
        play_base_url = connection.execute(
            text("SELECT play_base_url FROM nodes WHERE id = :id"), {"id": node["id"]}
        ).scalar_one()
    assert play_base_url == f"http://{MESH_IP}:8080"

    # The edge runs the rendered config: its hooks go to the node's relay on loopback, with no
    # token in them (SRS logs hook URLs); the host network lets SRS reach the relay.
    edge = (box.standins / "edge.conf").read_text()
    assert "origin          origin-mesh:1935;" in edge
    assert f"on_play       http://127.0.0.1:{HOOK_RELAY_PORT}/hooks/srs/on_play;" in edge
    assert state["node_token"] not in edge and "node_token" not in edge
    assert any("--restart unless-stopped --network host" in call for call in calls)

    # The relay and the reporter are installed as services with this node's paths.
    relay_unit = (box.units / "streamr-hook-relay.service").read_text()
    assert (
        f"{box.install}/hook_relay.py --listen 127.0.0.1:{HOOK_RELAY_PORT} "
        f"--coordinator {meshed_coordinator.url} --credential-file {box.state}/node.json "
        "--credential-key node_token" in relay_unit
    )
    unit = (box.units / "streamr-reporter.service").read_text()
    assert f"{box.install}/reporter.py --coordinator {meshed_coordinator.url}" in unit
    assert f"--state-dir {box.state}" in unit
    for installed in (unit, relay_unit):
        assert re.search(r"@[A-Z_]+@", installed) is None
    verify = subprocess.run(
        ["systemd-analyze", "verify"]
        + [str(box.units / name) for name in ("streamr-reporter.service", RELAY_UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (verify.returncode, verify.stdout + verify.stderr) == (0, "")
    assert (box.install / "reporter.py").read_text() == Path("node/reporter.py").read_text()
    assert (box.install / "hook_relay.py").read_text() == Path("srs/hook_relay.py").read_text()
    assert [c for c in calls if c.startswith("systemctl")] == [
        "systemctl daemon-reload",
        f"systemctl enable {RELAY_UNIT}",
        f"systemctl restart {RELAY_UNIT}",
        "systemctl daemon-reload",
        "systemctl enable streamr-reporter.service",
        "systemctl restart streamr-reporter.service",
    ]

    # Again: nothing registered twice, no second join; the edge and service are refreshed.
    again = box.setup("--name", "attic_pi", "--capacity", "25", "--origin-host", "origin-mesh")
    assert again.returncode == 0, again.stderr
    assert "not registering again" in again.stderr
    assert len(api.client.get("/api/v1/nodes", headers=friend.auth).json()) == 1
    assert len(headscale.keys) == 1
    assert sum(call.startswith("tailscale up") for call in box.calls()) == 1

    # The machine that used the key, as Headscale lists it (the stand-in cannot really join).
    headscale.add_node(7, "attic_pi", ["tag:friend"], MESH_IP)
    headscale.nodes[7]["preAuthKey"] = key

    gone = box.run(TEARDOWN)
    assert gone.returncode == 0, gone.stderr
    assert api.client.get("/api/v1/nodes", headers=friend.auth).json() == []
    assert headscale.nodes == {}  # the coordinator removed the mesh machine too
    calls = box.calls()
    assert "systemctl disable --now streamr-reporter.service" in calls
    assert f"systemctl disable --now {RELAY_UNIT}" in calls
    assert "tailscale logout" in calls
    assert not (box.standins / "container").exists()
    assert not box.state.exists()
    assert not box.install.exists()
    assert not (box.units / "streamr-reporter.service").exists()
    assert not (box.units / RELAY_UNIT).exists()

    twice = box.run(TEARDOWN)
    assert twice.returncode == 0, twice.stderr
    database.dispose()


def test_setup_refuses_bad_input_and_a_name_taken_without_local_state(
    meshed_coordinator: CoordinatorProcess, tmp_path: Path
) -> None:
    api = Api(meshed_coordinator.url)
    friend = api.account("friend")
    box = Box(tmp_path / "box", meshed_coordinator.url, friend.token)

    bad_name = box.setup("--name", "Attic Pi")
    assert bad_name.returncode == 1
    assert (
        "--name must be 2-63 of a-z, 0-9, '-' and '_', not starting with '-' or '_', "
        "got 'Attic Pi'" in bad_name.stderr
    )
    for capacity in ("0", "10001"):
        bad_capacity = box.setup("--name", "attic", "--capacity", capacity)
        assert bad_capacity.returncode == 1
        assert f"--capacity must be a whole number 1-10000, got '{capacity}'" in bad_capacity.stderr
    acme_refusals = {
        ("--acme-email", "friend"): "--acme-email must be an email address such as you@example.com",
        ("--acme-directory", "http://ca.test/dir"): (
            "--acme-directory must be production, staging or an ACME directory's https URL"
        ),
        ("--acme-dns-server", "ns.test"): "--acme-dns-server must be HOST:PORT, got 'ns.test'",
    }
    for option, message in acme_refusals.items():
        refused_acme = box.setup("--name", "attic", *option)
        assert refused_acme.returncode == 1
        assert message in refused_acme.stderr
    calls = box.standins / "calls.log"
    assert not calls.exists() or "tailscale" not in calls.read_text()  # refused before the mesh

    taken = api.client.post(
        "/api/v1/nodes", json={"name": "attic", "capacity_viewers": 5}, headers=friend.auth
    )
    assert taken.status_code == 201
    refused = box.setup("--name", "attic")
    assert refused.returncode == 1
    assert "already has a node named 'attic'" in refused.stderr

    box.environment["STREAMR_FRIEND_TOKEN"] = "not-a-token"
    wrong_token = box.setup("--name", "cellar")
    assert "refused the friend token" in wrong_token.stderr
    del box.environment["STREAMR_FRIEND_TOKEN"]
    no_token = box.setup("--name", "cellar")
    assert no_token.returncode == 1
    assert "no friend token: pass --friend-token-file FILE or set STREAMR_FRIEND_TOKEN" in (
        no_token.stderr
    )
    # State left from a node the coordinator has since forgotten (deleted on the web page).
    box.state.joinpath("node.json").write_text(
        json.dumps({"id": 999, "name": "cellar", "node_token": "forgotten", "token_expires_at": ""})
    )
    (box.standins / "tailscale.state").write_text("Running\n")
    forgotten = box.setup("--name", "cellar")
    assert forgotten.returncode == 1
    assert "the coordinator no longer knows this node (removed?)" in forgotten.stderr
    assert "forgotten" not in "\n".join(box.calls())
    box.state.joinpath("node.json").unlink()

    missing = box.setup("--name", "cellar", "--friend-token-file", str(tmp_path / "nope"))
    assert f"--friend-token-file {tmp_path / 'nope'} is not readable" in missing.stderr
    assert os.listdir(box.state) == []  # no answer, header or key file left behind
    assert not any(call.startswith(("docker", "systemctl")) for call in box.calls())


def test_setup_gets_the_edge_a_certificate_through_the_coordinator_and_serves_https(
    database_url: str,
    redis_server: services.Redis,
    headscale: FakeHeadscale,
    tmp_path: Path,
) -> None:
    with (
        acme.pebble(tmp_path / "pebble") as pebble,
        route53_to_challtestsrv(pebble) as dns,
    ):
        coordinator = meshed(
            database_url,
            redis_server,
            headscale,
            tmp_path,
            edge_domain=EDGE_DOMAIN,
            edge_zone_id=ZONE_ID,
        )
        coordinator.environment.update(
            AWS_ENDPOINT_URL_ROUTE_53=dns.url,
            AWS_ACCESS_KEY_ID="test-only",
            AWS_SECRET_ACCESS_KEY="test-only",  # the adapter checks no signature
        )
        coordinator.start()
        try:
            https_edge(coordinator, pebble, dns, tmp_path)
        finally:
            coordinator.stop()


def https_edge(coordinator: CoordinatorProcess, pebble: acme.Pebble, dns, tmp_path: Path) -> None:
    api = Api(coordinator.url)
    friend = api.account("friend")
    box = Box(tmp_path / "box", coordinator.url, friend.token)
    box.environment["LEGO_CA_CERTIFICATES"] = str(pebble.ca_file)  # trust Pebble's own HTTPS
    acme_options = ("--acme-directory", pebble.directory_url)
    acme_options += ("--acme-dns-server", pebble.dns_server)

    # Without --acme-email (the friend page's command): the account is the streamer domain's
    # hostmaster, the certificate comes through the coordinator, and the edge serves HTTPS.
    https = box.setup("--name", "attic_pi", *acme_options)
    assert https.returncode == 0, https.stderr
    state = json.loads((box.state / "node.json").read_text())
    edge_name = f"n{state['id']}.{EDGE_DOMAIN}"
    assert state["edge_name"] == edge_name
    assert "the certificate's ACME account is hostmaster@example.test" in https.stderr
    assert f"https://{edge_name}:8443" in https.stderr
    certificates = box.state / "acme" / "certificates"
    certificate = x509.load_pem_x509_certificate((certificates / f"{edge_name}.crt").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.value.get_values_for_type(x509.DNSName) == [edge_name]
    assert oct((certificates / f"{edge_name}.key").stat().st_mode & 0o777) == "0o600"
    challenge = f"_acme-challenge.{edge_name}."

    def challenges() -> list[tuple[str, str]]:
        return [(action, name) for action, name, kind, _ in dns.changes if kind == "TXT"]

    assert challenges() == [("UPSERT", challenge), ("DELETE", challenge)]
    assert (ZONE_ID, challenge, "TXT") not in dns.records  # removed once validated
    assert dns.records[(ZONE_ID, f"{edge_name}.", "A")][1] == [MESH_IP]

    edge = (box.standins / "edge.conf").read_text()
    assert f"key         ./conf/tls/{edge_name}.key;" in edge
    assert "listen      8443;" in edge
    run = [call for call in box.calls() if call.startswith("docker run")][-1]
    assert f"-v {certificates}:/usr/local/srs/conf/tls:ro" in run

    # The daily renewal, with this node's values, hardened like the other units.
    for unit in CERT_UNITS:
        assert re.search(r"@[A-Z_]+@", (box.units / unit).read_text()) is None
    service = (box.units / CERT_UNITS[0]).read_text()
    assert (
        f"ExecStart={box.install}/edge_cert.sh renew --state-dir {box.state} --hook "
        f"{box.install}/acme_hook.py --domain {edge_name} --email hostmaster@example.test "
        f"--directory {pebble.directory_url} --dns-server {pebble.dns_server}\n" in service
    )
    verify = subprocess.run(
        ["systemd-analyze", "verify", *(str(box.units / unit) for unit in CERT_UNITS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (verify.returncode, verify.stdout + verify.stderr) == (0, "")
    assert "systemctl enable --now streamr-edge-cert.timer" in box.calls()
    # The renewal as the timer runs it: not due, nothing asked of the coordinator.
    renew = subprocess.run(
        service.split("ExecStart=", 1)[1].splitlines()[0].split(),
        capture_output=True,
        text=True,
        env=box.environment,
        timeout=120,
        check=False,
    )
    assert renew.returncode == 0, renew.stderr
    assert len(challenges()) == 2

    # Once more: the certificate is there, nothing asked of the CA or the coordinator.
    again = box.setup("--name", "attic_pi", "--acme-email", "friend@example.test", *acme_options)
    assert again.returncode == 0, again.stderr
    assert "already has a certificate" in again.stderr
    assert len(challenges()) == 2
    for text_seen in [*box.calls(), https.stderr, again.stderr, renew.stderr]:
        assert state["node_token"] not in text_seen

    gone = box.run(TEARDOWN)
    assert gone.returncode == 0, gone.stderr
    assert "systemctl disable --now streamr-edge-cert.timer" in box.calls()
    assert not any((box.units / unit).exists() for unit in CERT_UNITS)
    assert not box.state.exists()  # the key with it

"""The SRS origin's user data, booted in a Debian root: it waits for egress before dnf, starts the
hook relay and SRS without waiting for the coordinator, and joins the mesh through a unit that
retries until the coordinator hands out a key, and finds itself joined at the next boot. The relay
unit's command runs for real (the root's python3) in front of a loopback coordinator, and the SRS
unit's pipeline ships a real SRS console log only as the scrubber leaves it."""

from __future__ import annotations

import gzip
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from offline.harness import ProgramRun
from scripts.record_srs import free_port
from srs import render
from tests.boot.conftest import user_data_of
from tests.boot.debian_root import DebianRoot
from tests.srs.test_hook_relay import Upstream

BOOTSTRAP = "/usr/local/sbin/streamr-srs-bootstrap"
UNITS = "/etc/systemd/system"
JOIN_UNIT = f"{UNITS}/streamr-srs-mesh-join.service"
CREDENTIAL = "/etc/streamr/hook-credential"
HOOK_SECRET = "hook-secret-0123456789abcdef0123456789"
RECORDING = Path(__file__).resolve().parents[1] / "fixtures" / "srs" / "logs-real-edge-run"

AWS = f'case "$*" in *ssm\\ get-parameter*--with-decryption*) echo "{HOOK_SECRET}" ;; esac\n'
# The coordinator's answer to the origin's key request; `docker login` is not used here.
COORDINATOR_UP = """
case "$*" in
  *origin-key*)
    echo '{"preauth_key": "pre-auth-key-1", "login_server": "https://mesh.example.net"}' ;;
esac
"""
COORDINATOR_DOWN = """
case "$*" in
  *origin-key*) echo "curl: (22) The requested URL returned error: 503" >&2; exit 22 ;;
esac
"""
NOT_JOINED = 'case "$1" in status) exit 1 ;; esac\n'


def first_boot(root: DebianRoot, run: ProgramRun, curl: str) -> None:
    root.behave({"aws": AWS, "curl": curl, "tailscale": NOT_JOINED})
    booted = root.cloud_init(user_data_of(run, f"streamr-{run.stack}-srs-host"))
    assert booted.returncode == 0, booted.stderr
    assert booted.index("curl", "-sS", "--max-time", "5") < booted.index("dnf", "install")
    assert booted.commands("systemctl")[-2:] == [
        ["enable", "--now", "streamr-hook-relay.service", "streamr-srs.service"],
        ["enable", "--now", "--no-block", "streamr-srs-mesh-join.service"],
    ]
    assert booted.commands("docker") == []  # SRS runs in its unit, not in cloud-init
    # The first boot never asked the coordinator: it is often not up yet on a first deploy.
    assert not [call for call in booted.commands("curl") if "-X" in call]
    # The secret is only in the relay's root-only file: not in SRS's config, not on a command line.
    assert root.file(CREDENTIAL).read_text() == HOOK_SECRET + "\n"
    assert root.file(CREDENTIAL).stat().st_mode & 0o777 == 0o600
    assert HOOK_SECRET not in root.file("/etc/streamr/srs.conf").read_text()
    assert not any(HOOK_SECRET in " ".join(call) for call in booted.calls)


def test_first_boot_waits_for_egress_then_runs_srs_and_leaves_joining_to_its_unit(
    root: DebianRoot, prod: ProgramRun
) -> None:
    # The Elastic IP arrives after three failed probes.
    egress_late = """
probes=/var/log/egress-probes
echo x >>"$probes"
if [ "$(wc -l <"$probes")" -le 3 ]; then echo "curl: (28) timed out" >&2; exit 28; fi
"""
    first_boot(root, prod, egress_late + COORDINATOR_UP)
    unit = root.file(JOIN_UNIT).read_text()
    assert f"ExecStart={BOOTSTRAP} join-mesh" in unit
    assert "Restart=on-failure" in unit and "RestartSec=30" in unit
    assert "StartLimitIntervalSec=0" in unit  # systemd never gives up


def test_the_join_unit_fails_while_the_coordinator_is_down_and_joins_once_it_is_up(
    root: DebianRoot, prod: ProgramRun
) -> None:
    first_boot(root, prod, COORDINATOR_DOWN)
    for _ in range(3):  # systemd's restarts, 30 s apart
        attempt = root.run(f"{BOOTSTRAP} join-mesh")
        assert attempt.returncode == 1
        assert "no mesh key from http" in attempt.stderr
        assert "systemd retries in 30 s" in attempt.stderr
        assert attempt.commands("tailscale") == [["status"]]
        # The hook secret goes in a header file, never on a command line.
        assert not any(HOOK_SECRET in " ".join(call) for call in attempt.calls)

    root.behave({"curl": COORDINATOR_UP})
    joined = root.run(f"{BOOTSTRAP} join-mesh")
    assert joined.returncode == 0, joined.stderr
    up = joined.commands("tailscale")[-1]
    assert up[:3] == ["up", "--login-server", "https://mesh.example.net"]
    assert up[3] == "--auth-key" and up[4].startswith("file:")
    assert "pre-auth-key-1" not in " ".join(up)


def test_at_the_next_boot_the_unit_finds_the_host_joined(
    root: DebianRoot, prod: ProgramRun
) -> None:
    first_boot(root, prod, COORDINATOR_UP)
    root.behave({"tailscale": ""})  # `tailscale status` succeeds: joined
    again = root.run(f"{BOOTSTRAP} join-mesh")
    assert again.returncode == 0
    assert "already on the mesh" in again.stderr
    assert again.commands("curl") == []
    assert again.commands("aws") == []


def test_no_egress_stops_the_first_boot_with_a_reason(root: DebianRoot, prod: ProgramRun) -> None:
    root.behave({"aws": AWS, "curl": 'echo "curl: (28) timed out" >&2; exit 28\n'})
    booted = root.cloud_init(user_data_of(prod, "streamr-prod-srs-host"))
    assert booted.returncode != 0
    assert "no internet access after 300 s: is the Elastic IP associated?" in booted.stderr
    assert booted.slept() == 300
    assert [call for call in booted.calls if call[0] == "dnf"] == []


def test_an_unknown_command_is_refused(root: DebianRoot, prod: ProgramRun) -> None:
    first_boot(root, prod, COORDINATOR_UP)
    refused = root.run(f"{BOOTSTRAP} join")
    assert refused.returncode == 2
    assert "unknown command 'join' (allowed: first-boot, run-srs, join-mesh)" in refused.stderr


def exec_start(root: DebianRoot, unit: str) -> list[str]:
    (line,) = re.findall(r"^ExecStart=(.*)$", root.file(f"{UNITS}/{unit}").read_text(), re.M)
    return shlex.split(line)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


# Stands in for SRS: POSTs one hook to the relay as SRS would (no credential), prints the answer.
SRS_HOOK = """
import json, sys, time, urllib.error, urllib.request
body = json.dumps({"action": "on_publish", "stream": "show", "param": "?key=k"}).encode()
for attempt in range(100):
    request = urllib.request.Request(sys.argv[1], data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            print(answer.status, answer.read().decode())
            break
    except urllib.error.URLError:
        time.sleep(0.1)
"""


def test_the_relay_unit_forwards_hooks_with_the_secret_in_a_header(
    root: DebianRoot, prod: ProgramRun, upstream: Upstream
) -> None:
    first_boot(root, prod, COORDINATOR_UP)
    unit = root.file(f"{UNITS}/streamr-hook-relay.service").read_text()
    assert "Restart=always" in unit
    command = exec_start(root, "streamr-hook-relay.service")
    listen = command[command.index("--listen") + 1]
    assert listen == f"127.0.0.1:{render.HOOK_RELAY_PORT}"
    coordinator = command[command.index("--coordinator") + 1]
    assert coordinator == prod.outputs["coordinatorUrl"]
    assert command[command.index("--credential-file") + 1] == CREDENTIAL
    # The unit's own command, in the root, with the coordinator on loopback (and a free port,
    # so parallel test runs do not meet).
    port = free_port()
    command[command.index("--listen") + 1] = f"127.0.0.1:{port}"
    command[command.index("--coordinator") + 1] = upstream.url
    root.write("/var/tmp/srs-hook.py", SRS_HOOK)
    ran = root.run(
        f"{shlex.join(command)} 2>/var/log/relay.log & relay=$!\n"
        f"python3 /var/tmp/srs-hook.py http://127.0.0.1:{port}/hooks/srs/on_publish\n"
        'kill "$relay"'
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == '200 {"code": 0}'
    (call,) = upstream.calls
    assert call["path"] == "/hooks/srs/on_publish"
    assert call["headers"]["Authorization"] == f"Bearer {HOOK_SECRET}"
    log = root.file("/var/log/relay.log").read_text()
    assert "on_publish -> 200" in log and HOOK_SECRET not in log


def test_the_srs_unit_ships_srs_console_only_scrubbed(root: DebianRoot, prod: ProgramRun) -> None:
    """The unit's pipeline with the real scrubber; `docker` stands in for SRS (printing a real SRS
    origin's console log, recorded) and for the awslogs container (keeping what it was given)."""
    first_boot(root, prod, COORDINATOR_UP)
    unit = root.file(f"{UNITS}/streamr-srs.service").read_text()
    assert exec_start(root, "streamr-srs.service") == [BOOTSTRAP, "run-srs"]
    assert "Restart=always" in unit
    with gzip.open(RECORDING / "origin.log.gz", "rt") as file:
        console = file.read()
    root.write("/var/tmp/srs-console.log", console)
    root.behave(
        {
            "docker": """
case "$*" in
  *"--name srs-log "*) cat >/var/log/shipped-to-cloudwatch ;;
  *"--name srs "*) cat /var/tmp/srs-console.log ;;
esac
"""
        }
    )
    ran = root.run(f"{BOOTSTRAP} run-srs")
    assert ran.returncode == 0, ran.stderr
    # The pipeline's two ends start together: tell them apart by name, not by order.
    runs = {
        call[call.index("--name") + 1]: call for call in ran.commands("docker") if call[0] == "run"
    }
    srs, shipper = runs["srs"], runs["srs-log"]
    assert srs[srs.index("--network") + 1] == "host"
    assert srs[srs.index("--log-driver") + 1] == "none"
    assert shipper[shipper.index("--log-driver") + 1] == "awslogs"
    assert shipper[-1] == "cat"
    shipped = root.file("/var/log/shipped-to-cloudwatch").read_text()
    assert len(shipped.splitlines()) == len(console.splitlines())
    secrets = json.loads((RECORDING / "secrets.json").read_text())
    in_console = [v for values in secrets.values() for v in values if v in console]
    assert in_console, "the recording should hold what SRS logs of its clients (stream keys)"
    assert [v for v in in_console if v in shipped] == []
    assert "key=[redacted]" in shipped

"""The SRS origin's user data, booted in a Debian root: it waits for egress before dnf, starts
SRS without waiting for the coordinator, and joins the mesh through a unit that retries until the
coordinator hands out a key, and finds itself joined at the next boot."""

from __future__ import annotations

from offline.harness import ProgramRun
from tests.boot.conftest import user_data_of
from tests.boot.debian_root import DebianRoot

BOOTSTRAP = "/usr/local/sbin/streamr-srs-bootstrap"
JOIN_UNIT = "/etc/systemd/system/streamr-srs-mesh-join.service"
HOOK_SECRET = "hook-secret-0123456789abcdef0123456789"

AWS = f'case "$*" in *get-secret-value*) echo "{HOOK_SECRET}" ;; esac\n'
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
    assert booted.index("docker", "run") < len(booted.calls) - 1
    assert booted.calls[-1] == [
        "systemctl",
        "enable",
        "--now",
        "--no-block",
        "streamr-srs-mesh-join.service",
    ]
    # The first boot never asked the coordinator: it is often not up yet on a first deploy.
    assert not [call for call in booted.commands("curl") if "-X" in call]
    config = root.file("/etc/streamr/srs.conf").read_text()
    assert HOOK_SECRET in config


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
    assert "unknown command 'join' (allowed: first-boot, join-mesh)" in refused.stderr

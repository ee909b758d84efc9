"""The NAT instance's user data (a shell script), booted in a Debian root: the packaged firewall
first, forwarding on, the FORWARD chain emptied and masquerading out of the default route's
interface, saved so a reboot (the nightly pause) keeps it; a failed install stops it."""

from __future__ import annotations

from offline.harness import ProgramRun
from tests.boot.conftest import user_data_of
from tests.boot.debian_root import DebianRoot


def test_the_nat_instance_forwards_and_masquerades_and_saves_the_rules(
    root: DebianRoot, dev: ProgramRun
) -> None:
    booted = root.cloud_init(user_data_of(dev, "streamr-dev-net-nat"))
    assert booted.returncode == 0, booted.stderr
    interface = next(
        call[call.index("-o") + 1] for call in booted.commands("iptables") if "-o" in call
    )
    assert interface  # read from the root's default route by the real `ip`
    assert booted.calls == [
        ["dnf", "install", "-y", "iptables-services"],
        ["systemctl", "enable", "--now", "iptables"],
        ["sysctl", "--system"],
        ["iptables", "-F", "FORWARD"],
        ["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", interface, "-j", "MASQUERADE"],
        ["service", "iptables", "save"],
    ]
    forwarding = root.file("/etc/sysctl.d/90-nat-instance.conf").read_text()
    assert forwarding == "net.ipv4.ip_forward = 1\n"


def test_a_failed_package_install_stops_before_touching_the_firewall(
    root: DebianRoot, dev: ProgramRun
) -> None:
    root.behave({"dnf": 'echo "Error: Failed to download metadata for repo" >&2; exit 1\n'})
    booted = root.cloud_init(user_data_of(dev, "streamr-dev-net-nat"))
    assert booted.returncode == 1
    assert "Failed to download metadata" in booted.stderr
    assert booted.commands("iptables") == [] and booted.commands("sysctl") == []

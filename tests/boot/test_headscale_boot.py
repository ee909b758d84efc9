"""The Headscale host's user data, booted in a Debian root: egress first, the download checked
against its sha256, the data volume formatted only when blank, the first API key issued once
per volume (a replacement host with the same volume issues none), and each failure named.

The release download is a stand-in `headscale` (a shell script answering the calls bootstrap.sh
makes); the test puts that file's sha256 where the rendered user data has the release's, which
is the one thing changed in the user data."""

from __future__ import annotations

import hashlib
import re

from offline.harness import ProgramRun
from tests.boot.conftest import user_data_of
from tests.boot.debian_root import DebianRoot

FAKE_HEADSCALE = """#!/bin/bash
case "$1" in
  version) echo "v0.29.3" ;;
  apikeys) echo "  hskey-api-issued-on-this-host  " ;;
esac
"""
DATA_DIR = "/var/lib/headscale"
MARKER = f"{DATA_DIR}/.coordinator-api-key-issued"


def curl_serving_release(egress_after: int = 0) -> str:
    """`curl`: no egress for the first `egress_after` probes, then the release download."""
    return f"""
probes=/var/log/egress-probes
case "$*" in
  *ssm.*.amazonaws.com*)
    echo x >>"$probes"
    if [ "$(wc -l <"$probes")" -le {egress_after} ]; then echo "timed out" >&2; exit 28; fi ;;
  *releases/download*)
    while [ $# -gt 0 ]; do
      if [ "$1" = "--output" ]; then cat /var/cache/release/headscale >"$2"; fi
      shift
    done ;;
esac
"""


# The volume: blank until mkfs.ext4 runs; mounted once mount has run.
DISK = {
    "blkid": """
if [ ! -e /var/lib/fake-disk/formatted ]; then exit 2; fi
case "$*" in *UUID*) echo "0f5e6a4c-1111-4222-8333-444455556666" ;; esac
""",
    "mkfs.ext4": "mkdir -p /var/lib/fake-disk && touch /var/lib/fake-disk/formatted\n",
    "mountpoint": "[ -e /var/lib/fake-disk/mounted ]\n",
    "mount": "mkdir -p /var/lib/fake-disk && touch /var/lib/fake-disk/mounted\n",
    # put-parameter reads the key from a file: keep what it would have stored.
    "aws": 'for a in "$@"; do case "$a" in file://*) cp "${a#file://}" /var/log/stored-key ;; '
    'esac; done\necho "version-1"\n',
}


def prepared(root: DebianRoot, run: ProgramRun, release: str = FAKE_HEADSCALE) -> str:
    """The host's user data with the stand-in release's digest, and the volume's device link."""
    user_data = user_data_of(run, f"streamr-{run.stack}-headscale-host")
    volume_id = re.search(r"DATA_VOLUME_ID=(vol-[0-9a-f]+)", user_data).group(1)  # type: ignore[union-attr]
    root.write("/var/cache/release/headscale", release, "0755")
    digest = hashlib.sha256(FAKE_HEADSCALE.encode()).hexdigest()
    user_data = re.sub(r"HEADSCALE_SHA256=[0-9a-f]{64}", f"HEADSCALE_SHA256={digest}", user_data)
    device = root.file("/dev/nvme1n1")
    device.write_text("")
    link = root.file(
        f"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{volume_id.replace('-', '')}"
    )
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to("/dev/nvme1n1")
    return user_data


def test_first_boot_formats_the_blank_volume_starts_headscale_and_issues_one_key(
    root: DebianRoot, prod: ProgramRun
) -> None:
    root.behave({**DISK, "curl": curl_serving_release(egress_after=2)})
    booted = root.cloud_init(prepared(root, prod))
    assert booted.returncode == 0, booted.stderr
    order = [
        booted.index("curl", "--silent", "--show-error", "--max-time", "5"),
        booted.index("mkfs.ext4"),
        booted.index("mount", DATA_DIR),
        booted.index("systemctl", "restart", "headscale.service"),
        booted.index("aws", "ssm", "put-parameter"),
        booted.index("systemctl", "enable", "--now", "streamr-headscale-api-key.timer"),
    ]
    assert order == sorted(order)
    assert booted.index("curl", "--fail") < order[1]  # the release, after egress
    assert booted.slept() == 10  # two probes without egress, 5 s apart
    assert root.file("/usr/bin/headscale").read_text() == FAKE_HEADSCALE
    assert root.file("/var/log/stored-key").read_text() == "hskey-api-issued-on-this-host"
    put = booted.commands("aws")[0]
    assert not any("hskey" in argument for argument in put)  # through a file, not argv
    assert root.file(MARKER).exists()
    fstab = root.file("/etc/fstab").read_text()
    assert f"UUID=0f5e6a4c-1111-4222-8333-444455556666 {DATA_DIR} ext4" in fstab


def test_a_replacement_host_with_the_same_volume_keeps_its_data_and_issues_no_key(
    root: DebianRoot, prod: ProgramRun
) -> None:
    root.behave({**DISK, "curl": curl_serving_release()})
    user_data = prepared(root, prod)
    assert root.cloud_init(user_data).returncode == 0
    root.file("/var/lib/fake-disk/mounted").unlink()  # a new instance: nothing mounted yet
    again = root.cloud_init(user_data)
    assert again.returncode == 0, again.stderr
    assert again.commands("mkfs.ext4") == []  # a volume with a filesystem is never formatted
    assert again.commands("aws") == []  # the key was issued for this volume already
    assert root.file("/etc/fstab").read_text().count(DATA_DIR) == 1
    assert again.commands("curl")[-1][0] == "--silent"  # installed release kept: no download


def test_a_volume_whose_key_went_elsewhere_issues_one_into_this_parameter(
    root: DebianRoot, prod: ProgramRun
) -> None:
    """Upgrading from secrets in Secrets Manager: the volume's marker (empty then) names no
    parameter, so the replaced host stores a fresh key in the one it is given, once."""
    root.behave({**DISK, "curl": curl_serving_release()})
    user_data = prepared(root, prod)
    assert root.cloud_init(user_data).returncode == 0
    assert root.file(MARKER).read_text() == prod.outputs["headscaleApiKeyParameter"] + "\n"
    root.file(MARKER).write_text("")  # what the older bootstrap left
    root.file("/var/lib/fake-disk/mounted").unlink()
    upgraded = root.cloud_init(user_data)
    assert upgraded.returncode == 0, upgraded.stderr
    [put] = upgraded.commands("aws")
    assert put[put.index("--name") + 1] == prod.outputs["headscaleApiKeyParameter"]
    assert root.file(MARKER).read_text() == prod.outputs["headscaleApiKeyParameter"] + "\n"


def test_a_tampered_download_is_refused_by_name(root: DebianRoot, prod: ProgramRun) -> None:
    root.behave({**DISK, "curl": curl_serving_release()})
    user_data = prepared(root, prod, release=FAKE_HEADSCALE + "# tampered\n")
    booted = root.cloud_init(user_data)
    assert booted.returncode != 0
    assert "checksum mismatch for https://github.com/juanfont/headscale/releases/" in booted.stderr
    assert not root.file("/usr/bin/headscale").exists()
    assert booted.commands("systemctl") == []


def test_no_egress_stops_the_boot_before_any_download(root: DebianRoot, prod: ProgramRun) -> None:
    root.behave({**DISK, "curl": curl_serving_release(egress_after=1000)})
    booted = root.cloud_init(prepared(root, prod))
    assert booted.returncode != 0
    assert "no internet access after 300 s: is the Elastic IP associated?" in booted.stderr
    assert [call for call in booted.commands("curl") if "--fail" in call] == []


def test_a_missing_data_volume_is_named_after_waiting_for_it(
    root: DebianRoot, prod: ProgramRun
) -> None:
    root.behave({**DISK, "curl": curl_serving_release()})
    user_data = prepared(root, prod)
    for link in root.file("/dev/disk/by-id").iterdir():
        link.unlink()
    booted = root.cloud_init(user_data)
    assert booted.returncode != 0
    assert re.search(r"data volume vol-[0-9a-f]+ never appeared", booted.stderr)
    assert booted.commands("mkfs.ext4") == []

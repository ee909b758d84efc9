"""Boot a host's rendered user data in a throwaway Debian root, with stand-ins for the cloud.

The root is the debootstrap base the image test builds (`scripts/build-base-image.sh`, reused
here) plus EXTRA_PACKAGES, kept as a buildah image; each test gets a throwaway buildah container
from it (an overlay over the image: nothing is copied, and nothing a test writes outlives it).
The scripts run for real under `chroot` in the container's mounted root (bash, coreutils, jq,
useradd, runuser... are Debian's own); only what reaches AWS, the package manager, systemd,
Docker, Tailscale, the network or the host's kernel is a stand-in. Each stand-in appends its
command line to a call log and then does what the test's behaviour snippet for it says (print an
answer, fail, ...); `sleep` returns at once and is logged, so the tests add up how long a boot
would wait instead of waiting.

What cloud-init would do is done here in its order: write_files, packages (as one `dnf install`),
runcmd; a user data that is a shell script is run as one.
"""

from __future__ import annotations

import base64
import gzip
import os
import shlex
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/streamr-python-base:bookworm"
# What the hosts' scripts use that minbase lacks (procps: /etc/sysctl.d, as Amazon Linux has it).
EXTRA_PACKAGES = ("jq", "iproute2", "procps")
# Named after its packages, so a changed list builds a new image.
BOOT_IMAGE = f"localhost/streamr-boot-root:bookworm-{'-'.join(EXTRA_PACKAGES)}"
STANDINS = (
    "aws",
    "dnf",
    "systemctl",
    "docker",
    "tailscale",
    "curl",
    "sleep",
    "sysctl",
    "iptables",
    "service",
    "mount",
    "mountpoint",
    "mkfs.ext4",
    "blkid",
)
STANDIN_DIR = "usr/local/standins"
CALL_LOG = "var/log/standin-calls"
BEHAVIOUR_DIR = "etc/standin-behaviour"
PATH = f"/{STANDIN_DIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Every stand-in: log the call (one line, arguments shell-quoted), then run the behaviour
# snippet the test gave for this command, if any, with the call's arguments; it exits with the
# snippet's status.
_STANDIN = """#!/bin/bash
line=$(basename "$0")
for argument in "$@"; do line+=$(printf ' %q' "$argument"); done
# One write per call: the two ends of a pipeline (aws ... | docker login) log at the same time.
printf '%s\\n' "$line" >>/{log}
behaviour="/{behaviour}/$(basename "$0")"
# The snippet's last status is the stand-in's (`mountpoint` answering "not mounted", say).
if [ -f "$behaviour" ]; then
  source "$behaviour"
else
  exit 0
fi
"""


def _buildah(*args: str) -> str:
    result = subprocess.run(["buildah", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"buildah {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def ensure_boot_image() -> str:
    """The Debian root as a buildah image: the image test's base plus EXTRA_PACKAGES."""
    if (
        subprocess.run(
            ["buildah", "inspect", "--type", "image", BOOT_IMAGE], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return BOOT_IMAGE
    subprocess.run([str(ROOT / "scripts" / "build-base-image.sh"), BASE_IMAGE], check=True)
    container = _buildah("from", "--pull-never", BASE_IMAGE)
    try:
        _buildah(
            "run",
            "--isolation",
            "chroot",
            container,
            "--",
            "sh",
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -qq -y "
            f"--no-install-recommends {' '.join(EXTRA_PACKAGES)} >/dev/null "
            "&& rm -rf /var/lib/apt/lists/*",
        )
        _buildah("commit", "--quiet", container, BOOT_IMAGE)
    finally:
        _buildah("rm", container)
    return BOOT_IMAGE


@dataclass
class Boot:
    """One run of a boot step: its exit status, its output, and the calls it made."""

    returncode: int
    stdout: str
    stderr: str
    calls: list[list[str]]

    def commands(self, name: str) -> list[list[str]]:
        """The calls to stand-in `name`, each as its argument list."""
        return [call[1:] for call in self.calls if call[0] == name]

    def index(self, *prefix: str) -> int:
        """Position of the first call starting with `prefix` (a failure names what was called)."""
        for position, call in enumerate(self.calls):
            if call[: len(prefix)] == list(prefix):
                return position
        raise AssertionError(f"no call {' '.join(prefix)!r}; calls: {self.calls}")

    def slept(self) -> float:
        return sum(float(arguments[0]) for arguments in self.commands("sleep"))


class DebianRoot:
    """A throwaway buildah container from the boot image, mounted, with the stand-ins installed.

    `remove()` deletes the container and what the test wrote in it.
    """

    def __init__(self) -> None:
        self.container = _buildah("from", "--pull-never", ensure_boot_image())
        try:
            self.path = Path(_buildah("mount", self.container))
            self._devices()
            standins = self.path / STANDIN_DIR
            standins.mkdir(parents=True, exist_ok=True)
            for name in STANDINS:
                script = standins / name
                script.write_text(_STANDIN.format(log=CALL_LOG, behaviour=BEHAVIOUR_DIR))
                script.chmod(0o755)
            (self.path / BEHAVIOUR_DIR).mkdir(parents=True, exist_ok=True)
            (self.path / CALL_LOG).parent.mkdir(parents=True, exist_ok=True)
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        _buildah("rm", self.container)  # unmounts it first

    def _devices(self) -> None:
        dev = self.path / "dev"
        dev.mkdir(exist_ok=True)
        for name, minor in (("null", 3), ("zero", 5), ("urandom", 9)):
            node = dev / name
            if not node.exists():
                os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, minor))

    def behave(self, behaviours: Mapping[str, str]) -> None:
        """Bash run by each named stand-in after logging its call (`$@` are its arguments)."""
        for name, snippet in behaviours.items():
            if name not in STANDINS:
                raise ValueError(f"{name} has no stand-in; stand-ins: {', '.join(STANDINS)}")
            (self.path / BEHAVIOUR_DIR / name).write_text(snippet)

    def file(self, path: str) -> Path:
        """A path inside the root, given as the host would name it (`/etc/...`)."""
        return self.path / path.lstrip("/")

    def write(self, path: str, content: str, permissions: str = "0644") -> None:
        target = self.file(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(int(permissions, 8))

    def run(self, command: str, environment: Mapping[str, str] | None = None) -> Boot:
        """`command` (a shell command line) inside the root, as root, with the stand-ins first."""
        log = self.path / CALL_LOG
        log.write_text("")
        env = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8", **(environment or {})}
        result = subprocess.run(
            ["chroot", str(self.path), "/usr/bin/env", "-i"]
            + [f"{key}={value}" for key, value in env.items()]
            + ["/bin/bash", "-c", command],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        calls = [shlex.split(line) for line in log.read_text().splitlines() if line]
        return Boot(result.returncode, result.stdout, result.stderr, calls)

    def cloud_init(self, user_data: str) -> Boot:
        """The first boot: what cloud-init does with `user_data`, in cloud-init's order."""
        if user_data.startswith("#!"):
            self.write("/var/lib/cloud/instance/scripts/part-001", user_data, "0700")
            return self.run("/var/lib/cloud/instance/scripts/part-001")
        if not user_data.startswith("#cloud-config\n"):
            raise ValueError("user data is neither a script nor a cloud-config")
        document = yaml.safe_load(user_data)
        unknown = set(document) - {"write_files", "packages", "runcmd"}
        if unknown:
            raise ValueError(f"cloud-config keys this runner does not emulate: {unknown}")
        for entry in document.get("write_files", []):
            self.write(entry["path"], _content(entry), entry.get("permissions", "0644"))
        self.write("/var/lib/cloud/data/instance-id", "i-0123456789abcdef0\n")
        steps = []
        if document.get("packages"):
            steps.append(shlex.join(["dnf", "install", "-y", *document["packages"]]))
        for command in document.get("runcmd", []):
            steps.append(command if isinstance(command, str) else shlex.join(command))
        # cloud-init runs runcmd as one script, stopping at nothing; `set -e` is each script's own.
        return self.run("\n".join(steps))


def _content(entry: dict[str, str]) -> str:
    """A write_files entry's text, decoded as cloud-init does for the encodings we use."""
    encoding = entry.get("encoding", "text/plain")
    if encoding == "gz+b64":
        return gzip.decompress(base64.b64decode(entry["content"])).decode()
    if encoding != "text/plain":
        raise ValueError(f"write_files encoding this runner does not emulate: {encoding}")
    return entry["content"]

"""The SRS origin host's cloud-init user data: the rendered config (no secret in it), a non-secret
env file, the hook relay and log scrubber, and one bootstrap run."""

from __future__ import annotations

import base64
import gzip
import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from srs import render

HERE = Path(__file__).parent
BOOTSTRAP_PATH = "/usr/local/sbin/streamr-srs-bootstrap"
RELAY_PATH = "/usr/local/sbin/streamr-hook-relay"
SCRUB_PATH = "/usr/local/sbin/streamr-log-scrub"
ENV_FILE = "/etc/streamr/srs.env"
CONFIG_PATH = "/etc/streamr/srs.conf"
USER_DATA_LIMIT = 16 * 1024  # EC2's limit, before base64


@dataclass(frozen=True)
class OriginHost:
    """Deploy-time facts for the bootstrap (names only)."""

    region: str
    # The SecureString parameter holding the coordinator's hook secret.
    hook_secret_parameter: str
    log_group: str


def render_user_data(settings: render.OriginSettings, host: OriginHost) -> str:
    env = {
        "AWS_REGION": host.region,
        "HOOK_SECRET_PARAMETER": host.hook_secret_parameter,
        "COORDINATOR_URL": settings.coordinator_url.rstrip("/"),
        "SRS_IMAGE": render.SRS_IMAGE,
        "LOG_GROUP": host.log_group,
        "HOOK_RELAY_PORT": str(settings.hook_relay_port),
    }
    document = {
        "write_files": [
            _file(CONFIG_PATH, render.render_origin(settings), "0644"),
            _file(ENV_FILE, "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()), "0600"),
            _file(BOOTSTRAP_PATH, (HERE / "bootstrap.sh").read_text(), "0755"),
            _packed(RELAY_PATH, (HERE / "hook_relay.py").read_text(), "0755"),
            _packed(SCRUB_PATH, (HERE / "log_scrub.py").read_text(), "0755"),
        ],
        # Runs once per instance; changed user data replaces the instance, so it runs again then.
        "runcmd": [[BOOTSTRAP_PATH]],
    }
    text = "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False, width=1000)
    if len(text.encode()) > USER_DATA_LIMIT:
        raise render.SrsSettingsError(
            f"user data is {len(text.encode())} bytes; EC2 allows {USER_DATA_LIMIT}"
        )
    return text


def _file(path: str, content: str, permissions: str) -> dict[str, str]:
    return {"path": path, "content": content, "owner": "root:root", "permissions": permissions}


def _packed(path: str, content: str, permissions: str) -> dict[str, str]:
    """Gzipped (cloud-init's `gz+b64`) to fit EC2's limit; mtime 0, so the same file gives the
    same user data (a change would replace the instance)."""
    packed = base64.b64encode(gzip.compress(content.encode(), mtime=0)).decode()
    return {**_file(path, packed, permissions), "encoding": "gz+b64"}

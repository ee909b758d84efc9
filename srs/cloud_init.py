"""The SRS origin host's cloud-init user data: the rendered config (with a placeholder for the hook
secret), a non-secret env file, and one bootstrap run."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from srs import render

BOOTSTRAP = Path(__file__).parent / "bootstrap.sh"
BOOTSTRAP_PATH = "/usr/local/sbin/streamr-srs-bootstrap"
ENV_FILE = "/etc/streamr/srs.env"
TEMPLATE_PATH = "/etc/streamr/srs.conf.template"
USER_DATA_LIMIT = 16 * 1024  # EC2's limit, before base64


@dataclass(frozen=True)
class OriginHost:
    """Deploy-time facts for the bootstrap (names and ARNs only)."""

    region: str
    hook_secret_arn: str
    log_group: str


def render_user_data(settings: render.OriginSettings, host: OriginHost) -> str:
    env = {
        "AWS_REGION": host.region,
        "HOOK_SECRET_ARN": host.hook_secret_arn,
        "COORDINATOR_URL": settings.coordinator_url.rstrip("/"),
        "SRS_IMAGE": render.SRS_IMAGE,
        "LOG_GROUP": host.log_group,
    }
    document = {
        "write_files": [
            _file(TEMPLATE_PATH, render.render_origin(settings), "0600"),
            _file(ENV_FILE, "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()), "0600"),
            _file(BOOTSTRAP_PATH, BOOTSTRAP.read_text(), "0755"),
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

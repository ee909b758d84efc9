"""The Headscale host's cloud-init user data: files, a non-secret env file, one bootstrap run.

Everything here is safe to keep in user data and Pulumi state: the config and policy are public
facts, the env file holds names; the API key is created on the host (see bootstrap.sh).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from headscale import render

HERE = Path(__file__).parent
BOOTSTRAP = HERE / "bootstrap.sh"
SERVICE_UNIT = HERE / "headscale.service"
ENV_FILE = "/etc/streamr/headscale.env"
BOOTSTRAP_PATH = "/usr/local/sbin/streamr-headscale-bootstrap"
# EC2 refuses user data above 16 KiB (before base64).
USER_DATA_LIMIT = 16 * 1024

_VOLUME_ID = re.compile(r"^vol-[0-9a-f]{8,17}$")
_PARAMETER_NAME = re.compile(r"^(/[A-Za-z0-9_.-]+)+$")


@dataclass(frozen=True)
class HostParameters:
    """Deploy-time facts the bootstrap script needs (no secret values)."""

    data_volume_id: str
    # The SecureString parameter the host writes the coordinator's API key into.
    api_key_parameter: str
    region: str


def render_user_data(settings: render.HeadscaleSettings, host: HostParameters) -> str:
    if not _VOLUME_ID.match(host.data_volume_id):
        raise render.HeadscaleConfigError(
            f"data_volume_id {host.data_volume_id!r} is not an EBS volume id (vol-...)"
        )
    if not _PARAMETER_NAME.match(host.api_key_parameter):
        raise render.HeadscaleConfigError(
            f"api_key_parameter {host.api_key_parameter!r} is not an SSM parameter path"
        )
    env = {
        "HEADSCALE_VERSION": render.HEADSCALE_VERSION,
        "HEADSCALE_SHA256": render.HEADSCALE_LINUX_ARM64_SHA256,
        "DATA_VOLUME_ID": host.data_volume_id,
        "DATA_DIR": render.DATA_DIR,
        "API_KEY_PARAMETER": host.api_key_parameter,
        "AWS_REGION": host.region,
    }
    document = {
        "write_files": [
            _file(render.CONFIG_PATH, render.render_config(settings), "0640"),
            _file(render.POLICY_PATH, render.render_policy(), "0640"),
            _file("/etc/systemd/system/headscale.service", SERVICE_UNIT.read_text(), "0644"),
            _file(
                ENV_FILE,
                "".join(f"{key}={shlex.quote(value)}\n" for key, value in env.items()),
                "0600",
            ),
            _file(BOOTSTRAP_PATH, BOOTSTRAP.read_text(), "0755"),
        ],
        # Runs once per instance; a changed user data replaces the instance, so it re-runs then.
        "runcmd": [[BOOTSTRAP_PATH, "install"]],
    }
    text = "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False, width=1000)
    if len(text.encode()) > USER_DATA_LIMIT:
        raise render.HeadscaleConfigError(
            f"user data is {len(text.encode())} bytes; EC2 allows {USER_DATA_LIMIT}"
        )
    return text


def _file(path: str, content: str, permissions: str) -> dict[str, str]:
    return {"path": path, "content": content, "owner": "root:root", "permissions": permissions}

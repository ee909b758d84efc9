"""The coordinator hosts' cloud-config: a static template plus this stack's settings file.

The template (coordinator_user_data.yaml) holds the boot script; only names, ARNs and addresses
are filled in here, never a secret: the script reads secrets at boot from their SecureString
parameters (and the RDS-managed database secret from Secrets Manager).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.coordinator_load_balancer import APP_PORT

USER_DATA_TEMPLATE = Path(__file__).with_name("coordinator_user_data.yaml")


@dataclass(frozen=True)
class UserDataSettings:
    """Everything per stack the boot script needs; values here are never secrets, only where
    they are kept (parameter names, the database secret's ARN)."""

    region: str
    image: str
    log_group: str
    database_host: str
    database_port: int
    database_name: str
    database_secret_arn: str
    # One parameter, a JSON object: token_pepper, admin_token and, with a cache, cache_auth_token.
    host_secrets_parameter: str
    hook_secret_parameter: str
    trusted_proxies: Sequence[str]
    web_concurrency: int
    port: int = APP_PORT
    cache_host: str | None = None
    cache_port: int | None = None
    # With a cache, its auth token is the host secrets' `cache_auth_token`.
    cache: bool = False
    mesh_url: str | None = None
    mesh_api_key_parameter: str | None = None
    origin_publish_url: str | None = None
    origin_play_url: str | None = None
    # The idle pause's ops token (STREAMR_OPS_TOKEN), when the stack has an idle pause.
    ops_token_parameter: str | None = None
    # Edge names: their domain, the hosted zone, and the role whose short-lived credentials the
    # host hands the container for writing their records (it cannot reach the instance's own).
    edge_domain: str | None = None
    edge_zone_id: str | None = None
    edge_dns_role_arn: str | None = None


def render_user_data(settings: UserDataSettings) -> str:
    """The instance's cloud-config: the static template plus this stack's settings file."""
    document = yaml.safe_load(USER_DATA_TEMPLATE.read_text())
    values: dict[str, Any] = {
        "REGION": settings.region,
        "IMAGE": settings.image,
        "LOG_GROUP": settings.log_group,
        "DATABASE_HOST": settings.database_host,
        "DATABASE_PORT": settings.database_port,
        "DATABASE_NAME": settings.database_name,
        "DATABASE_SECRET_ARN": settings.database_secret_arn,
        "HOST_SECRETS_PARAMETER": settings.host_secrets_parameter,
        "HOOK_SECRET_PARAMETER": settings.hook_secret_parameter,
        "TRUSTED_PROXIES": json.dumps(list(settings.trusted_proxies)),
        "WEB_CONCURRENCY": settings.web_concurrency,
        "PORT": settings.port,
    }
    if settings.cache:
        values |= {"CACHE_HOST": settings.cache_host, "CACHE_PORT": settings.cache_port}
    if settings.mesh_api_key_parameter is not None:
        values |= {
            "HEADSCALE_URL": settings.mesh_url,
            "HEADSCALE_API_KEY_PARAMETER": settings.mesh_api_key_parameter,
        }
    if settings.origin_publish_url is not None:
        values["ORIGIN_PUBLISH_URL"] = settings.origin_publish_url
    if settings.origin_play_url is not None:
        values["ORIGIN_PLAY_URL"] = settings.origin_play_url
    if settings.ops_token_parameter is not None:
        values["OPS_TOKEN_PARAMETER"] = settings.ops_token_parameter
    if settings.edge_dns_role_arn is not None:
        values |= {
            "EDGE_DOMAIN": settings.edge_domain,
            "EDGE_ZONE_ID": settings.edge_zone_id,
            "EDGE_DNS_ROLE_ARN": settings.edge_dns_role_arn,
        }
    conf = "".join(f"{key}={shlex.quote(str(value))}\n" for key, value in values.items())
    document["write_files"].insert(
        0,
        {
            "path": "/etc/streamr/coordinator.conf",
            "owner": "root:root",
            "permissions": "0644",
            "content": conf,
        },
    )
    return "#cloud-config\n" + yaml.dump(document, Dumper=_BlockDumper, sort_keys=False, width=1000)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (scripts, units) as `|` blocks, so the user data stays readable."""


_BlockDumper.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    ),
)

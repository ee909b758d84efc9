"""The platform: components built from the typed stack config, wired through their outputs.

`build` is the whole program; `__main__.py` only loads the config and exports what `build` returns,
and the offline harness calls `build` under Pulumi's mocks.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.cache import Cache, CacheArgs
from components.database import Database, DatabaseArgs
from components.headscale_host import HeadscaleHost, HeadscaleHostArgs
from components.network import Network, NetworkArgs
from stack_config import StackConfig


def build(config: StackConfig) -> dict[str, pulumi.Input[Any]]:
    """Create every component for `config` and return the stack outputs."""
    tags = config.tags
    network = Network(
        f"{config.prefix}-net",
        NetworkArgs(
            vpc_cidr=config.network.vpc_cidr,
            az_count=config.network.az_count,
            nat_strategy=config.effective_nat_strategy,
            nat_instance_type=config.instance_types.nat,
            flow_logs=config.network.flow_logs,
            tags=tags,
        ),
    )
    data_clients = [network.coordinator_security_group_id]
    database = Database(
        f"{config.prefix}-db",
        DatabaseArgs(
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids,
            client_security_group_ids=data_clients,
            instance_class=config.database.instance_class,
            allocated_storage_gb=config.database.allocated_storage_gb,
            engine_version=config.database.engine_version,
            backup_retention_days=config.database.backup_retention_days,
            multi_az=config.database.multi_az,
            deletion_protection=config.database.deletion_protection,
            final_snapshot=config.database.final_snapshot,
            performance_insights=config.database.performance_insights,
            tags=tags,
        ),
    )
    outputs: dict[str, pulumi.Input[Any]] = {
        "vpcId": network.vpc_id,
        "publicSubnetIds": network.public_subnet_ids,
        "privateSubnetIds": network.private_subnet_ids,
        "coordinatorSecurityGroupId": network.coordinator_security_group_id,
        "databaseAddress": database.address,
        "databasePort": database.port,
        "databaseSecretArn": database.secret_arn,
    }
    if config.cache_enabled:
        cache = Cache(
            f"{config.prefix}-cache",
            CacheArgs(
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                client_security_group_ids=data_clients,
                engine=config.cache.engine,
                engine_version=config.cache.engine_version,
                node_type=config.cache.node_type,
                nodes=config.cache.nodes,
                tags=tags,
            ),
        )
        outputs["cacheAddress"] = cache.address
        outputs["cachePort"] = cache.port
    mesh = HeadscaleHost(
        f"{config.prefix}-headscale",
        HeadscaleHostArgs(
            vpc_id=network.vpc_id,
            subnet_id=network.public_subnet_ids[0],
            availability_zone=network.availability_zones[0],
            instance_type=config.instance_types.headscale,
            hostname=f"mesh.{config.domain}" if config.domain else None,
            acme_email=config.alert_email,
            snapshot_retain_days=7 if config.stage == "dev" else 30,
            tags=tags,
        ),
    )
    outputs["headscaleUrl"] = mesh.url
    outputs["headscalePublicIp"] = mesh.public_ip
    outputs["headscaleApiKeySecretArn"] = mesh.api_key_secret_arn
    return outputs

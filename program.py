"""The platform: components built from the typed stack config, wired through their outputs.

`build` is the whole program; `__main__.py` only loads the config and exports what `build` returns,
and the offline harness calls `build` under Pulumi's mocks.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.cache import Cache, CacheArgs
from components.coordinator_access import edge_domain_of
from components.coordinator_certificate import (
    CoordinatorCertificate,
    CoordinatorCertificateArgs,
)
from components.coordinator_service import (
    HEALTH_CHECK_GRACE_SECONDS,
    CoordinatorService,
    CoordinatorServiceArgs,
)
from components.database import Database, DatabaseArgs
from components.github_oidc import GithubOidc, GithubOidcArgs
from components.headscale_host import HeadscaleHost, HeadscaleHostArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.network import Network, NetworkArgs
from components.origin_address import OriginAddress, OriginAddressArgs
from components.pause_schedule import PauseSchedule, PauseScheduleArgs
from components.srs_origin import OriginEntrance, SrsOrigin, SrsOriginArgs
from components.wake_endpoint import WakeEndpoint, WakeEndpointArgs
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
    cache = None
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
            acme_email=config.acme_email,
            hosted_zone_id=config.coordinator.hosted_zone_id,
            snapshot_retain_days=7 if config.stage == "dev" else 30,
            protect_data=config.stage == "prod",
            paused=config.paused,
            tags=tags,
        ),
    )
    outputs["headscaleUrl"] = mesh.url
    outputs["headscalePublicIp"] = mesh.public_ip
    outputs["headscaleApiKeyParameter"] = mesh.api_key.name
    # Before the coordinator, which must know it. The URL in a streamer's OBS survives every pause:
    # a name in the hosted zone (a deep pause releases the address), else the address itself.
    zone = config.coordinator.hosted_zone_id
    origin_name = f"live.{config.domain}" if zone is not None and config.domain else None
    origin_address = OriginAddress(
        f"{config.prefix}-srs-address",
        OriginAddressArgs(
            tags=tags,
            hostname=origin_name,
            hosted_zone_id=zone if origin_name is not None else None,
            hold_address=origin_name is None or not config.paused,
            # With HTTPS, viewers play the origin through the coordinator's own https URL.
            https_play_url=f"https://{config.domain}" if config.coordinator.https else None,
        ),
    )
    outputs["rtmpIngestUrl"] = origin_address.publish_url
    outputs["hlsUrlTemplate"] = origin_address.hls_url_template
    outputs["flvUrlTemplate"] = origin_address.flv_url_template
    certificate_arn: pulumi.Input[str] | None = config.coordinator.certificate_arn
    if zone is not None and config.domain is not None:
        # Beside the load balancer, not in it: a deep pause deletes the load balancer, and the
        # certificate (free) must not be reissued on every resume.
        certificate_arn = CoordinatorCertificate(
            f"{config.prefix}-web-certificate",
            CoordinatorCertificateArgs(
                domain=config.domain,
                hosted_zone_id=zone,
                tags=tags,
                moved_from=_load_balancer_urn(config),
            ),
        ).arn
    # With no NAT the instances need public addresses to reach ECR and AWS APIs.
    public_instances = config.effective_nat_strategy == "none"
    coordinator = CoordinatorService(
        f"{config.prefix}-coordinator",
        CoordinatorServiceArgs(
            vpc_id=network.vpc_id,
            vpc_cidr=config.network.vpc_cidr,
            public_subnet_ids=network.public_subnet_ids,
            instance_subnet_ids=(
                network.public_subnet_ids if public_instances else network.private_subnet_ids
            ),
            public_instances=public_instances,
            security_group_id=network.coordinator_security_group_id,
            database_address=database.address,
            database_port=database.port,
            database_name=DatabaseArgs.database_name,
            database_secret_arn=database.secret_arn,
            instance_type=config.instance_types.coordinator,
            # A deep pause scales the coordinator to zero; un-pausing restores the configured sizes.
            min_size=0 if config.paused else config.coordinator.min_size,
            max_size=0 if config.paused else config.coordinator.max_size,
            desired_capacity=0 if config.paused else config.coordinator.desired_capacity,
            web_concurrency=config.coordinator.web_concurrency,
            cache_address=cache.address if cache is not None else None,
            cache_port=cache.port if cache is not None else None,
            cache_auth_token=cache.auth_token if cache is not None else None,
            load_balancer=config.load_balancer_enabled,
            load_balancer_name=f"{config.prefix}-web",
            domain=config.domain,
            certificate_arn=certificate_arn,
            hosted_zone_id=zone,
            # With its zone, friends' edges get names there and certificates for them (https).
            edge_domain=edge_domain_of(config.domain) if zone and config.domain else None,
            access_logs=config.stage == "prod",
            mesh_url=mesh.url,
            mesh_api_key=mesh.api_key,
            origin_publish_url=origin_address.publish_url,
            origin_play_url=origin_address.play_url,
            ops_token=config.idle_pause_minutes is not None,
            tags=tags,
        ),
    )
    # Its token pepper, admin token and cache auth token (JSON keys; README: "Deploying for real").
    outputs["coordinatorSecretsParameter"] = coordinator.host_secrets_parameter
    monitoring = Monitoring(
        f"{config.prefix}-monitoring",
        MonitoringArgs(
            autoscaling_group_name=coordinator.autoscaling_group_name,
            database_identifier=database.instance_identifier,
            database_instance_class=config.database.instance_class,
            database_storage_gb=config.database.allocated_storage_gb,
            load_balancer_arn_suffix=coordinator.load_balancer_arn_suffix,
            target_group_arn_suffix=coordinator.target_group_arn_suffix,
            log_group_name=coordinator.log_group_name,
            alert_email=config.alert_email,
            paused=config.paused,
            health_check_grace_seconds=HEALTH_CHECK_GRACE_SECONDS,
            tags=tags,
        ),
    )
    outputs["dashboardUrl"] = monitoring.dashboard_url
    schedule = config.pause_schedule
    # The idle pause asks the coordinator through its load balancer (absent on a deep pause).
    idle = config.idle_pause_minutes if config.load_balancer_enabled else None
    # Deep-pause after an idle pause (the wake endpoint dispatches it); nothing to do deep-paused.
    idle_deep = config.idle_deep_pause_hours if idle is not None else None
    pause = None
    if config.paused or schedule is not None or idle is not None:
        pause = PauseSchedule(
            f"{config.prefix}-pause",
            PauseScheduleArgs(
                project=tags["Project"],
                stage=config.stage,
                timezone=schedule.timezone if schedule is not None else "UTC",
                alarm_topic_arn=monitoring.topic_arn,
                pause_at=schedule.pause_at if schedule is not None else None,
                resume_at=schedule.resume_at if schedule is not None else None,
                weekdays=schedule.weekdays if schedule is not None else (),
                deep_pause=config.paused,
                idle_pause_minutes=idle,
                coordinator_url=coordinator.url if idle is not None else None,
                ops_token_parameter=coordinator.ops_token_parameter if idle is not None else None,
                record_idle_pauses=idle_deep is not None,
                tags=tags,
            ),
        )
        outputs["pauseFunctionName"] = pause.function_name
    if coordinator.url is not None:
        # Kept through a deep pause with a domain (README: "Stable endpoints").
        outputs["coordinatorUrl"] = coordinator.url
        outputs["apiDocsUrl"] = pulumi.Output.concat(coordinator.url, "/docs")
        # Without the coordinator (deep pause) nobody can publish: the origin is left out too
        # (and its address, when a name points at it).
        balancer = coordinator.load_balancer
        if config.load_balancer_enabled and origin_address.allocation_id is not None:
            entrance = None
            if balancer is not None and balancer.https_listener_arn is not None:
                entrance = OriginEntrance(balancer.https_listener_arn, balancer.security_group_id)
            SrsOrigin(
                f"{config.prefix}-srs",
                SrsOriginArgs(
                    vpc_id=network.vpc_id,
                    subnet_id=network.public_subnet_ids[0],
                    instance_type=config.instance_types.srs,
                    coordinator_security_group_id=network.coordinator_security_group_id,
                    coordinator_url=coordinator.url,
                    hook_secret=coordinator.hook_secret,
                    allocation_id=origin_address.allocation_id,
                    entrance=entrance,
                    tags=tags,
                ),
            )
    if config.wake_endpoint and pause is not None:
        wake = WakeEndpoint(
            f"{config.prefix}-wake",
            WakeEndpointArgs(
                project=tags["Project"],
                stage=config.stage,
                pause_function_name=pause.function_name,
                pause_function_arn=pause.function_arn,
                deep_paused=config.paused,
                # The origin's address outlives a deep pause; while running it is where RTMP is.
                rtmp_host=origin_address.host,
                # None while deep-paused (no load balancer): nothing to ask until un-paused.
                coordinator_url=coordinator.url,
                github_repository=config.github.repository if config.github else None,
                idle_deep_pause_hours=idle_deep,
                idle_record_parameter=pause.idle_record_parameter,
                tags=tags,
            ),
        )
        outputs["wakeUrl"] = wake.url
        outputs["wakeTokenParameter"] = wake.token_parameter
        if wake.github_token_parameter is not None:
            outputs["wakeGithubTokenParameter"] = wake.github_token_parameter
    if config.github is not None:
        ci = GithubOidc(
            f"{config.prefix}-github",
            GithubOidcArgs(
                repository=config.github.repository,
                resource_prefix=config.prefix,
                state_bucket_name=config.github.state_bucket,
                secrets_key_arn=config.github.secrets_key_arn,
                provider_arn=config.github.provider_arn,
                tags=tags,
            ),
        )
        outputs["githubPreviewRoleArn"] = ci.preview_role_arn
        outputs["githubDeployRoleArn"] = ci.deploy_role_arn
    return outputs


def _load_balancer_urn(config: StackConfig) -> pulumi.Output[str]:
    """The URN of the load balancer component, where stacks created before CoordinatorCertificate
    kept the certificate (see CoordinatorCertificateArgs.moved_from)."""
    service = pulumi.create_urn(
        f"{config.prefix}-coordinator", "streamr:coordinator:CoordinatorService"
    )
    return pulumi.create_urn(
        f"{config.prefix}-web", "streamr:coordinator:LoadBalancer", parent=service
    )

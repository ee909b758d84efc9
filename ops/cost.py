"""Monthly cost of a planned resource graph: running, stop-paused, deep-paused, and on a schedule.

Pure: it prices `(type, inputs)` pairs (Pulumi type tokens, camelCase input names) with the table
in `ops/prices.py`. The modes:
- `running`: everything on, 730 hours a month;
- `stopped`: the stop schedule's state: ASGs at zero, instances and databases stopped, still
  paying for storage, Elastic IPs, the ALB, the NAT gateway and the cache (which cannot stop);
- `deep_paused`: as stopped, and the ALB, NAT gateway and cache are gone (`paused: true`);
- `scheduled`: running for the schedule's share of the week, stopped for the rest.
A type the model does not know costs 0 and is listed as unpriced, so nothing drops silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ops import prices
from ops.schedule import Schedule

# Schedules are measured on a fixed week so a figure does not change with the day it is computed.
REFERENCE_WEEK = datetime(2026, 1, 5, tzinfo=UTC)

MODES = ("running", "stopped", "deep_paused")
HOURS = prices.HOURS_PER_MONTH

# Types that cost nothing by themselves, or only by usage the plan cannot know.
FREE_TYPES = {
    "aws:ec2/vpc:Vpc": "free",
    "aws:ec2/subnet:Subnet": "free",
    "aws:ec2/routeTable:RouteTable": "free",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "free",
    "aws:ec2/route:Route": "free",
    "aws:ec2/internetGateway:InternetGateway": "free (data transfer is usage)",
    "aws:ec2/securityGroup:SecurityGroup": "free",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "free",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "free",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "free",
    "aws:ec2/launchTemplate:LaunchTemplate": "priced in its auto scaling group",
    "aws:rds/parameterGroup:ParameterGroup": "free",
    "aws:rds/subnetGroup:SubnetGroup": "free",
    "aws:elasticache/subnetGroup:SubnetGroup": "free",
    "aws:elasticache/parameterGroup:ParameterGroup": "free",
    "aws:iam/role:Role": "free",
    "aws:iam/policy:Policy": "free",
    "aws:iam/rolePolicy:RolePolicy": "free",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "free",
    "aws:iam/instanceProfile:InstanceProfile": "free",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "free",
    "aws:secretsmanager/secretVersion:SecretVersion": "free (the secret is priced)",
    "aws:ec2/eipAssociation:EipAssociation": "free (the EIP is priced)",
    "aws:lb/targetGroup:TargetGroup": "free",
    "aws:lb/listener:Listener": "free",
    "aws:acm/certificate:Certificate": "free (public ACM certificates on an ALB)",
    "aws:acm/certificateValidation:CertificateValidation": "free",
    # The hosted zone is the operator's (0.50 USD a month, outside the stack); alias queries to
    # the ALB are free, other queries usage-based.
    "aws:route53/record:Record": "free (the operator's hosted zone)",
    "aws:lb/listenerRule:ListenerRule": "free",
    "aws:lb/targetGroupAttachment:TargetGroupAttachment": "free",
    "aws:autoscaling/policy:Policy": "free",
    "aws:sns/topic:Topic": "usage-based",
    "aws:sns/topicSubscription:TopicSubscription": "usage-based",
    "aws:cloudwatch/logGroup:LogGroup": "usage-based (ingestion, storage)",
    "aws:cloudwatch/dashboard:Dashboard": "free (first 3 dashboards)",
    "aws:ec2/flowLog:FlowLog": "usage-based (log ingestion)",
    "aws:ecr/repository:Repository": "usage-based (image storage)",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": "free",
    "aws:lambda/function:Function": "usage-based",
    "aws:lambda/permission:Permission": "free",
    "aws:lambda/functionUrl:FunctionUrl": "free (its requests are the function's usage)",
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": "free",
    "aws:scheduler/schedule:Schedule": "usage-based (free tier covers a few runs a day)",
    "aws:scheduler/scheduleGroup:ScheduleGroup": "free",
    "aws:cloudwatch/eventRule:EventRule": "free (scheduled events; the runs are the function's)",
    "aws:cloudwatch/eventTarget:EventTarget": "free",
    "aws:sqs/queue:Queue": "usage-based",
    "aws:ec2/volumeAttachment:VolumeAttachment": "free (the volume is priced)",
    "aws:dlm/lifecyclePolicy:LifecyclePolicy": "usage-based (snapshot storage)",
    "aws:s3/bucket:Bucket": "usage-based (storage, requests)",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "free",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "free",
    "aws:s3/bucketPolicy:BucketPolicy": "free",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "free",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "free (SSE-S3)"
    ),
    "docker-build:index:Image": "usage-based (ECR image storage)",
    "random:index/randomPassword:RandomPassword": "free (generated by Pulumi)",
}


class PlannedResource(Protocol):
    """Anything with a Pulumi type token and camelCase inputs (e.g. the offline harness's)."""

    @property
    def type(self) -> str: ...

    @property
    def inputs(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class LineItem:
    name: str
    type: str
    component: str
    running: float
    stopped: float
    deep_paused: float
    note: str
    priced: bool = True

    def monthly(self, mode: str) -> float:
        return getattr(self, mode)


@dataclass(frozen=True)
class Estimate:
    region: str
    items: tuple[LineItem, ...]
    running_fraction: float | None = None

    @property
    def unpriced(self) -> list[LineItem]:
        return [item for item in self.items if not item.priced]

    def total(self, mode: str) -> float:
        if mode == "scheduled":
            if self.running_fraction is None:
                raise ValueError("a scheduled total needs a schedule")
            share = self.running_fraction
            return share * self.total("running") + (1 - share) * self.total("stopped")
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}; allowed values: {', '.join(MODES)}, scheduled")
        return sum(item.monthly(mode) for item in self.items)

    def by_component(self) -> dict[str, dict[str, float]]:
        groups: dict[str, dict[str, float]] = {}
        for item in self.items:
            group = groups.setdefault(item.component, dict.fromkeys(MODES, 0.0))
            for mode in MODES:
                group[mode] += item.monthly(mode)
        return groups


def estimate(
    resources: Iterable[PlannedResource],
    region: str,
    schedule: Schedule | None = None,
    week_start: datetime | None = None,
) -> Estimate:
    """Price every resource; with a schedule (and the week to measure it on), the scheduled mix."""
    if region not in prices.PRICES:
        raise ValueError(
            f"no price table for region {region!r}; allowed: {', '.join(prices.PRICES)}"
        )
    table = prices.PRICES[region]
    listed = list(resources)
    templates = [r for r in listed if r.type == "aws:ec2/launchTemplate:LaunchTemplate"]
    items = tuple(_price(resource, table, templates) for resource in listed)
    fraction = None
    if schedule is not None:
        if week_start is None:
            raise ValueError("pricing a schedule needs week_start (a timezone-aware datetime)")
        fraction = running_fraction(schedule, week_start)
    return Estimate(region, items, fraction)


def running_fraction(schedule: Schedule, week_start: datetime) -> float:
    """Share of the week from `week_start` during which the schedule wants the platform running."""
    end = week_start + timedelta(days=7)
    state = schedule.target_at(week_start)
    cursor, running = week_start, timedelta()
    for event in schedule.events_between(week_start, end):
        if state == "running":
            running += event.at - cursor
        cursor, state = event.at, event.target
    if state == "running":
        running += end - cursor
    return running / (end - week_start)


def _price(resource: PlannedResource, table: Mapping[str, Any], templates: list) -> LineItem:
    name = str(getattr(resource, "name", resource.type))
    component = str(getattr(resource, "component", "") or "-")
    pricer = _PRICERS.get(resource.type)
    if pricer is not None:
        try:
            running, stopped, deep, note = pricer(resource.inputs, table, templates)
        except _NoPrice as missing:
            return LineItem(name, resource.type, component, 0.0, 0.0, 0.0, str(missing), False)
        return LineItem(name, resource.type, component, running, stopped, deep, note)
    if resource.type in FREE_TYPES:
        return LineItem(name, resource.type, component, 0.0, 0.0, 0.0, FREE_TYPES[resource.type])
    return LineItem(name, resource.type, component, 0.0, 0.0, 0.0, "unpriced: unknown type", False)


class _NoPrice(Exception):
    """The type is known but this size/region has no price in the table."""


def _lookup(table: Mapping[str, Any], kind: str, key: str) -> float:
    try:
        return table[kind][key]
    except KeyError:
        raise _NoPrice(f"unpriced: no {kind} price for {key!r}") from None


Priced = tuple[float, float, float, str]


def _ebs(table: Mapping[str, Any], size: Any, volume_type: Any) -> float:
    gb = int(size or prices.DEFAULT_ROOT_VOLUME_GB)
    return gb * _lookup(table, "ebs_gb_month", str(volume_type or "gp3"))


def _instance(inputs: Mapping[str, Any], table: Mapping[str, Any], _templates: list) -> Priced:
    hourly = _lookup(table, "ec2_hourly", str(inputs.get("instanceType")))
    root = inputs.get("rootBlockDevice") or {}
    disk = _ebs(table, root.get("volumeSize"), root.get("volumeType"))
    # An auto-assigned public IPv4 bills while running; a stopped instance gives it back.
    public_ip = prices.PUBLIC_IPV4_HOURLY * HOURS if inputs.get("associatePublicIpAddress") else 0
    running = hourly * HOURS + disk + public_ip
    return running, disk, disk, f"{inputs.get('instanceType')}, {disk:.2f} disk"


def _group(inputs: Mapping[str, Any], table: Mapping[str, Any], templates: list) -> Priced:
    count = int(inputs.get("desiredCapacity") or inputs.get("minSize") or 0)
    template = _template_of(inputs, templates)
    data = template.inputs
    hourly = _lookup(table, "ec2_hourly", str(data.get("instanceType")))
    mappings = data.get("blockDeviceMappings") or [{}]
    ebs = mappings[0].get("ebs") or {}
    disk = _ebs(table, ebs.get("volumeSize"), ebs.get("volumeType"))
    interfaces = data.get("networkInterfaces") or [{}]
    public = interfaces[0].get("associatePublicIpAddress") in (True, "true")
    per_instance = hourly * HOURS + disk + (prices.PUBLIC_IPV4_HOURLY * HOURS if public else 0)
    return count * per_instance, 0.0, 0.0, f"{count} x {data.get('instanceType')}; 0 when paused"


def _template_of(inputs: Mapping[str, Any], templates: list) -> PlannedResource:
    reference = inputs.get("launchTemplate") or {}
    for template in templates:
        if reference.get("name") and template.inputs.get("name") == reference.get("name"):
            return template
        if reference.get("id") and getattr(template, "id", None) == reference.get("id"):
            return template
    if len(templates) == 1:
        return templates[0]
    raise _NoPrice("unpriced: cannot tell which launch template the group uses")


def _database(inputs: Mapping[str, Any], table: Mapping[str, Any], _templates: list) -> Priced:
    copies = 2 if inputs.get("multiAz") else 1
    hourly = _lookup(table, "rds_hourly", str(inputs.get("instanceClass")))
    storage_type = str(inputs.get("storageType") or "gp3")
    gb = int(inputs.get("allocatedStorage") or 20)
    storage = copies * gb * _lookup(table, "rds_storage_gb_month", storage_type)
    secret = prices.SECRET_MONTHLY if inputs.get("manageMasterUserPassword") else 0.0
    kept = storage + secret
    note = f"{inputs.get('instanceClass')}{' Multi-AZ' if copies == 2 else ''}, {gb} GB"
    return copies * hourly * HOURS + kept, kept, kept, note


def _cache_nodes(inputs: Mapping[str, Any]) -> int:
    if inputs.get("numCacheClusters"):
        return int(inputs["numCacheClusters"])
    if inputs.get("numCacheNodes"):
        return int(inputs["numCacheNodes"])
    groups = int(inputs.get("numNodeGroups") or 1)
    return groups * (int(inputs.get("replicasPerNodeGroup") or 0) + 1)


def _cache(inputs: Mapping[str, Any], table: Mapping[str, Any], _templates: list) -> Priced:
    nodes = _cache_nodes(inputs)
    hourly = _lookup(table, "cache_hourly", str(inputs.get("nodeType")))
    if str(inputs.get("engine") or "").lower() == "valkey":
        hourly *= prices.VALKEY_DISCOUNT
    monthly = nodes * hourly * HOURS
    return monthly, monthly, 0.0, f"{nodes} x {inputs.get('nodeType')}; cannot stop"


def _nat_gateway(_inputs: Mapping[str, Any], table: Mapping[str, Any], _templates: list) -> Priced:
    monthly = table["nat_gateway_hourly"] * HOURS
    return monthly, monthly, 0.0, "hourly + data; cannot stop"


def _load_balancer(inputs: Mapping[str, Any], table: Mapping[str, Any], _templates: list) -> Priced:
    zones = len(inputs.get("subnets") or inputs.get("subnetMappings") or [None, None])
    public = 0.0 if inputs.get("internal") else zones * prices.PUBLIC_IPV4_HOURLY * HOURS
    monthly = table["alb_hourly"] * HOURS + public
    return monthly, monthly, 0.0, "hourly (+LCU usage); cannot stop"


def _elastic_ip(_inputs: Mapping[str, Any], _table: Mapping[str, Any], _templates: list) -> Priced:
    monthly = prices.PUBLIC_IPV4_HOURLY * HOURS
    return monthly, monthly, monthly, "public IPv4, billed attached or not"


def _volume(inputs: Mapping[str, Any], table: Mapping[str, Any], _templates: list) -> Priced:
    monthly = _ebs(table, inputs.get("size"), inputs.get("type"))
    return monthly, monthly, monthly, f"{inputs.get('size')} GB {inputs.get('type') or 'gp3'}"


def _fixed(monthly: float, note: str) -> Callable[..., Priced]:
    def price(_inputs: Mapping[str, Any], _table: Mapping[str, Any], _templates: list) -> Priced:
        return monthly, monthly, monthly, note

    return price


def _parameter(inputs: Mapping[str, Any], _table: Mapping[str, Any], _templates: list) -> Priced:
    tier = str(inputs.get("tier") or "Standard")
    if tier not in prices.SSM_PARAMETER_MONTHLY:
        raise _NoPrice(f"unpriced: no price for a {tier!r} SSM parameter")
    monthly = prices.SSM_PARAMETER_MONTHLY[tier]
    return monthly, monthly, monthly, f"{tier.lower()} parameter"


def _endpoint(inputs: Mapping[str, Any], table: Mapping[str, Any], _templates: list) -> Priced:
    if inputs.get("vpcEndpointType", "Gateway") != "Interface":
        return 0.0, 0.0, 0.0, "gateway endpoint: free"
    zones = len(inputs.get("subnetIds") or [None])
    monthly = zones * table["interface_endpoint_hourly"] * HOURS
    return monthly, monthly, monthly, f"interface endpoint in {zones} AZ(s)"


_PRICERS: dict[str, Callable[..., Priced]] = {
    "aws:ec2/instance:Instance": _instance,
    "aws:autoscaling/group:Group": _group,
    "aws:rds/instance:Instance": _database,
    "aws:elasticache/replicationGroup:ReplicationGroup": _cache,
    "aws:elasticache/cluster:Cluster": _cache,
    "aws:ec2/natGateway:NatGateway": _nat_gateway,
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:alb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:ec2/eip:Eip": _elastic_ip,
    "aws:ebs/volume:Volume": _volume,
    "aws:secretsmanager/secret:Secret": _fixed(prices.SECRET_MONTHLY, "per secret"),
    "aws:ssm/parameter:Parameter": _parameter,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _fixed(prices.ALARM_MONTHLY, "standard alarm"),
    "aws:kms/key:Key": _fixed(prices.KMS_KEY_MONTHLY, "customer managed key"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": _endpoint,
}

"""Print what `pulumi up` would create for a stack, evaluated offline under Pulumi's mocks.

    python -m offline.plan --stack dev [--preview] [--set natStrategy=gateway ...]

Resources are grouped by component (the parent tree), each with the settings that matter for it;
which settings those are is the `KEY_SETTINGS` table below. In the default (update) mode the
harness synthesises ids, so references print as the names of the resources they point to.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from offline.cost_report import summary as cost_summary
from offline.harness import (
    UNKNOWN,
    OfflineHarnessError,
    ProgramFailed,
    ProgramRun,
    ProviderRefused,
    Resource,
    run_program,
)
from offline.provider_rules import MissingNameRule
from ops.arguments import Parser
from ops.stack_file import StackFileError
from stack_config import StackConfigError

Setting = Callable[[Resource, ProgramRun], Any]


def field(path: str) -> Setting:
    """A (dotted) input path, e.g. `metadataOptions.httpTokens`."""

    def read(resource: Resource, _run: ProgramRun) -> Any:
        value: Any = resource.inputs
        for part in path.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return value

    return read


def reference(path: str) -> Setting:
    """An input holding ids of other resources, shown as those resources' names."""
    read = field(path)

    def resolve(resource: Resource, run: ProgramRun) -> Any:
        value = read(resource, run)
        if value is None:
            return None
        return ", ".join(_name_of(item, run) for item in _as_list(value))

    return resolve


def rules(path: str, absent: str) -> Setting:
    """Security group rules as `tcp 5432 <peers>`; `none` when the list is empty."""
    read = field(path)

    def render(resource: Resource, run: ProgramRun) -> Any:
        value = read(resource, run)
        if value is None:
            return absent
        if not value:
            return "none"
        return "; ".join(_rule(rule, run) for rule in value)

    return render


def _rule(rule: dict[str, Any], run: ProgramRun) -> str:
    protocol = rule.get("protocol")
    low, high = rule.get("fromPort"), rule.get("toPort")
    if protocol == "-1":
        ports = "all traffic"
    else:
        ports = f"{protocol} {low}" if low == high else f"{protocol} {low}-{high}"
    peers = [
        *rule.get("cidrBlocks", []),
        *rule.get("ipv6CidrBlocks", []),
        *(_name_of(group, run) for group in rule.get("securityGroups", [])),
    ]
    if rule.get("self"):
        peers.append("itself")
    return f"{ports} {', '.join(peers) or 'nowhere'}"


def routes(resource: Resource, run: ProgramRun) -> Any:
    table = resource.inputs.get("routes")
    if table is None:
        return "local (plus any aws.ec2.Route listed)"
    return (
        "; ".join(
            f"{route.get('cidrBlock')} -> {_name_of(_route_target(route), run)}" for route in table
        )
        or "local only"
    )


def route_target(resource: Resource, run: ProgramRun) -> Any:
    return _name_of(_route_target(resource.inputs), run)


def _route_target(route: dict[str, Any]) -> Any:
    for key in ("gatewayId", "natGatewayId", "networkInterfaceId", "transitGatewayId"):
        if route.get(key) is not None:
            return route[key]
    return None


def engine_version(resource: Resource, _run: ProgramRun) -> Any:
    return f"{resource.inputs.get('engine')} {resource.inputs.get('engineVersion')}"


def storage(resource: Resource, _run: ProgramRun) -> Any:
    return f"{resource.inputs.get('allocatedStorage')} GB {resource.inputs.get('storageType')}"


def final_snapshot(resource: Resource, _run: ProgramRun) -> Any:
    return not resource.inputs.get("skipFinalSnapshot", False)


def secret(path: str) -> Setting:
    def render(resource: Resource, _run: ProgramRun) -> Any:
        return "[secret]" if path in resource.secret_inputs else None

    return render


def managed_password(resource: Resource, _run: ProgramRun) -> Any:
    return "managed by RDS" if resource.inputs.get("manageMasterUserPassword") else None


def db_parameters(resource: Resource, _run: ProgramRun) -> Any:
    return ", ".join(f"{p['name']}={p['value']}" for p in resource.inputs.get("parameters", []))


def trusted_services(resource: Resource, _run: ProgramRun) -> Any:
    policy = resource.inputs.get("assumeRolePolicy")
    if not isinstance(policy, str):
        return policy
    principals = [
        statement.get("Principal", {}).get("Service")
        for statement in json.loads(policy).get("Statement", [])
    ]
    return ", ".join(str(principal) for principal in principals)


# What to show per resource type: (label, how to read it). Types not listed show no settings.
KEY_SETTINGS: dict[str, list[tuple[str, Setting]]] = {
    "aws:ec2/vpc:Vpc": [("cidr", field("cidrBlock"))],
    "aws:ec2/subnet:Subnet": [
        ("tier", field("tags.Tier")),
        ("cidr", field("cidrBlock")),
        ("az", field("availabilityZone")),
        ("public ip on launch", field("mapPublicIpOnLaunch")),
    ],
    "aws:ec2/securityGroup:SecurityGroup": [
        ("in", rules("ingress", absent="(separate rule resources)")),
        ("out", rules("egress", absent="(separate rule resources)")),
    ],
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": [
        ("in", rules("ingress", absent="none")),
        ("out", rules("egress", absent="none")),
    ],
    "aws:ec2/routeTable:RouteTable": [("routes", routes)],
    "aws:ec2/route:Route": [
        ("table", reference("routeTableId")),
        ("destination", field("destinationCidrBlock")),
        ("via", route_target),
    ],
    "aws:ec2/routeTableAssociation:RouteTableAssociation": [
        ("subnet", reference("subnetId")),
        ("table", reference("routeTableId")),
    ],
    "aws:ec2/instance:Instance": [
        ("type", field("instanceType")),
        ("subnet", reference("subnetId")),
        ("public ip", field("associatePublicIpAddress")),
        ("source/dest check", field("sourceDestCheck")),
        ("IMDS tokens", field("metadataOptions.httpTokens")),
        ("root encrypted", field("rootBlockDevice.encrypted")),
    ],
    "aws:ec2/natGateway:NatGateway": [("subnet", reference("subnetId"))],
    "aws:ec2/flowLog:FlowLog": [
        ("traffic", field("trafficType")),
        ("destination", field("logDestinationType")),
    ],
    "aws:cloudwatch/logGroup:LogGroup": [("retention days", field("retentionInDays"))],
    "aws:iam/role:Role": [("trusted by", trusted_services)],
    "aws:rds/instance:Instance": [
        ("class", field("instanceClass")),
        ("engine", engine_version),
        ("storage", storage),
        ("encrypted", field("storageEncrypted")),
        ("public", field("publiclyAccessible")),
        ("multi-AZ", field("multiAz")),
        ("deletion protection", field("deletionProtection")),
        ("backup days", field("backupRetentionPeriod")),
        ("final snapshot", final_snapshot),
        ("password", managed_password),
    ],
    "aws:rds/parameterGroup:ParameterGroup": [
        ("family", field("family")),
        ("parameters", db_parameters),
    ],
    "aws:rds/subnetGroup:SubnetGroup": [("subnets", reference("subnetIds"))],
    "aws:elasticache/subnetGroup:SubnetGroup": [("subnets", reference("subnetIds"))],
    "aws:elasticache/replicationGroup:ReplicationGroup": [
        ("engine", engine_version),
        ("node", field("nodeType")),
        ("nodes", field("numCacheClusters")),
        ("TLS", field("transitEncryptionEnabled")),
        ("at-rest encryption", field("atRestEncryptionEnabled")),
        ("auth token", secret("authToken")),
    ],
    "random:index/randomPassword:RandomPassword": [("length", field("length"))],
    "aws:ebs/volume:Volume": [
        ("size GB", field("size")),
        ("type", field("type")),
        ("az", field("availabilityZone")),
        ("encrypted", field("encrypted")),
    ],
    "aws:ec2/volumeAttachment:VolumeAttachment": [
        ("volume", reference("volumeId")),
        ("instance", reference("instanceId")),
    ],
    "aws:ec2/eipAssociation:EipAssociation": [("instance", reference("instanceId"))],
    "aws:dlm/lifecyclePolicy:LifecyclePolicy": [
        ("state", field("state")),
        ("resources", field("policyDetails.resourceTypes")),
    ],
    "aws:ecr/repository:Repository": [
        ("tags", field("imageTagMutability")),
        ("scan on push", field("imageScanningConfiguration.scanOnPush")),
    ],
    "aws:ec2/launchTemplate:LaunchTemplate": [
        ("type", field("instanceType")),
        ("IMDS tokens", field("metadataOptions.httpTokens")),
    ],
    "aws:autoscaling/group:Group": [
        ("min", field("minSize")),
        ("desired", field("desiredCapacity")),
        ("max", field("maxSize")),
        ("health check", field("healthCheckType")),
        ("refresh", field("instanceRefresh.strategy")),
        ("subnets", reference("vpcZoneIdentifiers")),
    ],
    "aws:lb/loadBalancer:LoadBalancer": [
        ("subnets", reference("subnets")),
        ("drop invalid headers", field("dropInvalidHeaderFields")),
        ("access logs", field("accessLogs.enabled")),
    ],
    "aws:lb/targetGroup:TargetGroup": [
        ("port", field("port")),
        ("health check", field("healthCheck.path")),
    ],
    "aws:lb/listener:Listener": [("port", field("port")), ("protocol", field("protocol"))],
    "aws:cloudwatch/metricAlarm:MetricAlarm": [
        ("metric", field("metricName")),
        ("threshold", field("threshold")),
    ],
}


def key_settings(resource: Resource, run: ProgramRun) -> str:
    parts = []
    for label, read in KEY_SETTINGS.get(resource.type, []):
        value = read(resource, run)
        if value is not None:
            parts.append(f"{label}={_show(value)}")
    return "  ".join(parts)


def render(run: ProgramRun) -> str:
    mode = "preview" if run.preview else "update"
    region = run.config.get("aws:region", "?")
    lines = [
        f"Stack {run.stack} ({region}): what `pulumi up` would create, evaluated offline ({mode}).",
        "Ids, ARNs and endpoints are synthesised offline; AWS assigns the real ones.",
        *(
            f"{key} is not set in the stack file; shown with the documentation value {value!r} "
            "in its place; `pulumi up` needs yours (see the stack file)."
            for key, value in run.documentation.items()
        ),
        "",
    ]

    def order(resource: Resource) -> tuple[bool, str, str]:
        # Components first (each opens a group), then by type and name, so the output is stable.
        return (resource.custom, resource.type if resource.custom else "", resource.name)

    children: dict[str | None, list[Resource]] = {}
    for resource in run.resources:
        children.setdefault(resource.parent, []).append(resource)

    def walk(parent: str | None, depth: int) -> None:
        for resource in sorted(children.get(parent, []), key=order):
            indent = "  " * depth
            settings = key_settings(resource, run)
            head = f"{indent}{_short_type(resource.type)}  {resource.name}"
            lines.append(f"{head}  {settings}".rstrip())
            walk(resource.urn, depth + 1)

    walk(None, 0)
    custom = sum(1 for resource in run.resources if resource.custom)
    components = len(run.resources) - custom
    lines += ["", f"{custom} resources in {components} components.", "", "Stack outputs:"]
    width = max((len(name) for name in run.outputs), default=0)
    for name, value in run.outputs.items():
        shown = "[secret]" if name in run.secret_outputs else _show(value)
        lines.append(f"  {name.ljust(width)}  {shown}")
    lines += [
        "",
        cost_summary(run),
        f"Per component, and deep-paused: `make cost STACK={run.stack}` (prices in ops/prices.py).",
    ]
    return "\n".join(lines)


def _short_type(type_: str) -> str:
    """`aws:ec2/vpc:Vpc` -> `aws.ec2.Vpc`, the name a reader knows from the SDK."""
    package, module, kind = type_.split(":")
    module = module.split("/")[0]
    return f"{package}.{kind}" if module == "index" else f"{package}.{module}.{kind}"


def _name_of(value: Any, run: ProgramRun) -> str:
    resource = run.by_id(value)
    if resource is not None:
        return resource.name
    # Some references are computed ids of a resource's parts, e.g. an instance's network card.
    for candidate in run.resources:
        for key, output in candidate.outputs.items():
            if key.endswith("Id") and isinstance(value, str) and output == value:
                return f"{candidate.name} ({key})"
    return _show(value)


def _show(value: Any) -> str:
    if value is UNKNOWN:
        return "(known after apply)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_show(item) for item in value)
    return str(value)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="make plan", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--stack", default="dev", help="stack name (stacks/Pulumi.<stack>.yaml)")
    parser.add_argument(
        "--preview", action="store_true", help="evaluate as `pulumi preview` (ids unknown)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key for this plan, e.g. --set paused=true",
    )
    options = parser.parse_args(argv)
    overrides = parser.key_values("--set", options.set)
    try:
        run = run_program(options.stack, overrides, preview=options.preview)
    except (OfflineHarnessError, StackFileError) as error:
        print(f"make plan: {error}", file=sys.stderr)
        return 2
    except ProgramFailed as failure:
        # A config error, or a resource the provider or AWS would refuse: `pulumi preview`
        # stops on these with a message, and so does the plan.
        if isinstance(failure.__cause__, StackConfigError | ProviderRefused | MissingNameRule):
            print(f"make plan: {failure}", file=sys.stderr)
            return 2
        raise
    print(render(run))
    return 0


if __name__ == "__main__":
    sys.exit(main())

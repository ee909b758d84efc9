"""The policy pack's rules: plain validators over resource inputs (camelCase, as the engine sends).

Each rule is a `Rule` (name, description, default enforcement, config schema with defaults, and a
check that returns violation messages). `policies()` turns them into CrossGuard policies for
`__main__.py`; tests call the same checks in process. Stage-aware rules read the stage from the
resource's `Stage` tag (every resource of this program carries it), else from the rule's config.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import importlib
import inspect
import json
import keyword
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

MANDATORY, ADVISORY = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY
Props = Mapping[str, Any]
Config = Mapping[str, Any]


@dataclass(frozen=True)
class StackResource:
    """What a stack rule sees of one resource (type, name, urn, properties)."""

    type: str
    name: str
    urn: str
    props: Props


ResourceCheck = Callable[[str, Props, Config], list[str]]
StackCheck = Callable[[list[StackResource], Config], list[str]]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: ResourceCheck | StackCheck
    stack: bool = False
    enforcement: EnforcementLevel = MANDATORY
    # JSON-schema properties, each with a "default": the rule's parameters.
    schema: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def defaults(self) -> dict[str, Any]:
        return {key: spec["default"] for key, spec in self.schema.items()}


# -- helpers -------------------------------------------------------------------------------------


def tags_of(props: Props) -> dict[str, str] | None:
    """Resource tags as a map; auto scaling groups list them as {key, value} items. None when
    `tags` means something else (a container image's tags are image names)."""
    tags = props.get("tags")
    if tags is None:
        return {}
    if isinstance(tags, Mapping):
        return dict(tags)
    if isinstance(tags, list) and all(isinstance(t, Mapping) and "key" in t for t in tags):
        return {t["key"]: t.get("value") for t in tags}
    return None


def stage_of(props: Props, config: Config) -> str:
    tags = tags_of(props) or {}
    return str(tags.get("Stage") or config.get("stage") or "dev")


def per_stage(value: Mapping[str, Any], stage: str) -> Any:
    """The stage's value; an unknown stage gets prod's (the strictest)."""
    return value.get(stage, value.get("prod"))


def truthy(value: Any) -> bool:
    """Launch templates carry booleans as strings ("true")."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def policy_statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return []
    if not isinstance(document, dict):
        return []
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@cache
def taggable(type_: str) -> bool:
    """Whether the resource type accepts `tags`, read from its Pulumi SDK class."""
    package, module_path, class_name = type_.split(":")
    module = module_path.split("/")[0]
    try:
        sdk = importlib.import_module(f"pulumi_{package.replace('-', '_')}")
    except ImportError:
        return False
    if module != "index" and keyword.iskeyword(module):
        module += "_"
    namespace = sdk if module == "index" else getattr(sdk, module, None)
    cls = getattr(namespace, class_name, None)
    init = getattr(cls, "_internal_init", None)
    return init is not None and "tags" in inspect.signature(init).parameters


# -- resource checks -----------------------------------------------------------------------------

RDS = "aws:rds/instance:Instance"
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LEGACY_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
IAM_POLICY_TYPES = {
    "aws:iam/policy:Policy": "policy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}


def rds_encrypted(type_: str, props: Props, _config: Config) -> list[str]:
    if type_ == RDS and not props.get("storageEncrypted"):
        return ["RDS storage must be encrypted (storageEncrypted: true)"]
    return []


def rds_private(type_: str, props: Props, _config: Config) -> list[str]:
    if type_ == RDS and props.get("publiclyAccessible"):
        return ["RDS instances must not be publicly accessible"]
    return []


def rds_backups(type_: str, props: Props, config: Config) -> list[str]:
    if type_ != RDS:
        return []
    minimum = per_stage(config["minimumDays"], stage_of(props, config))
    days = props.get("backupRetentionPeriod") or 0
    if days < minimum:
        return [f"RDS backups are kept {days} day(s); at least {minimum} required in this stage"]
    return []


def rds_prod_resilience(type_: str, props: Props, config: Config) -> list[str]:
    if type_ != RDS or stage_of(props, config) not in config["stages"]:
        return []
    problems = []
    if not props.get("multiAz"):
        problems.append("production RDS must be Multi-AZ (multiAz: true)")
    if not props.get("deletionProtection"):
        problems.append("production RDS must have deletion protection")
    if props.get("skipFinalSnapshot"):
        problems.append("production RDS must take a final snapshot (skipFinalSnapshot: false)")
    return problems


def rds_tls(type_: str, props: Props, _config: Config) -> list[str]:
    if type_ != "aws:rds/parameterGroup:ParameterGroup" or not str(
        props.get("family", "")
    ).startswith("postgres"):
        return []
    forced = {p.get("name"): str(p.get("value")) for p in props.get("parameters") or []}.get(
        "rds.force_ssl"
    )
    if forced != "1":
        return ["PostgreSQL parameter groups must force TLS (rds.force_ssl = 1)"]
    return []


def cache_encrypted(type_: str, props: Props, _config: Config) -> list[str]:
    if type_ != CACHE:
        return []
    problems = []
    if not props.get("transitEncryptionEnabled"):
        problems.append("ElastiCache must encrypt in transit (transitEncryptionEnabled: true)")
    if not props.get("atRestEncryptionEnabled"):
        problems.append("ElastiCache must encrypt at rest (atRestEncryptionEnabled: true)")
    if not props.get("authToken") and not props.get("userGroupIds"):
        problems.append("ElastiCache must require authentication (authToken or userGroupIds)")
    return problems


def _covers(protocol: Any, low: Any, high: Any, port: int) -> bool:
    if str(protocol) in ("-1", "all"):
        return True
    if low is None or high is None:
        return False
    return int(low) <= port <= int(high)


def world_ingress(type_: str, props: Props, config: Config) -> list[str]:
    """Ingress from anywhere (IPv4 or IPv6) to a sensitive port, however the rule is declared."""
    ports = config["ports"]
    rules: list[tuple[Any, Any, Any, set[str]]] = []
    if type_ == SECURITY_GROUP:
        for rule in props.get("ingress") or []:
            sources = {*as_list(rule.get("cidrBlocks")), *as_list(rule.get("ipv6CidrBlocks"))}
            rules.append((rule.get("protocol"), rule.get("fromPort"), rule.get("toPort"), sources))
    elif type_ == INGRESS_RULE:
        sources = {props.get("cidrIpv4"), props.get("cidrIpv6")} - {None}
        low, high = props.get("fromPort"), props.get("toPort")
        if props.get("ipProtocol") == "-1":
            low, high = 0, 65535
        rules.append((props.get("ipProtocol"), low, high, sources))
    elif type_ == LEGACY_RULE and props.get("type") == "ingress":
        sources = {*as_list(props.get("cidrBlocks")), *as_list(props.get("ipv6CidrBlocks"))}
        rules.append((props.get("protocol"), props.get("fromPort"), props.get("toPort"), sources))
    return [
        f"ingress from {source} to port {port} is not allowed"
        for protocol, low, high, sources in rules
        for source in sorted(sources & {"0.0.0.0/0", "::/0"})
        for port in ports
        if _covers(protocol, low, high, port)
    ]


def imdsv2(type_: str, props: Props, _config: Config) -> list[str]:
    if type_ not in (INSTANCE, LAUNCH_TEMPLATE):
        return []
    if (props.get("metadataOptions") or {}).get("httpTokens") != "required":
        kind = "instances" if type_ == INSTANCE else "launch templates"
        return [f"EC2 {kind} must require IMDSv2 (metadataOptions.httpTokens: required)"]
    return []


def volumes_encrypted(type_: str, props: Props, _config: Config) -> list[str]:
    if type_ == "aws:ebs/volume:Volume" and not props.get("encrypted"):
        return ["EBS volumes must be encrypted"]
    if type_ == INSTANCE:
        devices = [props.get("rootBlockDevice") or {}, *(props.get("ebsBlockDevices") or [])]
        if not all(truthy(device.get("encrypted")) for device in devices):
            return ["EC2 instance volumes must be encrypted (rootBlockDevice/ebsBlockDevices)"]
    if type_ == LAUNCH_TEMPLATE:
        mappings = [m for m in props.get("blockDeviceMappings") or [] if m.get("ebs") is not None]
        if not all(truthy(m["ebs"].get("encrypted")) for m in mappings):
            return ["launch template volumes must be encrypted (blockDeviceMappings[].ebs)"]
    return []


def load_balancer_headers(type_: str, props: Props, _config: Config) -> list[str]:
    application = props.get("loadBalancerType", "application") == "application"
    balancer = type_ == "aws:lb/loadBalancer:LoadBalancer" and application
    if balancer and not props.get("dropInvalidHeaderFields"):
        return ["application load balancers must drop invalid header fields"]
    return []


def ecr_scanning(type_: str, props: Props, _config: Config) -> list[str]:
    if type_ != "aws:ecr/repository:Repository":
        return []
    if not (props.get("imageScanningConfiguration") or {}).get("scanOnPush"):
        return ["ECR repositories must scan images on push"]
    return []


def ecr_immutable(type_: str, props: Props, _config: Config) -> list[str]:
    if type_ == "aws:ecr/repository:Repository" and props.get("imageTagMutability") != "IMMUTABLE":
        return ["ECR repositories must have immutable tags (imageTagMutability: IMMUTABLE)"]
    return []


def log_retention(type_: str, props: Props, config: Config) -> list[str]:
    if type_ != "aws:cloudwatch/logGroup:LogGroup":
        return []
    days = props.get("retentionInDays") or 0
    if days <= 0:
        return ["log groups must set a retention (retentionInDays), or they grow forever"]
    if days > config["maximumDays"]:
        return [f"log retention {days} days is above the allowed {config['maximumDays']}"]
    return []


def lambda_runtime(type_: str, props: Props, config: Config) -> list[str]:
    if type_ != "aws:lambda/function:Function" or props.get("packageType") == "Image":
        return []
    runtime = props.get("runtime")
    if runtime not in config["allowed"]:
        return [
            f"Lambda runtime {runtime!r} is not allowed; allowed: {', '.join(config['allowed'])}"
        ]
    return []


def _documents(type_: str, props: Props) -> list[Any]:
    if type_ in IAM_POLICY_TYPES:
        return [props.get("policy")]
    if type_ == "aws:iam/role:Role":
        return [inline.get("policy") for inline in props.get("inlinePolicies") or []]
    return []


def iam_no_admin(type_: str, props: Props, _config: Config) -> list[str]:
    problems = []
    for document in _documents(type_, props):
        for statement in policy_statements(document):
            actions = as_list(statement.get("Action"))
            if (
                statement.get("Effect") == "Allow"
                and {"*", "*:*"} & set(actions)
                and "*" in as_list(statement.get("Resource"))
            ):
                problems.append("IAM policies must not allow every action on every resource (*:*)")
    return problems


def iam_passrole(type_: str, props: Props, _config: Config) -> list[str]:
    problems = []
    for document in _documents(type_, props):
        for statement in policy_statements(document):
            if statement.get("Effect") != "Allow" or "*" not in as_list(statement.get("Resource")):
                continue
            actions = [str(action).lower() for action in as_list(statement.get("Action"))]
            if any(fnmatch.fnmatchcase("iam:passrole", action) for action in actions):
                problems.append("iam:PassRole must name the roles it passes, not Resource '*'")
    return problems


def route53_changes_scoped(type_: str, props: Props, _config: Config) -> list[str]:
    """Changing DNS records is changing where the stack's names lead: a policy that allows it
    names its hosted zones and the record names it may touch."""
    problems = []
    for document in _documents(type_, props):
        for statement in policy_statements(document):
            actions = [str(action).lower() for action in as_list(statement.get("Action"))]
            if statement.get("Effect") != "Allow" or not any(
                fnmatch.fnmatchcase("route53:changeresourcerecordsets", action)
                for action in actions
            ):
                continue
            if "*" in as_list(statement.get("Resource")):
                problems.append(
                    "route53:ChangeResourceRecordSets must name its hosted zones, not Resource '*'"
                )
            conditions = statement.get("Condition") or {}
            if not any(
                "route53:ChangeResourceRecordSetsNormalizedRecordNames" in keys
                for operator, keys in conditions.items()
                if operator.startswith("ForAllValues:")
            ):
                problems.append(
                    "route53:ChangeResourceRecordSets must limit the record names with "
                    "ForAllValues on route53:ChangeResourceRecordSetsNormalizedRecordNames"
                )
    return problems


def required_tags(type_: str, props: Props, config: Config) -> list[str]:
    tags = tags_of(props)
    if not taggable(type_) or tags is None:
        return []
    missing = [key for key in config["keys"] if not tags.get(key)]
    if missing:
        return [f"missing required tag(s): {', '.join(missing)}"]
    return []


def instance_types(type_: str, props: Props, config: Config) -> list[str]:
    if type_ not in (INSTANCE, LAUNCH_TEMPLATE):
        return []
    chosen = props.get("instanceType")
    if chosen is None:
        return []
    stage = stage_of(props, config)
    allowed = per_stage(config["allowed"], stage)
    if not any(fnmatch.fnmatchcase(chosen, pattern) for pattern in allowed):
        return [f"instance type {chosen} is not allowed in {stage}; allowed: {', '.join(allowed)}"]
    return []


SECRET_PATTERNS = {
    "an AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "a password assignment": re.compile(
        # A key named like a secret (not part of an ARN), then a literal value: placeholders
        # ($VAR, ${..}, <..>, {{..}}, @..@) and references (arn:..., /parameter/paths) are fine.
        r"(?i)(?:^|[\s\"'{,;?&])[\w-]*(password|passwd|secret|token|api[_-]?key)[\w-]*"
        r"\s*[:=]\s*['\"]?(?![$<{@%/])[A-Za-z0-9+/_\-!#^*]{12,}"
    ),
}


def _decoded(text: str) -> str:
    """User data as the instance sees it (launch templates carry it base64-encoded)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return text


def user_data_secrets(type_: str, props: Props, _config: Config) -> list[str]:
    if type_ not in (INSTANCE, LAUNCH_TEMPLATE):
        return []
    text = props.get("userData") or (
        base64.b64decode(props["userDataBase64"]).decode(errors="replace")
        if props.get("userDataBase64")
        else ""
    )
    if not isinstance(text, str):
        return []
    text = _decoded(text)
    return [
        f"user data contains what looks like {what}; read secrets at boot from a SecureString "
        "parameter"
        for what, pattern in SECRET_PATTERNS.items()
        if pattern.search(text)
    ]


def queue_encrypted(type_: str, props: Props, _config: Config) -> list[str]:
    if type_ == "aws:sqs/queue:Queue" and not (
        props.get("sqsManagedSseEnabled") or props.get("kmsMasterKeyId")
    ):
        return ["SQS queues must be encrypted (sqsManagedSseEnabled or kmsMasterKeyId)"]
    return []


PARAMETER = "aws:ssm/parameter:Parameter"
# Names that say a parameter holds a secret (any path segment).
SECRET_PARAMETER_NAME = re.compile(
    r"(?i)(password|passwd|secret|token|api[_-]?key|private[_-]?key|credential)"
)


def secret_parameters_encrypted(type_: str, props: Props, _config: Config) -> list[str]:
    """A parameter named like a secret, or whose value looks like one, is a SecureString: a
    String's value is readable by anyone allowed ssm:GetParameter, without KMS, and is shown
    in the console and in CloudTrail-adjacent tooling."""
    if type_ != PARAMETER or props.get("type") == "SecureString":
        return []
    name = str(props.get("name") or "")
    value = props.get("value")
    named = SECRET_PARAMETER_NAME.search(name)
    looks = isinstance(value, str) and any(p.search(value) for p in SECRET_PATTERNS.values())
    if not (named or looks):
        return []
    why = f"its name says {named.group(1)!r}" if named else "its value looks like a secret"
    return [f"parameter {name or '(unnamed)'} holds a secret ({why}): make it a SecureString"]


# -- stack checks --------------------------------------------------------------------------------


def _of_type(resources: Iterable[StackResource], type_: str) -> list[StackResource]:
    return [resource for resource in resources if resource.type == type_]


def _refers_to(value: Any, bucket: StackResource) -> bool:
    return value is not None and value in {
        bucket.props.get("id"),
        bucket.props.get("bucket"),
        bucket.urn,
    }


def s3_public_access_blocked(resources: list[StackResource], _config: Config) -> list[str]:
    blocks = _of_type(resources, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    problems = []
    for bucket in _of_type(resources, "aws:s3/bucket:Bucket"):
        mine = [b for b in blocks if _refers_to(b.props.get("bucket"), bucket)]
        if not any(all(b.props.get(flag) for flag in flags) for b in mine):
            problems.append(f"bucket {bucket.name} needs a public access block with all four flags")
    return problems


def s3_encrypted(resources: list[StackResource], _config: Config) -> list[str]:
    configs = _of_type(
        resources,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    )
    return [
        f"bucket {bucket.name} needs default encryption (a server-side encryption configuration)"
        for bucket in _of_type(resources, "aws:s3/bucket:Bucket")
        if not any(_refers_to(c.props.get("bucket"), bucket) for c in configs)
    ]


def https_redirect(resources: list[StackResource], _config: Config) -> list[str]:
    """With a certificate (an HTTPS listener), plain HTTP may only redirect to it."""
    listeners = _of_type(resources, "aws:lb/listener:Listener")
    if not any(listener.props.get("protocol") == "HTTPS" for listener in listeners):
        return []
    problems = []
    for listener in listeners:
        if listener.props.get("protocol") != "HTTP":
            continue
        actions = listener.props.get("defaultActions") or []
        redirects = [
            a for a in actions
            if a.get("type") == "redirect" and (a.get("redirect") or {}).get("protocol") == "HTTPS"
        ]  # fmt: skip
        if not redirects or len(redirects) != len(actions):
            problems.append(f"HTTP listener {listener.name} must redirect to HTTPS")
    return problems


def https_in_stages(resources: list[StackResource], config: Config) -> list[str]:
    """In prod every load balancer serves HTTPS: passwords, tokens and hook secrets cross it.
    (With an HTTPS listener, `alb-https-redirect` keeps plain HTTP to a redirect.)"""
    listeners = _of_type(resources, "aws:lb/listener:Listener")
    secure = [listener for listener in listeners if listener.props.get("protocol") == "HTTPS"]
    problems = []
    for balancer in _of_type(resources, "aws:lb/loadBalancer:LoadBalancer"):
        stage = stage_of(balancer.props, config)
        if stage not in config["stages"]:
            continue
        arn = balancer.props.get("arn")
        # Before apply (a preview) the ARNs are unknown: any HTTPS listener may be this one's.
        if not any(arn is None or h.props.get("loadBalancerArn") in (arn, None) for h in secure):
            problems.append(
                f"load balancer {balancer.name} in {stage} has no HTTPS listener; set "
                "streamr:domain with streamr:hostedZoneId or streamr:certificateArn"
            )
    return problems


def nat_gateways(resources: list[StackResource], config: Config) -> list[str]:
    gateways = _of_type(resources, "aws:ec2/natGateway:NatGateway")
    stages = {stage_of(g.props, config) for g in gateways}
    limit = config["maximumOutsideProd"]
    if gateways and stages != {"prod"} and len(gateways) > limit:
        return [f"{len(gateways)} NAT gateways outside prod; at most {limit} (each ~$35/month)"]
    return []


def monthly_budget(resources: list[StackResource], config: Config) -> list[str]:
    """The cost model's monthly estimate (on the stop schedule, when there is one) vs the budget."""
    from ops.cost import REFERENCE_WEEK, estimate
    from ops.schedule import Schedule

    tagged = [r for r in resources if (tags_of(r.props) or {}).get("Stage")]
    if not tagged:
        return []
    stage = stage_of(tagged[0].props, config)
    budget = per_stage(config["monthlyUsd"], stage)
    schedule = None
    for function in _of_type(resources, "aws:lambda/function:Function"):
        variables = (function.props.get("environment") or {}).get("variables") or {}
        if {"PAUSE_AT", "RESUME_AT", "WEEKDAYS", "TIMEZONE"} <= set(variables):
            schedule = Schedule.parse(
                variables["PAUSE_AT"], variables["RESUME_AT"], variables["WEEKDAYS"],
                variables["TIMEZONE"],
            )  # fmt: skip
    priced = estimate(
        [_Planned(r.type, r.name, r.props) for r in resources],
        config["region"],
        schedule,
        REFERENCE_WEEK,
    )
    if _holds_paused(resources):
        cost, how = priced.total("deep_paused"), "deep-paused"
    elif schedule is not None:
        cost, how = priced.total("scheduled"), "on its stop schedule"
    else:
        cost, how = priced.total("running"), "running"
    problems = [
        f"cannot price {item.name} ({item.type}: {item.note}); add it to ops/prices.py"
        for item in priced.unpriced
    ]
    if cost > budget:
        problems.append(
            f"estimated {cost:.2f} USD/month ({how}) exceeds the {stage} budget of {budget:.2f}"
        )
    return problems


def _holds_paused(resources: list[StackResource]) -> bool:
    """A deep pause shows as a recurring schedule asking for `pause` (pause_schedule.py)."""
    for schedule in _of_type(resources, "aws:scheduler/schedule:Schedule"):
        target = schedule.props.get("target") or {}
        try:
            action = json.loads(target.get("input") or "{}").get("action")
        except ValueError:
            continue
        if action == "pause" and str(schedule.props.get("scheduleExpression")).startswith("rate("):
            return True
    return False


@dataclass(frozen=True)
class _Planned:
    type: str
    name: str
    inputs: Props


# -- the rule table ------------------------------------------------------------------------------

SENSITIVE_PORTS = [22, 3389, 5432, 6379, 1985, 9090]
INSTANCE_TYPES = {
    "dev": ["t4g.nano", "t4g.micro", "t4g.small", "t4g.medium"],
    "prod": ["t4g.*", "m7g.*", "c7g.*", "m8g.*", "c8g.*"],
}


def _number_per_stage(description: str, default: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "object", "description": description, "default": dict(default)}


RULES: list[Rule] = [
    Rule("rds-storage-encrypted", "RDS storage is encrypted", rds_encrypted),
    Rule("rds-not-public", "RDS instances are not publicly accessible", rds_private),
    Rule("rds-backup-retention", "RDS keeps backups long enough for the stage", rds_backups,
         schema={"minimumDays": _number_per_stage("days per stage", {"dev": 1, "prod": 14})}),
    Rule("rds-prod-resilience", "Production RDS is Multi-AZ, deletion-protected, snapshotted",
         rds_prod_resilience,
         schema={"stages": {"type": "array", "items": {"type": "string"}, "default": ["prod"]}}),
    Rule("rds-force-tls", "PostgreSQL parameter groups force TLS", rds_tls),
    Rule("elasticache-encrypted", "ElastiCache encrypts in transit and at rest and needs auth",
         cache_encrypted),
    Rule("no-world-ingress-to-sensitive-ports",
         "No ingress from 0.0.0.0/0 or ::/0 to SSH, RDP, databases, caches or admin APIs",
         world_ingress,
         schema={"ports": {"type": "array", "items": {"type": "integer"},
                           "default": SENSITIVE_PORTS}}),
    Rule("imdsv2-required", "Instances and launch templates require IMDSv2", imdsv2),
    Rule("volumes-encrypted", "EBS, instance and launch-template volumes are encrypted",
         volumes_encrypted),
    Rule("alb-drop-invalid-headers", "Load balancers drop invalid HTTP headers",
         load_balancer_headers),
    Rule("ecr-scan-on-push", "ECR scans images on push", ecr_scanning),
    Rule("ecr-immutable-tags", "ECR image tags are immutable", ecr_immutable),
    Rule("log-group-retention", "Log groups have a bounded retention", log_retention,
         schema={"maximumDays": {"type": "integer", "default": 731}}),
    Rule("lambda-runtime-allowed", "Lambda runtimes come from the allowed list", lambda_runtime,
         schema={"allowed": {"type": "array", "items": {"type": "string"},
                             "default": ["python3.12", "python3.13"]}}),
    Rule("iam-no-admin", "No IAM policy allows *:* on *", iam_no_admin),
    Rule("iam-no-passrole-on-star", "iam:PassRole names its roles", iam_passrole),
    Rule("route53-changes-scoped",
         "Route 53 record changes name their zones and the record names they may touch",
         route53_changes_scoped),
    Rule("required-tags", "Taggable resources carry the stack tags", required_tags,
         schema={"keys": {"type": "array", "items": {"type": "string"},
                          "default": ["Project", "Stage", "ManagedBy"]}}),
    Rule("instance-types-allowed", "Instance types are allowed for the stage", instance_types,
         schema={"allowed": _number_per_stage("glob patterns per stage", INSTANCE_TYPES)}),
    Rule("no-secrets-in-user-data", "User data holds no passwords or keys", user_data_secrets),
    Rule("sqs-encrypted", "SQS queues are encrypted", queue_encrypted),
    Rule("secret-parameters-encrypted", "SSM parameters holding secrets are SecureStrings",
         secret_parameters_encrypted),
    Rule("s3-public-access-blocked", "Every bucket blocks public access", s3_public_access_blocked,
         stack=True),
    Rule("s3-encrypted", "Every bucket has default encryption", s3_encrypted, stack=True),
    Rule("alb-https-redirect", "With a certificate, HTTP only redirects to HTTPS", https_redirect,
         stack=True),
    Rule("alb-https-in-prod", "Load balancers in prod serve HTTPS", https_in_stages,
         stack=True,
         schema={"stages": {"type": "array", "items": {"type": "string"}, "default": ["prod"]}}),
    Rule("nat-gateways-outside-prod", "At most one NAT gateway outside prod", nat_gateways,
         stack=True, schema={"maximumOutsideProd": {"type": "integer", "default": 1}}),
    Rule("monthly-budget", "The estimated monthly cost stays within the stage's budget",
         monthly_budget, stack=True,
         schema={"monthlyUsd": _number_per_stage("USD per stage", {"dev": 90, "prod": 300}),
                 "region": {"type": "string", "default": "eu-west-1"}}),
]  # fmt: skip


# -- CrossGuard ----------------------------------------------------------------------------------


def _config(rule: Rule, given: Mapping[str, Any]) -> dict[str, Any]:
    return {**rule.defaults(), **{k: v for k, v in given.items() if k != "enforcementLevel"}}


def _resource_validator(rule: Rule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        for message in rule.check(args.resource_type, args.props, _config(rule, args.get_config())):
            report(message, None)

    return validate


def _stack_validator(rule: Rule) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        resources = [StackResource(r.resource_type, r.name, r.urn, r.props) for r in args.resources]
        for message in rule.check(resources, _config(rule, args.get_config())):
            report(message, None)

    return validate


def policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    built: list[ResourceValidationPolicy | StackValidationPolicy] = []
    for rule in RULES:
        schema = PolicyConfigSchema(dict(rule.schema)) if rule.schema else None
        if rule.stack:
            built.append(StackValidationPolicy(
                rule.name, rule.description, _stack_validator(rule), rule.enforcement, schema
            ))  # fmt: skip
        else:
            built.append(ResourceValidationPolicy(
                rule.name, rule.description, _resource_validator(rule), rule.enforcement, schema
            ))  # fmt: skip
    return built

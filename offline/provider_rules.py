"""The naming rules the AWS provider and AWS itself enforce, checked before anything is created.

Pulumi mocks accept any name; `pulumi preview` does not. pulumi-aws auto-names a resource as its
logical name, a hyphen and 7 random characters (tfbridge.AutoName, `provider/autonaming.go`),
and refuses a name that will not fit ("... plus 7 random chars is longer than maximum length 32",
the target group's limit in `provider/aliases.go`); the Terraform provider's validators and
AWS's APIs refuse the others. The limits below are AWS's documented ones for each type this
program creates; a type that names a resource and is missing here stops the harness, so a new
resource type cannot slip past the check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from offline.sdk_schema import accepts_property

# tfbridge.AutoName: "<logical name>-<7 random characters>".
RANDOM_SUFFIX_LENGTH = 7
AUTO_NAME_SEPARATOR = "-"

_ALNUM_HYPHEN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_LOWER_ALNUM_HYPHEN = r"[a-z](?:[a-z0-9-]*[a-z0-9])?"
# Labels of up to 63 characters (a leading `_` or `*` as validation and wildcard records use).
_DNS_NAME = r"(?:[A-Za-z0-9_*](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_-]{1,63}\.?"


@dataclass(frozen=True)
class NameRule:
    """The input holding a type's physical name, its longest allowed value and its alphabet."""

    property: str  # the wire (camelCase) name of the input
    max_length: int
    pattern: str | None = None  # a full match AWS requires, None when it allows printable text
    # Pulumi fills the name in (logical name + suffix) when the program gives none.
    auto_named: bool = True
    # Auto-names are lower-cased (buckets, databases, caches accept no capitals).
    lowercase: bool = False


NAME_RULES: dict[str, NameRule] = {
    "aws:autoscaling/group:Group": NameRule("name", 255),
    "aws:cloudwatch/eventRule:EventRule": NameRule("name", 64, r"[.\-_A-Za-z0-9]+"),
    "aws:cloudwatch/dashboard:Dashboard": NameRule(
        "dashboardName", 255, r"[A-Za-z0-9_-]+", auto_named=False
    ),
    "aws:cloudwatch/logGroup:LogGroup": NameRule("name", 512, r"[\w./#-]+"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": NameRule("name", 255),
    "aws:ec2/launchTemplate:LaunchTemplate": NameRule("name", 128, r"[A-Za-z0-9().\-/_]+"),
    "aws:ec2/securityGroup:SecurityGroup": NameRule("name", 255),
    "aws:ecr/repository:Repository": NameRule(
        "name", 256, r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    ),
    "aws:elasticache/replicationGroup:ReplicationGroup": NameRule(
        "replicationGroupId", 40, _LOWER_ALNUM_HYPHEN, lowercase=True
    ),
    "aws:elasticache/subnetGroup:SubnetGroup": NameRule("name", 255, lowercase=True),
    "aws:iam/instanceProfile:InstanceProfile": NameRule("name", 128, r"[\w+=,.@-]+"),
    "aws:iam/policy:Policy": NameRule("name", 128, r"[\w+=,.@-]+"),
    "aws:iam/role:Role": NameRule("name", 64, r"[\w+=,.@-]+"),
    "aws:iam/rolePolicy:RolePolicy": NameRule("name", 128, r"[\w+=,.@-]+"),
    "aws:lambda/function:Function": NameRule("name", 64, r"[A-Za-z0-9_-]+"),
    "aws:lb/loadBalancer:LoadBalancer": NameRule("name", 32, _ALNUM_HYPHEN),
    "aws:lb/targetGroup:TargetGroup": NameRule("name", 32, _ALNUM_HYPHEN),
    "aws:rds/instance:Instance": NameRule("identifier", 63, _LOWER_ALNUM_HYPHEN, lowercase=True),
    "aws:rds/parameterGroup:ParameterGroup": NameRule(
        "name", 255, _LOWER_ALNUM_HYPHEN, lowercase=True
    ),
    "aws:rds/subnetGroup:SubnetGroup": NameRule("name", 255, r"[a-z0-9 ._-]+", lowercase=True),
    # A record's DNS name: 255 characters with the final dot (RFC 1035 via Route 53), given.
    "aws:route53/record:Record": NameRule("name", 254, _DNS_NAME, auto_named=False),
    "aws:s3/bucket:Bucket": NameRule(
        "bucket", 63, r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?", lowercase=True
    ),
    "aws:scheduler/schedule:Schedule": NameRule("name", 64, r"[0-9A-Za-z_.-]+"),
    "aws:scheduler/scheduleGroup:ScheduleGroup": NameRule("name", 64, r"[0-9A-Za-z_.-]+"),
    "aws:secretsmanager/secret:Secret": NameRule("name", 512, r"[A-Za-z0-9/_+=.@-]+"),
    "aws:sns/topic:Topic": NameRule("name", 256, r"[A-Za-z0-9_-]+"),
    "aws:sqs/queue:Queue": NameRule("name", 80, r"[A-Za-z0-9_-]+"),
    # The name's own limits (with the ARN before it, its depth): parameter_problems.
    "aws:ssm/parameter:Parameter": NameRule(
        "name", 1011, r"/?[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*"
    ),
}

# SDK inputs whose presence means "this type gives its resource a name of its own".
_NAMING_INPUTS = ("name", "name_prefix", "bucket_prefix", "identifier_prefix")


class MissingNameRule(Exception):
    """A resource type names its resources and this module does not know the rule for it."""


def auto_name(rule: NameRule, logical_name: str, suffix: str) -> str:
    """The name Pulumi gives a resource the program did not name."""
    name = f"{logical_name}{AUTO_NAME_SEPARATOR}{suffix}"
    return name.lower() if rule.lowercase else name


def name_problems(type_: str, logical_name: str, inputs: dict[str, Any]) -> list[str]:
    """Why the provider or AWS would refuse this resource's name; empty when it is fine."""
    rule = NAME_RULES.get(type_)
    if rule is None:
        if _names_its_resources(type_):
            raise MissingNameRule(
                f"no naming rule for {type_} (resource {logical_name!r}); add AWS's limit for it "
                "to NAME_RULES in offline/provider_rules.py"
            )
        return []
    given = inputs.get(rule.property)
    if given is None or given == "":
        if not rule.auto_named:
            return []  # required input: the SDK has refused its absence already
        longest = len(logical_name) + len(AUTO_NAME_SEPARATOR) + RANDOM_SUFFIX_LENGTH
        if longest > rule.max_length:
            return [
                f"{type_} resource {logical_name!r}: {rule.property} {logical_name!r} plus "
                f"{RANDOM_SUFFIX_LENGTH} random chars is longer than maximum length "
                f"{rule.max_length}"
            ]
        sample = auto_name(rule, logical_name, "a" * RANDOM_SUFFIX_LENGTH)
        return _alphabet_problems(type_, logical_name, rule, sample)
    if not isinstance(given, str):
        return []  # unknown until apply (an output of another resource)
    if len(given) > rule.max_length:
        return [
            f"{type_} resource {logical_name!r}: {rule.property} {given!r} is {len(given)} "
            f"characters, longer than maximum length {rule.max_length}"
        ]
    return _alphabet_problems(type_, logical_name, rule, given)


def _alphabet_problems(type_: str, logical_name: str, rule: NameRule, name: str) -> list[str]:
    if rule.pattern is None or re.fullmatch(rule.pattern, name):
        return []
    return [
        f"{type_} resource {logical_name!r}: {rule.property} {name!r} does not match "
        f"{rule.pattern} (the characters AWS allows)"
    ]


def _names_its_resources(type_: str) -> bool:
    if not type_.startswith("aws:"):
        return False
    return any(accepts_property(type_, python_name) for python_name in _NAMING_INPUTS)


# SSM parameters, as Parameter Store refuses them (PutParameter's naming constraints and the
# "Parameter Store quotas" page of the AWS General Reference): at most 1011 characters including
# the ARN before the name (`arn:aws:ssm:<region>:<account>:parameter/`), at most 15 levels of
# hierarchy, no first level starting with `aws` or `ssm` (AWS's own), and a value of at most
# 4 KB in the standard tier (8 KB advanced).
PARAMETER = "aws:ssm/parameter:Parameter"
PARAMETER_NAME_WITH_ARN_MAX_LENGTH = 1011
PARAMETER_MAX_DEPTH = 15
PARAMETER_VALUE_MAX_BYTES = {"Standard": 4096, "Advanced": 8192}
_RESERVED_PARAMETER_PREFIXES = ("aws", "ssm")


def parameter_problems(logical_name: str, inputs: dict[str, Any], region: str) -> list[str]:
    """Why Parameter Store would refuse this parameter's name or value; empty when it is fine.
    The alphabet is NAME_RULES' (checked with every name)."""
    where = f"{PARAMETER} resource {logical_name!r}"
    found: list[str] = []
    name = inputs.get("name")
    if isinstance(name, str) and name:
        # Account ids are 12 digits; the name's leading slash is the ARN's separator.
        arn_prefix = f"arn:aws:ssm:{region}:{'0' * 12}:parameter/"
        length = len(arn_prefix) + len(name.removeprefix("/"))
        if length > PARAMETER_NAME_WITH_ARN_MAX_LENGTH:
            found.append(
                f"{where}: name is {length} characters with its ARN, longer than maximum "
                f"length {PARAMETER_NAME_WITH_ARN_MAX_LENGTH}"
            )
        levels = name.strip("/").split("/")
        if len(levels) > PARAMETER_MAX_DEPTH:
            found.append(
                f"{where}: name {name[:40]!r}... has {len(levels)} levels, more than the "
                f"{PARAMETER_MAX_DEPTH} a hierarchy may have"
            )
        if levels[0].lower().startswith(_RESERVED_PARAMETER_PREFIXES):
            found.append(f"{where}: name {name!r} starts with a prefix AWS reserves (aws, ssm)")
    tier = str(inputs.get("tier") or "Standard")
    value = inputs.get("value")
    limit = PARAMETER_VALUE_MAX_BYTES.get(tier)
    if isinstance(value, str) and limit is not None and len(value.encode()) > limit:
        found.append(
            f"{where}: value is {len(value.encode())} bytes, more than the {limit} a {tier} "
            "parameter may hold"
        )
    return found


# ALB listener rules, as Elastic Load Balancing refuses them (its quotas for Application Load
# Balancers, and RuleCondition / PathPatternConditionConfig in its API reference): a priority of
# 1-50000 that no other rule on the same listener has, at most 5 condition values and 5 wildcards
# in one rule, and path patterns of at most 128 characters from the set AWS documents.
LISTENER_RULE = "aws:lb/listenerRule:ListenerRule"
PRIORITIES = range(1, 50_001)
CONDITION_VALUES_PER_RULE = 5
WILDCARDS_PER_RULE = 5
PATH_PATTERN_MAX_LENGTH = 128
_PATH_PATTERN = re.compile(r"[A-Za-z0-9_.$/~\"'@:+&*?-]+")
# Conditions holding a list of values (wire names); query strings are key/value pairs instead.
_VALUE_CONDITIONS = ("hostHeader", "httpHeader", "httpRequestMethod", "pathPattern", "sourceIp")


class ListenerRules:
    """Checks each listener rule as it registers, remembering the priorities already taken."""

    def __init__(self) -> None:
        self.taken: dict[tuple[str, int], str] = {}  # (listener ARN, priority) -> logical name

    def problems(self, logical_name: str, inputs: dict[str, Any]) -> list[str]:
        where = f"{LISTENER_RULE} resource {logical_name!r}"
        found = self._priority_problems(where, logical_name, inputs)
        values: list[str] = []  # everything the conditions compare with
        counted = 0  # a query string's key and value count as one
        for condition in inputs.get("conditions") or []:
            for kind in _VALUE_CONDITIONS:
                listed = (condition.get(kind) or {}).get("values") or []
                counted += len(listed)
                values += listed
            for pair in condition.get("queryStrings") or []:
                counted += 1
                values += [pair.get("key") or "", pair.get("value") or ""]
            for pattern in (condition.get("pathPattern") or {}).get("values") or []:
                found += _path_pattern_problems(where, pattern)
        if counted > CONDITION_VALUES_PER_RULE:
            found.append(
                f"{where}: {counted} condition values, more than the {CONDITION_VALUES_PER_RULE} "
                "a rule may have"
            )
        wildcards = sum(value.count("*") + value.count("?") for value in values)
        if wildcards > WILDCARDS_PER_RULE:
            found.append(
                f"{where}: {wildcards} wildcards, more than the {WILDCARDS_PER_RULE} a rule "
                "may have"
            )
        return found

    def _priority_problems(
        self, where: str, logical_name: str, inputs: dict[str, Any]
    ) -> list[str]:
        given, listener = inputs.get("priority"), inputs.get("listenerArn")
        if given is None:
            return []  # AWS gives the next free one
        priority = int(given)  # the wire carries numbers as doubles
        if priority not in PRIORITIES:
            return [f"{where}: priority {priority} is outside 1..50000"]
        if not isinstance(listener, str) or not listener.startswith("arn:"):
            return []  # unknown until apply (preview)
        other = self.taken.setdefault((listener, priority), logical_name)
        if other != logical_name:
            return [f"{where}: priority {priority} is taken on its listener by {other!r}"]
        return []


def _path_pattern_problems(where: str, pattern: str) -> list[str]:
    if len(pattern) > PATH_PATTERN_MAX_LENGTH:
        return [
            f"{where}: path pattern {pattern[:40]!r}... is {len(pattern)} characters, longer "
            f"than maximum length {PATH_PATTERN_MAX_LENGTH}"
        ]
    if not _PATH_PATTERN.fullmatch(pattern):
        return [
            f"{where}: path pattern {pattern!r} does not match {_PATH_PATTERN.pattern} "
            "(the characters AWS allows)"
        ]
    return []

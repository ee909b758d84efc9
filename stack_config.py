"""Typed, validated stack configuration: the one place that reads `pulumi.Config`.

Every value the program uses comes from here, checked before any resource registers, so a typo in
`stacks/Pulumi.<stack>.yaml` fails `pulumi preview` with one message naming the key and the allowed
values instead of half-creating a platform.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import time
from typing import Any, Literal

import pulumi

PROJECT = "streamr"
NAMESPACE = PROJECT

Stage = Literal["dev", "prod"]
NatStrategy = Literal["none", "instance", "gateway"]
CacheEngine = Literal["valkey", "redis"]

STAGES: tuple[Stage, ...] = ("dev", "prod")
NAT_STRATEGIES: tuple[NatStrategy, ...] = ("none", "instance", "gateway")
CACHE_ENGINES: tuple[CacheEngine, ...] = ("valkey", "redis")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Commercial regions that offer every service the platform uses on Graviton (t4g/m7g/c7g EC2,
# db.t4g RDS, cache.t4g ElastiCache with Valkey).
REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
)

# Per-stage allow-lists keep dev cheap and keep every host on Graviton.
INSTANCE_TYPES: Mapping[Stage, tuple[str, ...]] = {
    "dev": ("t4g.nano", "t4g.micro", "t4g.small", "t4g.medium"),
    "prod": (
        "t4g.nano",
        "t4g.micro",
        "t4g.small",
        "t4g.medium",
        "t4g.large",
        "t4g.xlarge",
        "m7g.medium",
        "m7g.large",
        "m7g.xlarge",
        "c7g.medium",
        "c7g.large",
        "c7g.xlarge",
        "c7g.2xlarge",
    ),
}
DB_INSTANCE_CLASSES: Mapping[Stage, tuple[str, ...]] = {
    "dev": ("db.t4g.micro", "db.t4g.small", "db.t4g.medium"),
    "prod": (
        "db.t4g.small",
        "db.t4g.medium",
        "db.t4g.large",
        "db.m7g.large",
        "db.m7g.xlarge",
        "db.r7g.large",
        "db.r7g.xlarge",
    ),
}
CACHE_NODE_TYPES: Mapping[Stage, tuple[str, ...]] = {
    "dev": ("cache.t4g.micro", "cache.t4g.small"),
    "prod": (
        "cache.t4g.micro",
        "cache.t4g.small",
        "cache.t4g.medium",
        "cache.m7g.large",
        "cache.r7g.large",
    ),
}
DB_ENGINE_MAJORS = (16, 17)
# The cache engine version follows the engine; there is one supported choice per engine.
CACHE_ENGINE_VERSIONS: Mapping[CacheEngine, str] = {"valkey": "8.0", "redis": "7.1"}
PROD_MIN_BACKUP_DAYS = 14

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([A-Za-z0-9-]+\.)+[A-Za-z]{2,63}$")
_CERTIFICATE_ARN = re.compile(r"^arn:aws:acm:([a-z0-9-]+):\d{12}:certificate/[0-9a-f-]{36}$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_ENGINE_VERSION = re.compile(r"^(\d+)(\.\d+)?$")
_CLOCK_DESCRIPTION = "a time HH:MM (24-hour)"
_GITHUB_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_OIDC_PROVIDER_ARN = re.compile(
    r"^arn:aws:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$"
)
_BUCKET = re.compile(r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_KMS_KEY_ARN = re.compile(r"^arn:aws:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")


class StackConfigError(pulumi.RunError):
    """Stack configuration is invalid; the message names every bad key and its allowed values.

    A `RunError`, so `pulumi up` prints the message alone instead of a Python traceback.
    """

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        if len(problems) == 1:
            message = problems[0]
        else:
            message = f"{len(problems)} problems in the stack configuration:\n" + "\n".join(
                f"  - {problem}" for problem in problems
            )
        super().__init__(message)


@dataclass(frozen=True)
class InstanceTypes:
    """EC2 instance types per host role (all Graviton)."""

    coordinator: str
    headscale: str
    srs: str
    nat: str


@dataclass(frozen=True)
class NetworkSettings:
    vpc_cidr: str
    az_count: int
    nat_strategy: NatStrategy
    flow_logs: bool


@dataclass(frozen=True)
class DatabaseSettings:
    instance_class: str
    allocated_storage_gb: int
    engine_version: str
    backup_retention_days: int
    multi_az: bool
    deletion_protection: bool
    final_snapshot: bool
    performance_insights: bool

    @property
    def engine_major(self) -> int:
        return int(self.engine_version.split(".")[0])


@dataclass(frozen=True)
class CacheSettings:
    engine: CacheEngine
    node_type: str
    nodes: int

    @property
    def engine_version(self) -> str:
        return CACHE_ENGINE_VERSIONS[self.engine]


@dataclass(frozen=True)
class CoordinatorSettings:
    """The coordinator's auto scaling group sizes and server processes per instance."""

    min_size: int
    max_size: int
    desired_capacity: int
    web_concurrency: int
    # An ACM certificate for `domain` in the stack's region: HTTPS on the load balancer.
    certificate_arn: str | None


@dataclass(frozen=True)
class PauseSchedule:
    """Nightly stop window, in the operator's timezone."""

    pause_at: time
    resume_at: time
    weekdays: tuple[str, ...]
    timezone: str


@dataclass(frozen=True)
class GithubSettings:
    """GitHub Actions' OIDC roles (components/github_oidc.py) and the state backend they use."""

    repository: str  # owner/name
    provider_arn: str | None  # the account's existing GitHub OIDC provider, if any
    state_bucket: str  # the S3 state backend (backend/)
    secrets_key_arn: str  # the KMS key of the secrets provider


@dataclass(frozen=True)
class StackConfig:
    stage: Stage
    region: str
    network: NetworkSettings
    instance_types: InstanceTypes
    database: DatabaseSettings
    cache: CacheSettings
    coordinator: CoordinatorSettings
    domain: str | None
    paused: bool
    alert_email: str | None
    pause_schedule: PauseSchedule | None
    monthly_budget_usd: float
    github: GithubSettings | None = None

    @property
    def prefix(self) -> str:
        """Prefix of every resource name, so dev and prod can share an account readably."""
        return f"{PROJECT}-{self.stage}"

    @property
    def tags(self) -> dict[str, str]:
        """Tags every taggable resource carries (components add a `Name`)."""
        return {"Project": PROJECT, "Stage": self.stage, "ManagedBy": "pulumi"}

    @property
    def effective_nat_strategy(self) -> NatStrategy:
        """A deep pause leaves out NAT: a gateway bills by the hour and cannot be stopped, and
        with the coordinator at zero nothing in the private subnets needs the internet (a NAT
        instance would still cost its disk).
        """
        if self.paused:
            return "none"
        return self.network.nat_strategy

    @property
    def load_balancer_enabled(self) -> bool:
        """A deep pause leaves out the load balancer too: it bills by the hour and cannot stop."""
        return not self.paused

    @property
    def cache_enabled(self) -> bool:
        """A deep pause leaves out the cache: it cannot stop, and holds only rebuildable state."""
        return not self.paused

    @classmethod
    def load(cls) -> StackConfig:
        """Build from the running Pulumi program's stack configuration."""
        config = pulumi.Config(NAMESPACE)
        present = {
            key.split(":", 1)[1] for key in _all_config_keys() if key.startswith(f"{NAMESPACE}:")
        }
        values = {key: config.get(key) for key in _KEYS | present}
        values = {key: value for key, value in values.items() if value is not None}
        return cls.from_mapping(values, region=pulumi.Config("aws").get("region"))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], region: str | None) -> StackConfig:
        """Build from plain values keyed by the `streamr:` config key without its namespace.

        Values may be typed (`2`, `True`, `["mon"]`) or the strings Pulumi hands a program
        (`"2"`, `"true"`, `'["mon"]'`).
        """
        return _Parser(values, region).parse()


def _all_config_keys() -> set[str]:
    # pulumi.Config reads single keys only; the runtime's config map is the way to list them.
    return set(pulumi.runtime.get_config_env()) | set(pulumi.runtime.config.CONFIG.get())


def key_name(key: str) -> str:
    return f"{NAMESPACE}:{key}"


class _Parser:
    """Collects every problem rather than stopping at the first, so one run shows them all."""

    def __init__(self, values: Mapping[str, Any], region: str | None):
        self.values = dict(values)
        self.region = region
        self.problems: list[str] = []

    def parse(self) -> StackConfig:
        unknown = sorted(key for key in self.values if key not in _KEYS)
        for key in unknown:
            self.problems.append(_unknown_key_message(key))
        stage = self._stage()
        dev = stage == "dev"
        region = self._region()
        network = NetworkSettings(
            vpc_cidr=self._vpc_cidr(),
            az_count=self._int("azCount", 2, 2, 3),
            nat_strategy=self._choice(
                "natStrategy", "instance" if dev else "gateway", NAT_STRATEGIES
            ),
            flow_logs=self._bool("flowLogs", not dev),
        )
        instance_types = InstanceTypes(
            coordinator=self._choice(
                "coordinatorInstanceType",
                "t4g.micro" if dev else "t4g.small",
                INSTANCE_TYPES[stage],
            ),
            headscale=self._choice(
                "headscaleInstanceType", "t4g.micro" if dev else "t4g.small", INSTANCE_TYPES[stage]
            ),
            srs=self._choice(
                "srsInstanceType", "t4g.small" if dev else "c7g.medium", INSTANCE_TYPES[stage]
            ),
            nat=self._choice("natInstanceType", "t4g.nano", INSTANCE_TYPES[stage]),
        )
        database = DatabaseSettings(
            instance_class=self._choice(
                "dbInstanceClass",
                "db.t4g.micro" if dev else "db.t4g.small",
                DB_INSTANCE_CLASSES[stage],
            ),
            allocated_storage_gb=self._int("dbAllocatedStorageGb", 20, 20, 1024),
            engine_version=self._engine_version(),
            backup_retention_days=self._int(
                "dbBackupRetentionDays",
                1 if dev else PROD_MIN_BACKUP_DAYS,
                0 if dev else PROD_MIN_BACKUP_DAYS,
                35,
            ),
            multi_az=self._bool("dbMultiAz", not dev),
            deletion_protection=self._bool("dbDeletionProtection", not dev),
            final_snapshot=self._bool("dbFinalSnapshot", not dev),
            # Off by default: AWS retires the Performance Insights console in 2026.
            performance_insights=self._bool("dbPerformanceInsights", False),
        )
        cache = CacheSettings(
            engine=self._choice("cacheEngine", "valkey", CACHE_ENGINES),
            node_type=self._choice(
                "cacheNodeType",
                "cache.t4g.micro" if dev else "cache.t4g.small",
                CACHE_NODE_TYPES[stage],
            ),
            nodes=self._int("cacheNodes", 1 if dev else 2, 1, 3),
        )
        domain = self._pattern("domain", _HOSTNAME, "a lower-case DNS name like stream.example.com")
        config = StackConfig(
            stage=stage,
            region=region,
            network=network,
            instance_types=instance_types,
            database=database,
            cache=cache,
            coordinator=self._coordinator(dev, region, domain),
            domain=domain,
            paused=self._bool("paused", False),
            alert_email=self._pattern(
                "alertEmail", _EMAIL, "an e-mail address like ops@example.com"
            ),
            pause_schedule=self._pause_schedule(dev),
            monthly_budget_usd=self._number("monthlyBudgetUsd", 90.0 if dev else 300.0, 1, 100_000),
            github=self._github(),
        )
        if self.problems:
            raise StackConfigError(self.problems)
        return config

    # -- single keys -------------------------------------------------------------------------

    def _stage(self) -> Stage:
        raw = self.values.get("stage")
        if raw is None:
            raise StackConfigError([f"{key_name('stage')} is required; allowed values: dev, prod"])
        if raw not in STAGES:
            # Everything else depends on the stage, so a bad stage is the only useful error.
            raise StackConfigError([_rejected("stage", raw, ", ".join(STAGES))])
        return raw

    def _region(self) -> str:
        allowed = ", ".join(REGIONS)
        if self.region is None:
            self.problems.append(
                "aws:region is required (the AWS provider reads it too, so both must agree); "
                f"allowed values: {allowed}"
            )
            return REGIONS[0]
        if self.region not in REGIONS:
            self.problems.append(
                f"aws:region: {self.region!r} is not allowed; allowed values: {allowed}"
            )
        return self.region

    def _choice(self, key: str, default: str, allowed: tuple[str, ...]) -> Any:
        raw = self.values.get(key, default)
        if raw not in allowed:
            self.problems.append(_rejected(key, raw, ", ".join(allowed)))
            return default
        return raw

    def _bool(self, key: str, default: bool) -> bool:
        raw = self.values.get(key, default)
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        self.problems.append(_rejected(key, raw, "true, false"))
        return default

    def _int(self, key: str, default: int, low: int, high: int) -> int:
        raw = self.values.get(key, default)
        value = _coerce(raw, int)
        if value is None or not low <= value <= high:
            self.problems.append(_rejected(key, raw, f"{low}..{high}"))
            return default
        return value

    def _number(self, key: str, default: float, low: float, high: float) -> float:
        raw = self.values.get(key, default)
        value = _coerce(raw, float)
        if value is None or not low <= value <= high:
            self.problems.append(_rejected(key, raw, f"a number from {low:g} to {high:g}"))
            return default
        return value

    def _pattern(self, key: str, pattern: re.Pattern[str], description: str) -> str | None:
        raw = self.values.get(key)
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str) or not pattern.match(raw):
            self.problems.append(_rejected(key, raw, description))
            return None
        return raw

    def _vpc_cidr(self) -> str:
        raw = self.values.get("vpcCidr", "10.0.0.0/16")
        try:
            network = ipaddress.IPv4Network(raw)
        except (ValueError, TypeError):
            network = None
        if network is None or not network.is_private or not 16 <= network.prefixlen <= 18:
            self.problems.append(
                _rejected("vpcCidr", raw, "a private IPv4 network (RFC 1918), prefix /16 to /18")
            )
            return "10.0.0.0/16"
        return str(network)

    def _engine_version(self) -> str:
        raw = self.values.get("dbEngineVersion", str(DB_ENGINE_MAJORS[0]))
        match = _ENGINE_VERSION.match(str(raw))
        if match is None or int(match.group(1)) not in DB_ENGINE_MAJORS:
            majors = ", ".join(str(major) for major in DB_ENGINE_MAJORS)
            self.problems.append(
                _rejected(
                    "dbEngineVersion", raw, f"PostgreSQL {majors} as 'major' or 'major.minor'"
                )
            )
            return str(DB_ENGINE_MAJORS[0])
        return str(raw)

    def _coordinator(self, dev: bool, region: str, domain: str | None) -> CoordinatorSettings:
        min_size = self._int("coordinatorMinSize", 1 if dev else 2, 0, 20)
        max_size = self._int("coordinatorMaxSize", 2 if dev else 4, 1, 20)
        desired = self._int("coordinatorDesiredCapacity", min_size, 0, 20)
        if not min_size <= desired <= max_size:
            self.problems.append(
                f"{key_name('coordinatorDesiredCapacity')}: {desired} is not allowed; allowed "
                f"values: from {key_name('coordinatorMinSize')} ({min_size}) to "
                f"{key_name('coordinatorMaxSize')} ({max_size})"
            )
        certificate = self._pattern(
            "certificateArn",
            _CERTIFICATE_ARN,
            "an ACM certificate ARN like arn:aws:acm:<region>:<account>:certificate/<uuid>",
        )
        if certificate is not None and domain is None:
            self.problems.append(
                f"{key_name('certificateArn')} needs {key_name('domain')}, the name it was "
                "issued for; allowed values: set both or neither"
            )
            certificate = None
        if certificate is not None and certificate.split(":")[3] != region:
            self.problems.append(
                _rejected(
                    "certificateArn", certificate, f"a certificate in {region}, the ALB's region"
                )
            )
            certificate = None
        return CoordinatorSettings(
            min_size=min_size,
            max_size=max_size,
            desired_capacity=desired,
            web_concurrency=self._int("coordinatorWebConcurrency", 2, 1, 16),
            certificate_arn=certificate,
        )

    def _pause_schedule(self, dev: bool) -> PauseSchedule | None:
        # Weekdays and timezone are checked even without a schedule: a typo there is still a typo.
        weekdays = self._weekdays()
        timezone = self._timezone()
        pause_raw = self.values.get("pauseAt", "23:00" if dev else "")
        resume_raw = self.values.get("resumeAt", "07:00" if dev else "")
        if pause_raw == "" and resume_raw == "":
            return None
        if pause_raw == "" or resume_raw == "":
            missing = "pauseAt" if pause_raw == "" else "resumeAt"
            self.problems.append(
                f"{key_name(missing)} is required when a pause schedule is set; "
                f"allowed values: {_CLOCK_DESCRIPTION}"
            )
            return None
        pause_at = self._clock("pauseAt", pause_raw)
        resume_at = self._clock("resumeAt", resume_raw)
        if pause_at is None or resume_at is None:
            return None
        if pause_at == resume_at:
            self.problems.append(_rejected("resumeAt", resume_raw, "a time other than pauseAt"))
            return None
        return PauseSchedule(pause_at, resume_at, weekdays, timezone)

    def _github(self) -> GithubSettings | None:
        repository = self._pattern(
            "githubRepository", _GITHUB_REPOSITORY, "owner/name of a GitHub repository"
        )
        provider_arn = self._pattern(
            "githubOidcProviderArn",
            _OIDC_PROVIDER_ARN,
            "arn:aws:iam::<account>:oidc-provider/token.actions.githubusercontent.com",
        )
        bucket = self._pattern(
            "stateBucket", _BUCKET, "an S3 bucket name (3-63 lower-case letters, digits, . and -)"
        )
        key_arn = self._pattern(
            "secretsKeyArn",
            _KMS_KEY_ARN,
            "a KMS key ARN like arn:aws:kms:<region>:<account>:key/<id>",
        )
        dependent = ("githubOidcProviderArn", "stateBucket", "secretsKeyArn")
        if self.values.get("githubRepository") in (None, ""):
            for key in dependent:
                if self.values.get(key) not in (None, ""):
                    self.problems.append(
                        f"{key_name(key)} needs {key_name('githubRepository')}; allowed values: "
                        "set githubRepository too, or remove it"
                    )
            return None
        for key in ("stateBucket", "secretsKeyArn"):
            if self.values.get(key) in (None, ""):
                self.problems.append(
                    f"{key_name(key)} is required when {key_name('githubRepository')} is set "
                    "(the CI roles reach the state backend; see the README, Continuous delivery)"
                )
        if repository is None or bucket is None or key_arn is None:
            return None
        return GithubSettings(repository, provider_arn, bucket, key_arn)

    def _clock(self, key: str, raw: Any) -> time | None:
        match = _CLOCK.match(raw) if isinstance(raw, str) else None
        if match is None:
            self.problems.append(_rejected(key, raw, _CLOCK_DESCRIPTION))
            return None
        return time(int(match.group(1)), int(match.group(2)))

    def _weekdays(self) -> tuple[str, ...]:
        raw = self.values.get("pauseWeekdays", list(WEEKDAYS))
        days = _as_list(raw)
        if not days or any(day not in WEEKDAYS for day in days) or len(set(days)) != len(days):
            allowed = f"a non-empty list of {', '.join(WEEKDAYS)} without repeats"
            self.problems.append(_rejected("pauseWeekdays", raw, allowed))
            return WEEKDAYS
        return tuple(sorted(days, key=WEEKDAYS.index))

    def _timezone(self) -> str:
        raw = self.values.get("timezone", "UTC")
        try:
            zoneinfo.ZoneInfo(raw)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            self.problems.append(
                _rejected("timezone", raw, "an IANA timezone like Europe/Amsterdam or UTC")
            )
            return "UTC"
        return raw


def _rejected(key: str, raw: Any, allowed: str) -> str:
    return f"{key_name(key)}: {raw!r} is not allowed; allowed values: {allowed}"


def _unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(key, sorted(_KEYS), n=1)
    hint = f"did you mean {key_name(close[0])}? " if close else ""
    return (
        f"{key_name(key)} is not a known config key; {hint}allowed keys: {', '.join(sorted(_KEYS))}"
    )


def _coerce(raw: Any, kind: Callable[[Any], Any]) -> Any:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        value = kind(raw)
        return value if value == raw else None
    if isinstance(raw, str):
        try:
            return kind(raw.strip())
        except ValueError:
            return None
    return None


def _as_list(raw: Any) -> list[Any] | None:
    """Pulumi hands structured config to a program as JSON; a comma list is accepted too."""
    if isinstance(raw, list | tuple):
        return list(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                return None
            return parsed if isinstance(parsed, list) else None
        return [part.strip() for part in text.split(",") if part.strip()]
    return None


# Every `streamr:` key the program reads; anything else in the stack file is a typo.
_KEYS = frozenset(
    {
        "stage",
        "vpcCidr",
        "azCount",
        "natStrategy",
        "flowLogs",
        "coordinatorInstanceType",
        "coordinatorMinSize",
        "coordinatorMaxSize",
        "coordinatorDesiredCapacity",
        "coordinatorWebConcurrency",
        "certificateArn",
        "headscaleInstanceType",
        "srsInstanceType",
        "natInstanceType",
        "dbInstanceClass",
        "dbAllocatedStorageGb",
        "dbEngineVersion",
        "dbBackupRetentionDays",
        "dbMultiAz",
        "dbDeletionProtection",
        "dbFinalSnapshot",
        "dbPerformanceInsights",
        "cacheEngine",
        "cacheNodeType",
        "cacheNodes",
        "domain",
        "paused",
        "alertEmail",
        "pauseAt",
        "resumeAt",
        "pauseWeekdays",
        "timezone",
        "monthlyBudgetUsd",
        "githubRepository",
        "githubOidcProviderArn",
        "stateBucket",
        "secretsKeyArn",
    }
)

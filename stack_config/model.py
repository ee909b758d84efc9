"""The typed stack configuration: what the program is built from, once it has been validated.

Reading and checking the values is `stack_config.parsing`; this module is the model the
components are given, with the choices (allowed values per stage) both sides share.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def key_name(key: str) -> str:
    return f"{NAMESPACE}:{key}"


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
    # Or the Route 53 hosted zone of `domain`: the program issues and DNS-validates the
    # certificate itself and points `domain` at the load balancer.
    hosted_zone_id: str | None = None

    @property
    def https(self) -> bool:
        return self.certificate_arn is not None or self.hosted_zone_id is not None


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
    # Let's Encrypt's contact for the mesh's certificate; not the alert address (issue 18).
    acme_email: str | None
    pause_schedule: PauseSchedule | None
    monthly_budget_usd: float
    github: GithubSettings | None = None
    # Pause after this many minutes with no stream live and no viewer (None: no idle pause).
    idle_pause_minutes: int | None = None
    # An always-on wake endpoint (components/wake_endpoint.py) that un-pauses on request.
    wake_endpoint: bool = False
    # Deep-pause after this many hours idle-paused (ops/idle_deep.py; None: never).
    idle_deep_pause_hours: int | None = None

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
    def load(cls, documentation_keys: frozenset[str] = frozenset()) -> StackConfig:
        """Build from the running Pulumi program's stack configuration.

        `documentation_keys`: keys whose values the offline harness filled in with reserved
        documentation names (RFC 2606) because the stack file leaves them to the operator; only
        those may hold such names. A real `pulumi up` passes none.
        """
        from stack_config.parsing import load

        return load(documentation_keys)

    @classmethod
    def from_mapping(
        cls,
        values: Mapping[str, Any],
        region: str | None,
        documentation_keys: frozenset[str] = frozenset(),
    ) -> StackConfig:
        """Build from plain values keyed by the `streamr:` config key without its namespace.

        Values may be typed (`2`, `True`, `["mon"]`) or the strings Pulumi hands a program
        (`"2"`, `"true"`, `'["mon"]'`).
        """
        from stack_config.parsing import parse

        return parse(values, region, documentation_keys)

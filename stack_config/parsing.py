"""Reading and validating the stack configuration: the one place that reads `pulumi.Config`.

Every value the program uses comes from here, checked before any resource registers, so a typo in
`stacks/Pulumi.<stack>.yaml` fails `pulumi preview` with one message naming the key and the allowed
values instead of half-creating a platform.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import zoneinfo
from collections.abc import Mapping
from typing import Any

import pulumi

from ops.idle import (
    DEFAULT_IDLE_PAUSE_MINUTES,
    MAXIMUM_IDLE_PAUSE_MINUTES,
    MINIMUM_IDLE_PAUSE_MINUTES,
)
from ops.idle_deep import MAXIMUM_IDLE_DEEP_PAUSE_HOURS, MINIMUM_IDLE_DEEP_PAUSE_HOURS
from stack_config.model import (
    CACHE_ENGINES,
    CACHE_NODE_TYPES,
    DB_ENGINE_MAJORS,
    DB_INSTANCE_CLASSES,
    INSTANCE_TYPES,
    NAMESPACE,
    NAT_STRATEGIES,
    PROD_MIN_BACKUP_DAYS,
    REGIONS,
    STAGES,
    WEEKDAYS,
    CacheSettings,
    CoordinatorSettings,
    DatabaseSettings,
    GithubSettings,
    InstanceTypes,
    NetworkSettings,
    PauseSchedule,
    StackConfig,
    StackConfigError,
    Stage,
    key_name,
)
from stack_config.readers import (
    CLOCK_DESCRIPTION,
    RESERVED_DESCRIPTION,
    ValueReader,
    as_list,
    rejected,
)

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_HOSTED_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_CERTIFICATE_ARN = re.compile(r"^arn:aws:acm:([a-z0-9-]+):\d{12}:certificate/[0-9a-f-]{36}$")
_ENGINE_VERSION = re.compile(r"^(\d+)(\.\d+)?$")
_GITHUB_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_OIDC_PROVIDER_ARN = re.compile(
    r"^arn:aws:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$"
)
_BUCKET = re.compile(r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_KMS_KEY_ARN = re.compile(r"^arn:aws:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")


def load(documentation_keys: frozenset[str] = frozenset()) -> StackConfig:
    """The running Pulumi program's stack configuration, validated."""
    config = pulumi.Config(NAMESPACE)
    present = {
        key.split(":", 1)[1] for key in _all_config_keys() if key.startswith(f"{NAMESPACE}:")
    }
    values = {key: config.get(key) for key in KEYS | present}
    values = {key: value for key, value in values.items() if value is not None}
    return parse(values, pulumi.Config("aws").get("region"), documentation_keys)


def parse(
    values: Mapping[str, Any],
    region: str | None,
    documentation_keys: frozenset[str] = frozenset(),
) -> StackConfig:
    """Plain values keyed by the `streamr:` key without its namespace, validated."""
    return _Parser(values, region, documentation_keys).parse()


def _all_config_keys() -> set[str]:
    # pulumi.Config reads single keys only; the runtime's config map is the way to list them.
    return set(pulumi.runtime.get_config_env()) | set(pulumi.runtime.config.CONFIG.get())


class _Parser(ValueReader):
    """The platform's keys: defaults per stage, and the rules that tie keys together."""

    def parse(self) -> StackConfig:
        unknown = sorted(key for key in self.values if key not in KEYS)
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
        domain = self._owned(
            "domain", self._pattern("domain", _HOSTNAME, "a lower-case DNS name you own")
        )
        if domain is None and not dev:
            self.problems.append(
                f"{key_name('domain')} is required in prod (HTTPS for the coordinator, Let's "
                "Encrypt for the mesh without sslip.io's shared quota); allowed values: "
                + RESERVED_DESCRIPTION
            )
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
            alert_email=self._email("alertEmail"),
            acme_email=self._email("acmeEmail"),
            pause_schedule=self._pause_schedule(dev),
            monthly_budget_usd=self._number("monthlyBudgetUsd", 90.0 if dev else 300.0, 1, 100_000),
            github=self._github(),
            idle_pause_minutes=self._idle_pause_minutes(),
            wake_endpoint=self._bool("wakeEndpoint", False),
            idle_deep_pause_hours=self._idle_deep_pause_hours(),
        )
        if (
            config.wake_endpoint
            and config.pause_schedule is None
            and (config.idle_pause_minutes is None)
        ):
            self.problems.append(
                f"{key_name('wakeEndpoint')} needs a pause to undo; allowed values: false, or set "
                f"{key_name('pauseAt')}/{key_name('resumeAt')} or {key_name('idlePauseMinutes')}"
            )
        if config.idle_deep_pause_hours is not None:
            # The deep pause is the pause workflow's, dispatched by the wake endpoint after an
            # idle pause: each of these is needed.
            needs = [
                ("idlePauseMinutes", config.idle_pause_minutes is not None),
                ("wakeEndpoint", config.wake_endpoint),
                ("githubRepository", config.github is not None),
            ]
            for key, present in needs:
                if not present:
                    self.problems.append(
                        f"{key_name('idleDeepPauseHours')} needs {key_name(key)} (the idle pause, "
                        "the wake endpoint and the GitHub pause workflow); allowed values: unset, "
                        f"or set idlePauseMinutes, wakeEndpoint: true and githubRepository"
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
            raise StackConfigError([rejected("stage", raw, ", ".join(STAGES))])
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

    def _vpc_cidr(self) -> str:
        raw = self.values.get("vpcCidr", "10.0.0.0/16")
        try:
            network = ipaddress.IPv4Network(raw)
        except (ValueError, TypeError):
            network = None
        if network is None or not network.is_private or not 16 <= network.prefixlen <= 18:
            self.problems.append(
                rejected("vpcCidr", raw, "a private IPv4 network (RFC 1918), prefix /16 to /18")
            )
            return "10.0.0.0/16"
        return str(network)

    def _engine_version(self) -> str:
        raw = self.values.get("dbEngineVersion", str(DB_ENGINE_MAJORS[0]))
        match = _ENGINE_VERSION.match(str(raw))
        if match is None or int(match.group(1)) not in DB_ENGINE_MAJORS:
            majors = ", ".join(str(major) for major in DB_ENGINE_MAJORS)
            self.problems.append(
                rejected("dbEngineVersion", raw, f"PostgreSQL {majors} as 'major' or 'major.minor'")
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
                rejected(
                    "certificateArn", certificate, f"a certificate in {region}, the ALB's region"
                )
            )
            certificate = None
        zone = self._pattern(
            "hostedZoneId", _HOSTED_ZONE_ID, "a Route 53 hosted zone id like Z0123456789ABCDEFGHIJ"
        )
        if zone is not None and domain is None:
            self.problems.append(
                f"{key_name('hostedZoneId')} needs {key_name('domain')}, a name in that zone; "
                "allowed values: set both or neither"
            )
            zone = None
        if zone is not None and certificate is not None:
            self.problems.append(
                f"{key_name('hostedZoneId')} and {key_name('certificateArn')} both give the "
                "load balancer a certificate; allowed values: set one of them"
            )
            zone = None
        if not dev and domain is not None and zone is None and certificate is None:
            self.problems.append(
                f"prod serves HTTPS only: {key_name('hostedZoneId')} (the program issues and "
                f"validates the certificate) or {key_name('certificateArn')} is required; "
                f"allowed values: the Route 53 zone of {domain}, or an ACM certificate for it"
            )
        return CoordinatorSettings(
            min_size=min_size,
            max_size=max_size,
            desired_capacity=desired,
            web_concurrency=self._int("coordinatorWebConcurrency", 2, 1, 16),
            certificate_arn=certificate,
            hosted_zone_id=zone,
        )

    def _idle_pause_minutes(self) -> int | None:
        if self.values.get("idlePauseMinutes") in (None, ""):
            return None
        return self._int(
            "idlePauseMinutes",
            DEFAULT_IDLE_PAUSE_MINUTES,
            MINIMUM_IDLE_PAUSE_MINUTES,
            MAXIMUM_IDLE_PAUSE_MINUTES,
        )

    def _idle_deep_pause_hours(self) -> int | None:
        if self.values.get("idleDeepPauseHours") in (None, ""):
            return None
        return self._int(
            "idleDeepPauseHours",
            MINIMUM_IDLE_DEEP_PAUSE_HOURS,
            MINIMUM_IDLE_DEEP_PAUSE_HOURS,
            MAXIMUM_IDLE_DEEP_PAUSE_HOURS,
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
                f"allowed values: {CLOCK_DESCRIPTION}"
            )
            return None
        pause_at = self._clock("pauseAt", pause_raw)
        resume_at = self._clock("resumeAt", resume_raw)
        if pause_at is None or resume_at is None:
            return None
        if pause_at == resume_at:
            self.problems.append(rejected("resumeAt", resume_raw, "a time other than pauseAt"))
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

    def _weekdays(self) -> tuple[str, ...]:
        raw = self.values.get("pauseWeekdays", list(WEEKDAYS))
        days = as_list(raw)
        if not days or any(day not in WEEKDAYS for day in days) or len(set(days)) != len(days):
            allowed = f"a non-empty list of {', '.join(WEEKDAYS)} without repeats"
            self.problems.append(rejected("pauseWeekdays", raw, allowed))
            return WEEKDAYS
        return tuple(sorted(days, key=WEEKDAYS.index))

    def _timezone(self) -> str:
        raw = self.values.get("timezone", "UTC")
        try:
            zoneinfo.ZoneInfo(raw)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            self.problems.append(
                rejected("timezone", raw, "an IANA timezone like Europe/Amsterdam or UTC")
            )
            return "UTC"
        return raw


def _unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(key, sorted(KEYS), n=1)
    hint = f"did you mean {key_name(close[0])}? " if close else ""
    return (
        f"{key_name(key)} is not a known config key; {hint}allowed keys: {', '.join(sorted(KEYS))}"
    )


# Every `streamr:` key the program reads; anything else in the stack file is a typo.
KEYS = frozenset(
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
        "hostedZoneId",
        "acmeEmail",
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
        "idlePauseMinutes",
        "idleDeepPauseHours",
        "wakeEndpoint",
        "monthlyBudgetUsd",
        "githubRepository",
        "githubOidcProviderArn",
        "stateBucket",
        "secretsKeyArn",
    }
)

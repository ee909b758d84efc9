"""Settings from the environment (prefix `STREAMR_`), validated once at start-up.

Secrets (pepper, hook secret, bootstrap token, database password) come from the
environment, which on AWS is filled from Secrets Manager; nothing secret is generated per process,
so every instance and every restart agrees on them.

The two credentials AWS rotates under a running process (the RDS-managed database password, every
7 days; the Headscale API key, monthly) may instead be named by a file (`..._FILE`) that the host
keeps current: they are read from it at each use (each new database connection, each mesh
request), so a rotation needs no restart.
"""

from __future__ import annotations

from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STREAMR_", extra="ignore", frozen=True)

    # Either a full SQLAlchemy URL, or the parts (RDS hands out host/port and a JSON secret).
    database_url: SecretStr | None = None
    database_host: str | None = None
    database_port: int = 5432
    database_name: str = "streamr"
    database_user: str | None = None
    database_password: SecretStr | None = None
    database_password_file: Path | None = None
    database_sslmode: str = Field(
        default="prefer", pattern="^(disable|prefer|require|verify-full)$"
    )
    database_pool_size: int = Field(default=10, ge=1, le=100)

    redis_url: SecretStr | None = None

    token_pepper: SecretStr = Field(description="keys the hashes of tokens and stream keys")
    hook_secret: SecretStr = Field(description="shared secret the SRS origin sends with its hooks")
    admin_bootstrap_token: SecretStr | None = None
    # The token the ops Lambda presents to read the platform's activity (idle pause); nothing else.
    ops_token: SecretStr | None = None

    session_token_ttl_hours: int = Field(default=24 * 14, ge=1, le=24 * 365)
    node_token_ttl_days: int = Field(default=90, ge=1, le=365)
    node_online_seconds: int = Field(default=90, ge=10, le=3600)
    token_cache_seconds: int = Field(default=30, ge=0, le=300)
    # A node token is looked up at every heartbeat (heartbeat_seconds): cached
    # longer, so most beats find it (revocation is immediate anyway: domain/revocations.py).
    node_token_cache_seconds: int = Field(default=300, ge=0, le=3600)
    # How often each instance writes the heartbeats it holds to nodes.last_seen (at most half a
    # beat, so a crash that loses one flush leaves the node online: domain/last_seen.py).
    last_seen_flush_seconds: int = Field(default=5, ge=1, le=1200)

    trusted_proxies: list[str] = Field(default_factory=list)
    auth_rate_limit_per_minute: int = Field(default=20, ge=1, le=10_000)

    # The mesh: Headscale's URL (also the login server nodes join) and an API key for it. Without
    # them nodes register without a mesh key (a local setup without Headscale).
    headscale_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(:\d+)?/?$")
    headscale_api_key: SecretStr | None = None
    headscale_api_key_file: Path | None = None
    mesh_key_ttl_minutes: int = Field(default=60, ge=5, le=24 * 60)
    # How long a viewer has to join the mesh with the key an invite gave them.
    viewer_key_ttl_minutes: int = Field(default=15, ge=5, le=24 * 60)
    # The mesh's address ranges (Headscale's `prefixes`): a node's play URL must be in one, so
    # viewers are only ever sent to an edge on the mesh.
    mesh_prefixes: list[str] = Field(
        default_factory=lambda: ["100.64.0.0/10", "fd7a:115c:a1e0::/48"], min_length=1
    )
    # The SRS origin's HTTP base URL (HLS and HTTP-FLV): where viewers go when no edge has room.
    origin_play_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+$")
    # Where OBS publishes (the origin's RTMP application, `rtmp://<origin>/live`), shown on the
    # streamer page; unset (a local run), the page names this site's own host.
    origin_publish_url: str | None = Field(
        default=None, pattern=r"^rtmp://[^\s/?#]+/[A-Za-z0-9_.-]+$"
    )
    # Edge names (see domain/edge_names.py): node N is `n<N>.<edge domain>`, whose A record (its
    # mesh IPv4) and ACME challenge the coordinator writes in this Route 53 hosted zone, so an
    # edge can serve HTTPS with a real certificate. Both or neither.
    edge_domain: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
        description="lower case, e.g. edge.example.com",
    )
    edge_zone_id: str | None = Field(default=None, pattern=r"^(/hostedzone/)?[A-Z0-9]{1,32}$")
    play_edges: int = Field(default=3, ge=1, le=20)
    # How long a viewer has to start playing with the ticket in an edge URL from /api/v1/play.
    play_ticket_seconds: int = Field(default=60, ge=5, le=3600)
    # Live state: how often each instance closes what is over (0: never), and how long the
    # origin's SRS process may be silent (no heartbeat) before its streams count as ended.
    sweep_seconds: int = Field(default=10, ge=0, le=3600)
    origin_silence_seconds: int = Field(default=30, ge=5, le=3600)

    # Contribution reports: how long one report's interval may be, how far verification may
    # exceed what the node's viewer sessions could have consumed, how fast trust moves.
    report_min_seconds: int = Field(default=1, ge=1, le=3600)
    report_max_seconds: int = Field(default=300, ge=1, le=3600)
    verification_tolerance_percent: int = Field(default=10, ge=0, le=100)
    trust_smoothing_percent: int = Field(default=20, ge=1, le=100)
    # Payouts: the period length (a divisor of a day, so periods align to midnight UTC), how long
    # after a period ends it is paid, and how often each instance checks (0: never).
    payout_period_seconds: int = Field(default=3600, ge=60, le=86400)
    payout_grace_seconds: int = Field(default=30, ge=0, le=3600)
    payout_check_seconds: int = Field(default=30, ge=0, le=3600)
    # What pools and payouts are counted in: a currency code (amounts in its hundredths) or
    # "credits" (hundredths of a credit). Every amount the API and pages show names it.
    payout_unit: str = Field(default="credits", pattern=r"^(credits|[A-Z]{3})$")
    # What one GB sent from the origin to viewers costs (AWS data transfer out; ops/prices.py):
    # the streamer page prices the bytes friends delivered with it.
    origin_egress_usd_per_gb: float = Field(default=0.09, ge=0, le=10)

    @field_validator("token_pepper", "hook_secret", "ops_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @field_validator("trusted_proxies", "mesh_prefixes")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            ip_network(entry, strict=False)
        return value

    @field_validator("payout_period_seconds")
    @classmethod
    def _divides_a_day(cls, value: int) -> int:
        if 86400 % value:
            raise ValueError("must divide 86400 (a day) evenly, e.g. 900, 3600, 86400")
        return value

    @model_validator(mode="after")
    def _mesh_complete(self) -> Settings:
        if self.headscale_api_key is not None and self.headscale_api_key_file is not None:
            raise ValueError(
                "set STREAMR_HEADSCALE_API_KEY or STREAMR_HEADSCALE_API_KEY_FILE, not both"
            )
        keyed = self.headscale_api_key is not None or self.headscale_api_key_file is not None
        if (self.headscale_url is None) == keyed:
            raise ValueError(
                "set both STREAMR_HEADSCALE_URL and STREAMR_HEADSCALE_API_KEY (or _FILE), "
                "or neither"
            )
        return self

    @model_validator(mode="after")
    def _edge_names_complete(self) -> Settings:
        if (self.edge_domain is None) != (self.edge_zone_id is None):
            raise ValueError(
                "set both STREAMR_EDGE_DOMAIN and STREAMR_EDGE_ZONE_ID (the Route 53 hosted zone "
                "that holds it), or neither"
            )
        return self

    @model_validator(mode="after")
    def _flush_within_half_a_beat(self) -> Settings:
        """A crash loses one flush: last_seen is then two beats and one flush old, which must stay
        inside the online window (three beats) with room for late beats."""
        most = self.heartbeat_seconds // 2
        if self.last_seen_flush_seconds > most:
            raise ValueError(
                f"STREAMR_LAST_SEEN_FLUSH_SECONDS must be at most {most} (half a heartbeat "
                "interval, STREAMR_NODE_ONLINE_SECONDS / 6), so a crash cannot make a node "
                "look offline"
            )
        return self

    @model_validator(mode="after")
    def _report_bounds(self) -> Settings:
        if self.report_min_seconds > self.report_max_seconds:
            raise ValueError(
                "STREAMR_REPORT_MIN_SECONDS must not exceed STREAMR_REPORT_MAX_SECONDS"
            )
        return self

    @model_validator(mode="after")
    def _database_given(self) -> Settings:
        if self.database_password is not None and self.database_password_file is not None:
            raise ValueError(
                "set STREAMR_DATABASE_PASSWORD or STREAMR_DATABASE_PASSWORD_FILE, not both"
            )
        if self.database_url is None and not (self.database_host and self.database_user):
            raise ValueError(
                "set STREAMR_DATABASE_URL, or STREAMR_DATABASE_HOST and STREAMR_DATABASE_USER "
                "(and STREAMR_DATABASE_PASSWORD)"
            )
        return self

    def current_database_password(self) -> str | None:
        """The database password as it is now (re-read from its file, when it has one)."""
        if self.database_password_file is not None:
            return read_secret_file(self.database_password_file)
        return self.database_password.get_secret_value() if self.database_password else None

    def current_headscale_api_key(self) -> str | None:
        """The Headscale API key as it is now; None while its host has not written one yet."""
        if self.headscale_api_key_file is not None:
            return read_secret_file(self.headscale_api_key_file)
        return self.headscale_api_key.get_secret_value() if self.headscale_api_key else None

    @property
    def sqlalchemy_url(self) -> str:
        """The URL with the current password (engines also re-read it for each connection)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        password = self.current_database_password() or ""
        credentials = quote(self.database_user or "", safe="")
        if password:
            credentials += ":" + quote(password, safe="")
        return (
            f"postgresql+psycopg://{credentials}@{self.database_host}:{self.database_port}"
            f"/{self.database_name}?sslmode={self.database_sslmode}"
        )

    @property
    def heartbeat_seconds(self) -> int:
        """How often a node beats: three beats per online window, so one lost beat is harmless."""
        return self.node_online_seconds // 3

    @cached_property
    def proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        return [ip_network(entry, strict=False) for entry in self.trusted_proxies]

    @property
    def mesh_networks(self) -> list[IPv4Network | IPv6Network]:
        return [ip_network(entry, strict=False) for entry in self.mesh_prefixes]


def read_secret_file(path: Path) -> str | None:
    """A secret its host keeps in `path`, stripped of whitespace; None if absent or empty."""
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    return value or None

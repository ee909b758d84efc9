"""Request and response bodies: what the OpenAPI document shows. Secrets appear only in the
`...WithKey` / `...WithToken` / `LoginOut` responses given to their owner."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .domain.edge_names import CHALLENGE_VALUE_PATTERN

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,62}$"
# PostgreSQL text holds no NUL character, and only valid Unicode (a JSON "\\ud800" escape would
# decode to a lone surrogate): a pattern refuses both (pydantic checks a pattern only on valid
# Unicode), and says so in the OpenAPI document. Every free-text input field is a `free_text` field.
TEXT_PATTERN = r"^[^\x00]*$"
INT64_MAX = 2**63 - 1


def free_text(max_length: int, min_length: int = 0, **field: Any) -> Any:
    """A free-text field: at most `max_length` characters, no NUL, valid Unicode."""
    return Field(pattern=TEXT_PATTERN, min_length=min_length, max_length=max_length, **field)


Name = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        description="2-63 characters: lower-case letters, digits, '_' and '-', not starting with "
        "'_' or '-'",
        examples=["evening-show"],
    ),
]
Username = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{2,31}$", examples=["alice"])]
Password = Annotated[str, free_text(min_length=10, max_length=128)]
Currency = Annotated[
    str,
    Field(
        description='what every `*_minor` amount here counts, in hundredths: "credits" or a '
        "currency code (STREAMR_PAYOUT_UNIT)"
    ),
]


class ErrorOut(BaseModel):
    detail: str = Field(description="what went wrong, for people")


class RegisterIn(BaseModel):
    username: Username
    password: Password
    role: Literal["streamer", "friend"]


class CredentialsIn(BaseModel):
    username: Username
    password: Password


class LoginIn(BaseModel):
    """Signing in judges nothing but the pair: any wrong username or password (too short, not a
    valid username at all) is the same 401, so the answer says nothing about the rules."""

    username: str = free_text(min_length=1, max_length=64)
    password: str = free_text(min_length=1, max_length=128)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    role: str
    created_at: datetime


class LoginOut(BaseModel):
    token: str = Field(description="bearer token; send as `Authorization: Bearer <token>`")
    expires_at: datetime
    user: UserOut


class StreamIn(BaseModel):
    name: Name
    title: str = free_text(default="", max_length=200)
    bitrate_kbps: int = Field(default=4000, ge=100, le=100_000)
    payout_pool_minor: int = Field(default=0, ge=0, le=10**12)


class StreamUpdate(BaseModel):
    title: str | None = free_text(default=None, max_length=200)
    enabled: bool | None = None
    bitrate_kbps: int | None = Field(default=None, ge=100, le=100_000)
    payout_pool_minor: int | None = Field(default=None, ge=0, le=10**12)


class StreamOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    owner_id: int
    name: str
    title: str
    enabled: bool
    moderated: bool = Field(description="an admin disabled it; only an admin can enable it")
    bitrate_kbps: int
    payout_pool_minor: int = Field(description="the pool as last set, per payout period")
    payout_pool_from: datetime | None = Field(
        description="when that pool starts paying (a period boundary; null: from the start)"
    )
    is_live: bool
    live_since: datetime | None
    created_at: datetime
    currency: Currency


class StreamWithKey(StreamOut):
    stream_key: str = Field(description="shown now only; publish with `rtmp://…/live/<name>?key=…`")


class PublicStreamOut(BaseModel):
    name: str
    title: str
    live_since: datetime | None


class NodeIn(BaseModel):
    name: Name
    capacity_viewers: int = Field(ge=1, le=10_000)


class NodeOut(BaseModel):
    id: int
    owner_id: int
    name: str
    capacity_viewers: int
    trust: float = Field(description="0..1; lowered by over-claiming, restored by honest reports")
    online: bool
    last_seen: datetime | None
    created_at: datetime
    edge_name: str | None = Field(
        description="the edge's public DNS name (its certificate's name); None without "
        "STREAMR_EDGE_DOMAIN"
    )


class MeshJoinOut(BaseModel):
    login_server: str = Field(description="`tailscale up --login-server <this>`")
    preauth_key: str = Field(description="single use, tagged; `tailscale up --authkey <this>`")
    expires_at: datetime


class NodeWithToken(NodeOut):
    node_token: str = Field(description="shown now only; the node sends it as its bearer token")
    token_expires_at: datetime
    mesh: MeshJoinOut | None = Field(description="how to join the mesh; None without a mesh")


class EdgeIn(BaseModel):
    play_base_url: str = Field(
        max_length=200,
        pattern=r"^https?://[^\s/?#]+$",
        description="scheme, host and port viewers play from, e.g. http://100.64.0.5:8080",
    )
    tls_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="the port where the node serves HTTPS for its `edge_name`; viewers are then "
        "sent to https://<edge_name>:<tls_port>",
    )


class ChallengeIn(BaseModel):
    value: str = Field(
        pattern=CHALLENGE_VALUE_PATTERN,
        description="an ACME DNS-01 value: 43 characters of unpadded base64url",
    )


class NodeTokenOut(BaseModel):
    node_token: str = Field(description="the node's new token; the old one works one more hour")
    token_expires_at: datetime


class PlayUrls(BaseModel):
    flv_url: str
    hls_url: str | None = Field(default=None, description="the origin only: edges serve FLV")


class EdgeChoice(PlayUrls):
    node_id: int
    load: float = Field(description="open viewer sessions / capacity")


class PlayOut(BaseModel):
    stream: str
    edges: list[EdgeChoice] = Field(description="friends' edges with capacity, least loaded first")
    origin: PlayUrls | None = Field(description="the fallback; None if not configured")


class HeartbeatOut(BaseModel):
    online: bool
    next_heartbeat_seconds: int


class HookAnswer(BaseModel):
    code: int = Field(description="0 allows; SRS denies on anything else or a non-200 status")
    detail: str | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded", "failed"]
    database: Literal["ok", "failed"] | None = None
    redis: Literal["ok", "failed", "not configured"] | None = None


class ActivityOut(BaseModel):
    """What the ops Lambda's idle pause asks: is anything happening, and since when not."""

    live_streams: int
    viewers: int
    last_activity: AwareDatetime = Field(
        description="now while anything is live or watched; never earlier than this process's start"
    )


class ReportIn(BaseModel):
    """One interval of relaying. Negative or malformed numbers are judged per item (rejected with
    a reason) rather than failing the whole batch."""

    stream: str = free_text(max_length=64, description="the stream's name")
    interval_start: AwareDatetime
    interval_end: AwareDatetime
    bytes_served: int = Field(ge=-(2**63), le=2**63 - 1)
    viewers: int = Field(ge=-(2**31), le=2**31 - 1)


class ReportBatchIn(BaseModel):
    reports: list[ReportIn] = Field(min_length=1, max_length=1000)


class ReportOutcomeOut(BaseModel):
    stream: str
    interval_start: datetime
    status: Literal["accepted", "duplicate", "rejected"]
    reason: str | None = Field(default=None, description="why, when not accepted")
    verified_bytes: int | None = Field(
        default=None, description="what we credit: at most what this node's viewers could watch"
    )


class ReportBatchOut(BaseModel):
    results: list[ReportOutcomeOut] = Field(description="one per report, in the order sent")
    trust: float = Field(description="the node's trust after this batch, 0..1")


class EarningOut(BaseModel):
    period_start: datetime
    period_end: datetime
    stream_id: int
    stream_name: str | None = Field(
        description="the stream's name (a deleted stream keeps its name here; the id tells a "
        "later stream of the same name apart)"
    )
    node_id: int
    node_name: str | None = Field(description="None once the node was deleted")
    verified_bytes: int
    trust: float
    amount_minor: int


class NodeTrustOut(BaseModel):
    id: int
    name: str
    trust: float


class EarningsOut(BaseModel):
    currency: Currency
    balance_minor: int = Field(description="everything ever credited, in minor units")
    nodes: list[NodeTrustOut]
    history: list[EarningOut] = Field(description="newest first")


class StreamPayoutOut(BaseModel):
    period_start: datetime
    period_end: datetime
    node_id: int
    node_name: str | None
    verified_bytes: int
    amount_minor: int
    currency: Currency


class PayoutPeriodOut(BaseModel):
    period_start: datetime
    period_end: datetime
    computed_at: datetime
    streams_paid: int
    entries: int
    total_minor: int
    currency: Currency

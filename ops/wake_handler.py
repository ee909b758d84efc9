"""The wake endpoint: a Lambda function URL that wakes a paused platform and reports progress.

Routes: `GET /` a page that polls the status (the token stays in the page's URL fragment, which
browsers never send); `GET /status` and `POST /wake` with `Authorization: Bearer <wake token>`.
The token lives in an SSM SecureString parameter and is compared in constant time; a missing one
is 401, a wrong one 403, and neither looks at or starts anything.

A stop-paused platform is resumed by invoking the pause function with `{"action": "resume"}`
(asynchronously: its executor starts the database, hosts and groups in order, with its retries,
dead-letter queue and alarms). A deep-paused one is un-paused by dispatching the GitHub pause
workflow (`action: resume`) with a token from another SecureString parameter.

With an idle deep pause, a schedule also sends the function `{"check": "idle-deep-pause"}`: when
the pause function's record says the platform has been idle-paused long enough (ops/idle_deep.py),
it dispatches the same workflow with `action: pause`, once, and remembers it in its record.

Environment: PROJECT, STAGE, WAKE_TOKEN_PARAMETER, RECORD_PARAMETER, PAUSE_FUNCTION_NAME,
DEEP_PAUSED (true/false), optionally RTMP_HOST (the origin's address or name: "running" once it
answers an RTMP connect, ops/rtmp_probe.py) and COORDINATOR_URL (then "running" also needs the
coordinator's `/ready` to answer 200: SRS's on_publish hook asks the coordinator, which looks the
stream key up in PostgreSQL), and for a deep wake
GITHUB_REPOSITORY, GITHUB_WORKFLOW, GITHUB_REF, GITHUB_TOKEN_PARAMETER (all four or none) and
GITHUB_API_URL (default https://api.github.com); for the idle deep pause (which needs the GitHub
workflow) IDLE_DEEP_PAUSE_HOURS and IDLE_RECORD_PARAMETER (both or none).
"""

from __future__ import annotations

import hmac
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import boto3

from ops.discovery import Clients, StackTags, discover
from ops.idle_deep import CHECK_EVENT, IdlePauseRecord, decide_deep_pause, validate_hours
from ops.rtmp_probe import Readiness, probe
from ops.secure_parameter import ParameterUnset, read_secure
from ops.wake import (
    Status,
    WakeRecord,
    advance,
    decide_wake,
    observe,
    resume_still_needed,
    woken,
)
from ops.wake_page import PAGE

GITHUB_KEYS = ("GITHUB_REPOSITORY", "GITHUB_WORKFLOW", "GITHUB_REF", "GITHUB_TOKEN_PARAMETER")
IDLE_DEEP_KEYS = ("IDLE_DEEP_PAUSE_HOURS", "IDLE_RECORD_PARAMETER")


class ConfigError(ValueError):
    """A required setting is missing or invalid; the message names it."""


class DispatchError(RuntimeError):
    """GitHub did not accept the workflow dispatch; the message says what it answered."""


@dataclass(frozen=True)
class GithubDispatch:
    """Which workflow un-pauses this stack, and where the token that may dispatch it is kept."""

    repository: str
    workflow: str
    ref: str
    token_parameter: str
    api_url: str = "https://api.github.com"


@dataclass(frozen=True)
class IdleDeepPause:
    """Deep-pause after `hours` idle-paused, as the pause function's record in `record_parameter`
    says."""

    hours: int
    record_parameter: str


@dataclass(frozen=True)
class WakeSettings:
    stack: StackTags
    token_parameter: str
    record_parameter: str
    pause_function_name: str
    deep_paused: bool
    rtmp_host: str | None
    github: GithubDispatch | None
    idle_deep: IdleDeepPause | None = None
    coordinator_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WakeSettings:
        required = [
            "PROJECT",
            "STAGE",
            "WAKE_TOKEN_PARAMETER",
            "RECORD_PARAMETER",
            "PAUSE_FUNCTION_NAME",
            "DEEP_PAUSED",
        ]
        if any(env.get(key) for key in IDLE_DEEP_KEYS):
            # The deep pause is the GitHub workflow's: the one needs the other.
            required += [*IDLE_DEEP_KEYS, *GITHUB_KEYS]
        elif any(env.get(key) for key in GITHUB_KEYS):
            required += GITHUB_KEYS
        missing = [key for key in required if not env.get(key)]
        if missing:
            raise ConfigError(f"missing environment variable(s): {', '.join(missing)}")
        if env["DEEP_PAUSED"] not in ("true", "false"):
            raise ConfigError(f"DEEP_PAUSED is {env['DEEP_PAUSED']!r}; allowed values: true, false")
        github = None
        if "GITHUB_REPOSITORY" in required:
            api_url = env.get("GITHUB_API_URL") or GithubDispatch.api_url
            if not api_url.startswith(("https://", "http://")):
                raise ConfigError(f"GITHUB_API_URL is {api_url!r}; it must start with https://")
            github = GithubDispatch(
                env["GITHUB_REPOSITORY"],
                env["GITHUB_WORKFLOW"],
                env["GITHUB_REF"],
                env["GITHUB_TOKEN_PARAMETER"],
                api_url.rstrip("/"),
            )
        coordinator_url = env.get("COORDINATOR_URL") or None
        if coordinator_url is not None and not coordinator_url.startswith(("https://", "http://")):
            raise ConfigError(
                f"COORDINATOR_URL is {coordinator_url!r}; it must start with https:// or http://"
            )
        idle_deep = None
        if "IDLE_DEEP_PAUSE_HOURS" in required:
            raw = env["IDLE_DEEP_PAUSE_HOURS"]
            try:
                hours = validate_hours(int(raw))
            except ValueError as error:
                raise ConfigError(f"IDLE_DEEP_PAUSE_HOURS is {raw!r}: {error}") from error
            idle_deep = IdleDeepPause(hours, env["IDLE_RECORD_PARAMETER"])
        return cls(
            StackTags(env["PROJECT"], env["STAGE"]),
            env["WAKE_TOKEN_PARAMETER"],
            env["RECORD_PARAMETER"],
            env["PAUSE_FUNCTION_NAME"],
            env["DEEP_PAUSED"] == "true",
            env.get("RTMP_HOST") or None,
            github,
            idle_deep,
            None if coordinator_url is None else coordinator_url.rstrip("/"),
        )


@dataclass(frozen=True)
class Effects:
    """Where the endpoint touches the world: AWS clients, the origin's RTMP ingest and GitHub."""

    clients: Clients
    # Its record and its tokens (SecureString parameters) alike.
    ssm: Any
    # Deliver the pause function's event (JSON) asynchronously.
    invoke_pause_function: Callable[[str], None]
    rtmp_readiness: Callable[[str], Readiness]
    coordinator_readiness: Callable[[str], Readiness]

    @classmethod
    def from_session(cls, session: Any, pause_function_name: str) -> Effects:
        lambda_client = session.client("lambda")

        def invoke(payload: str) -> None:
            lambda_client.invoke(
                FunctionName=pause_function_name, InvocationType="Event", Payload=payload
            )

        return cls(
            Clients.from_session(session),
            session.client("ssm"),
            invoke,
            probe,
            coordinator_ready,
        )


def coordinator_ready(url: str, timeout: float = 3.0) -> Readiness:
    """Whether the coordinator that SRS's on_publish hook asks answers `GET /ready` with 200 (its
    database is reachable, so it can check a stream key)."""
    try:
        with urllib.request.urlopen(f"{url}/ready", timeout=timeout) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        return Readiness(False, f"coordinator /ready: {getattr(error, 'reason', error)}")
    return Readiness(status == 200, f"coordinator /ready answered {status}")


Response = dict[str, Any]


def respond(
    event: Mapping[str, Any], settings: WakeSettings, effects: Effects, now: datetime
) -> Response:
    """Route one function URL request (payload format 2.0); the Lambda and the tests share this."""
    http = event.get("requestContext", {}).get("http", {})
    method, path = http.get("method", "GET"), event.get("rawPath", "/")
    if (method, path) == ("GET", "/"):
        return _reply(200, PAGE, "text/html; charset=utf-8")
    if (method, path) not in (("GET", "/status"), ("POST", "/wake")):
        return _json(404, {"error": "routes: GET /, GET /status, POST /wake"})
    refusal = _refusal(event.get("headers") or {}, settings, effects)
    if refusal is not None:
        return refusal
    remembered = record = _read_record(effects, settings)
    observed = observe(discover(effects.clients, settings.stack))
    ingest = _ingest_readiness(settings, effects) if observed == "running" else None
    record, status = advance(record, observed, ingest, settings.deep_paused, now)
    if resume_still_needed(record, observed, settings.deep_paused):
        _ask_for_resume(effects)
        record = replace(record, resume_sent=True)
    if path == "/status":
        if record != remembered:
            _write_record(effects, settings, record)
        return _json(200, status.to_json())
    return _wake(settings, effects, record, status, now)


def _ingest_readiness(settings: WakeSettings, effects: Effects) -> Readiness | None:
    """Whether a publish would go through: RTMP ingest answers a connect and (when its URL is
    known) the coordinator its on_publish hook asks is ready. None without an origin to ask."""
    if settings.rtmp_host is None:
        return None
    rtmp = effects.rtmp_readiness(settings.rtmp_host)
    if rtmp.ready and settings.coordinator_url is not None:
        return effects.coordinator_readiness(settings.coordinator_url)
    return rtmp


def _wake(
    settings: WakeSettings, effects: Effects, record: WakeRecord, status: Status, now: datetime
) -> Response:
    decision = decide_wake(status)
    body: dict[str, Any] = {"action": decision.action, "reason": decision.reason}
    if decision.action == "dispatch":
        if settings.github is None:
            _write_record(effects, settings, record)
            return _json(
                503,
                {
                    **body,
                    "action": "none",
                    "error": "a deep wake needs the GitHub workflow (streamr:githubRepository); "
                    "un-pause with the pause workflow or pulumi up",
                    "status": status.to_json(),
                },
            )
        try:
            dispatch_workflow(settings.github, _github_token(effects, settings.github),
                              settings.stack.stage, "resume")  # fmt: skip
        except DispatchError as error:
            _write_record(effects, settings, record)
            return _json(502, {**body, "error": str(error), "status": status.to_json()})
    elif decision.action == "resume":
        _ask_for_resume(effects)
    if decision.action != "none":
        fresh = woken(now, resume_sent=decision.action == "resume")
        record, status = advance(fresh, "starting", None, settings.deep_paused, now)
    _write_record(effects, settings, record)
    print(json.dumps({"wake": decision.action, "state": status.state}))
    return _json(decision.http_status, {**body, "status": status.to_json()})


def _ask_for_resume(effects: Effects) -> None:
    effects.invoke_pause_function(json.dumps({"action": "resume", "dry_run": False}))


def check_idle_deep_pause(
    settings: WakeSettings, effects: Effects, now: datetime
) -> dict[str, Any]:
    """The scheduled check: dispatch the deep pause when ops/idle_deep.py says so, and remember it.
    Raises DispatchError when GitHub refuses (nothing is remembered: the next check tries again)."""
    if settings.idle_deep is None or settings.github is None:
        raise ConfigError(
            "the idle deep pause check needs IDLE_DEEP_PAUSE_HOURS, IDLE_RECORD_PARAMETER and "
            "the GitHub workflow (GITHUB_REPOSITORY, ...)"
        )
    record = _read_record(effects, settings)
    observed = observe(discover(effects.clients, settings.stack))
    decision = decide_deep_pause(
        _read_idle_record(effects, settings.idle_deep.record_parameter),
        record,
        observed,
        settings.deep_paused,
        now,
        settings.idle_deep.hours,
    )
    if decision.dispatch:
        token = _github_token(effects, settings.github)
        dispatch_workflow(settings.github, token, settings.stack.stage, "pause")
        _write_record(effects, settings, replace(record, deep_pause_requested_at=now))
    result = {
        "check": "idle-deep-pause",
        "dispatched": decision.dispatch,
        "reason": decision.reason,
    }
    print(json.dumps(result))
    return result


def _read_idle_record(effects: Effects, parameter: str) -> IdlePauseRecord:
    """The pause function's record; none (or an unreadable one) means not idle-paused."""
    try:
        raw = effects.ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
        return IdlePauseRecord.from_json(json.loads(raw))
    except (effects.ssm.exceptions.ParameterNotFound, ValueError):
        return IdlePauseRecord()


def dispatch_workflow(
    github: GithubDispatch, token: str, stage: str, action: str, timeout: float = 15.0
) -> None:
    """Ask GitHub to run the pause workflow's `action` (pause or resume) for this stage (204 is
    its only yes)."""
    url = (
        f"{github.api_url}/repos/{github.repository}/actions/workflows/{github.workflow}/dispatches"
    )
    body = {"ref": github.ref, "inputs": {"stack": stage, "action": action}}
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked in WakeSettings
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            if response.status != 204:
                raise DispatchError(f"GitHub answered {response.status} to the workflow dispatch")
    except urllib.error.HTTPError as error:
        detail = error.read(500).decode("utf-8", "replace")
        raise DispatchError(
            f"GitHub refused the workflow dispatch: {error.code} {detail}"
        ) from error
    except OSError as error:
        raise DispatchError(f"GitHub could not be reached: {error}") from error


def _refusal(
    headers: Mapping[str, str], settings: WakeSettings, effects: Effects
) -> Response | None:
    given = {key.lower(): value for key, value in headers.items()}.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return _json(401, {"error": "send Authorization: Bearer <wake token>"})
    expected = read_secure(effects.ssm, settings.token_parameter)
    if not hmac.compare_digest(token.encode(), expected.encode()):
        return _json(403, {"error": "wrong wake token"})
    return None


def _github_token(effects: Effects, github: GithubDispatch) -> str:
    """The operator's GitHub token; a DispatchError saying how to store it while it is unset."""
    try:
        return read_secure(effects.ssm, github.token_parameter)
    except ParameterUnset as error:
        raise DispatchError(f"no GitHub token to dispatch {github.workflow}: {error}") from None


def _read_record(effects: Effects, settings: WakeSettings) -> WakeRecord:
    raw = effects.ssm.get_parameter(Name=settings.record_parameter)["Parameter"]["Value"]
    try:
        return WakeRecord.from_json(json.loads(raw))
    except ValueError:
        return WakeRecord()


def _write_record(effects: Effects, settings: WakeSettings, record: WakeRecord) -> None:
    effects.ssm.put_parameter(
        Name=settings.record_parameter,
        Value=json.dumps(record.to_json()),
        Type="String",
        Overwrite=True,
    )


def _json(status: int, body: Mapping[str, Any]) -> Response:
    return _reply(status, json.dumps(body), "application/json")


def _reply(status: int, body: str, content_type: str) -> Response:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_type, "Cache-Control": "no-store"},
        "body": body,
    }


def lambda_handler(event: Mapping[str, Any], _context: Any) -> Response:
    """A function URL request, or the schedule's idle deep pause check (a refusal raises, so the
    run counts as an error and is retried)."""
    settings = WakeSettings.from_env(os.environ)
    effects = Effects.from_session(boto3.Session(), settings.pause_function_name)
    if dict(event) == CHECK_EVENT:
        return check_idle_deep_pause(settings, effects, datetime.now(UTC))
    return respond(event, settings, effects, datetime.now(UTC))

"""The wake endpoint end to end against moto: token, stop-paused resume, no-op, pause in progress,
the status until RTMP ingest answers a connect (a replayed real SRS answer), and the deep un-pause
against a stand-in GitHub API."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from ops.executor import Waits, run
from ops.handler import Settings, execute
from ops.secure_parameter import UNSET
from ops.wake import WAKE_GIVE_UP, WakeRecord, advance, decide_wake, observe
from ops.wake_handler import (
    ConfigError,
    Effects,
    GithubDispatch,
    WakeSettings,
    coordinator_ready,
    respond,
)
from tests.ops.stand_ins import GithubStandIn, Origin, command_answer
from tests.ops.support import DEV, REGION

TOKEN = "wake-token-" + "x" * 40
GITHUB_TOKEN = "github-pat-1234"
RECORD = "/streamr/dev/wake"
TOKEN_PARAMETER = "/streamr-dev-wake/token"
GITHUB_PARAMETER = "/streamr-dev-wake/github-token"
START = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)
FAST = Waits(rds=5, ec2=5, interval=0)


class Endpoint:
    """The wake function over the moto account; a resume event runs the pause function's code."""

    def __init__(self, account, origin: Origin, deep: bool = False, github_url: str | None = None):
        session = boto3.Session(region_name=REGION)
        self.account = account
        self.ssm = session.client("ssm")
        self.ssm.put_parameter(Name=TOKEN_PARAMETER, Value=TOKEN, Type="SecureString")
        self.ssm.put_parameter(Name=GITHUB_PARAMETER, Value=GITHUB_TOKEN, Type="SecureString")
        self.ssm.put_parameter(Name=RECORD, Value="{}", Type="String")
        self.events: list[dict[str, Any]] = []
        self.now = START
        self.settings = WakeSettings(
            DEV,
            TOKEN_PARAMETER,
            RECORD,
            "streamr-dev-pause",
            deep,
            "127.0.0.1",
            None
            if github_url is None
            else GithubDispatch(
                "streamr/streamrp2p", "pause.yml", "main", GITHUB_PARAMETER, github_url
            ),
        )
        self.effects = Effects(
            account.clients, self.ssm, self.deliver, origin.readiness,
            coordinator_ready,
        )  # fmt: skip

    def deliver(self, payload: str) -> None:
        """What Lambda does with the asynchronous event: run the pause function's handler."""
        event = json.loads(payload)
        self.events.append(event)
        settings = Settings(DEV, None, FAST)
        result = execute(event, settings, self.account.clients, self.now)
        assert not result.failed

    def call(self, method: str, path: str, token: str | None = TOKEN) -> tuple[int, Any]:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        event = {
            "rawPath": path,
            "requestContext": {"http": {"method": method}},
            "headers": headers,
        }
        answer = respond(event, self.settings, self.effects, self.now)
        body = answer["body"]
        if answer["headers"]["Content-Type"] == "application/json":
            body = json.loads(body)
        return answer["statusCode"], body


def stop_pause(account) -> None:
    run(
        account.clients, DEV, None, START, operation="pause", requested="paused",
        waits=FAST, sleep=lambda _s: None,
    )  # fmt: skip


def test_a_wake_resumes_a_stop_paused_platform_and_times_it_until_rtmp_is_ready(account, origin):
    endpoint = Endpoint(account, origin)
    stop_pause(account)
    assert endpoint.call("GET", "/status")[1]["state"] == "paused"

    status, body = endpoint.call("POST", "/wake")

    assert status == 202
    assert body["action"] == "resume"
    assert endpoint.events == [{"action": "resume", "dry_run": False}]
    assert account.asg_sizes("streamr-dev-coordinator") == (1, 2, 4)
    assert account.instance_state("streamr-dev-headscale") == "running"
    assert account.instance_state("streamr-dev-srs") == "running"
    assert account.db_state("streamr-dev-db") == "available"
    assert account.asg_sizes("streamr-prod-coordinator") == (1, 2, 4)

    # Everything runs, but RTMP ingest refuses connections yet: still waking, since the wake.
    endpoint.now = START + timedelta(minutes=2)
    status, body = endpoint.call("GET", "/status")
    assert (status, body["state"], body["since"]) == (200, "waking", START.isoformat())
    assert body["ingest_ready"] is False and body["wake_seconds"] is None
    assert "ingest not ready (RTMP port: Connection refused)" in body["note"]

    # Accepting a connection is not enough: a connect answered with _error is still waking.
    recorded = origin.answer
    origin.answer = command_answer("_error", "NetConnection.Connect.Rejected")
    origin.open()
    endpoint.now = START + timedelta(minutes=3)
    body = endpoint.call("GET", "/status")[1]
    assert (body["state"], body["ingest_ready"]) == ("waking", False)
    assert "RTMP connect answered _error NetConnection.Connect.Rejected" in body["note"]

    # What real SRS 6 answers (the recording): running, timed until then.
    origin.answer = recorded
    endpoint.now = START + timedelta(minutes=4, seconds=30)
    body = endpoint.call("GET", "/status")[1]
    assert body["state"] == "running"
    assert body["ingest_ready"] is True
    assert body["wake_seconds"] == 270.0
    assert body["since"] == endpoint.now.isoformat()

    # Later looks keep the figure and the time it went live.
    endpoint.now += timedelta(minutes=10)
    later = endpoint.call("GET", "/status")[1]
    assert (later["wake_seconds"], later["since"]) == (270.0, body["since"])


def test_running_also_needs_the_coordinator_ready_when_its_url_is_known(
    account, origin, coordinator
):
    """SRS's on_publish hook asks the coordinator: RTMP answering alone is not a publish."""
    endpoint = Endpoint(account, origin)
    origin.open()

    endpoint.settings = replace(endpoint.settings, coordinator_url="http://127.0.0.1:9")
    body = endpoint.call("GET", "/status")[1]
    assert (body["state"], body["ingest_ready"]) == ("waking", False)
    assert "ingest not ready (coordinator /ready: [Errno 111] Connection refused)" in body["note"]

    endpoint.settings = replace(endpoint.settings, coordinator_url=coordinator.url)
    coordinator.ready_status = 503
    body = endpoint.call("GET", "/status")[1]
    assert (body["state"], body["ingest_ready"]) == ("waking", False)
    assert "ingest not ready (coordinator /ready answered 503)" in body["note"]

    coordinator.ready_status = 200
    body = endpoint.call("GET", "/status")[1]
    assert (body["state"], body["ingest_ready"]) == ("running", True)


def test_a_wake_while_running_changes_nothing(account, origin):
    endpoint = Endpoint(account, origin)
    origin.open()
    account.calls.clear()

    status, body = endpoint.call("POST", "/wake")

    assert status == 200
    assert body["action"] == "none"
    assert body["status"]["state"] == "running"
    assert endpoint.events == []
    assert account.mutating_calls() == []


def test_a_wake_during_a_pause_in_progress_is_refused_and_the_pause_completes(account, origin):
    endpoint = Endpoint(account, origin)
    answers: list[tuple[int, Any]] = []

    def slow_stop(**_kwargs):
        # After the stop call, the database reports "stopping" (moto stops at once; AWS does not).
        def stopping(**_inner):
            page = {
                "DBInstances": [
                    {
                        "DBInstanceIdentifier": "streamr-dev-db",
                        "DBInstanceArn": "arn:aws:rds:eu-west-1:123456789012:db:streamr-dev-db",
                        "DBInstanceStatus": "stopping",
                        "TagList": [
                            {"Key": "Project", "Value": "streamr"},
                            {"Key": "Stage", "Value": "dev"},
                        ],
                    }
                ],
                "ResponseMetadata": {},
            }
            return SimpleNamespace(status_code=200, headers={}), page

        account.clients.rds.meta.events.register("before-call.rds.DescribeDBInstances", stopping)

    account.clients.rds.meta.events.register("after-call.rds.StopDBInstance", slow_stop)
    # The wake arrives while the pause run waits for the database to stop.
    result = run(
        account.clients, DEV, None, START, operation="pause", requested="paused",
        waits=Waits(rds=10, ec2=5, interval=1), sleep=lambda _s: answers.append(
            endpoint.call("POST", "/wake")
        ), clock=iter(range(100)).__next__,
    )  # fmt: skip

    status, body = answers[0]
    assert status == 409
    assert body["action"] == "none"
    assert body["status"]["state"] == "pausing"
    assert "pause is in progress" in body["reason"]
    assert endpoint.events == []
    # The pause went on undisturbed: everything it stopped stays stopped.
    assert account.asg_sizes("streamr-dev-coordinator") == (0, 0, 0)
    assert account.instance_state("streamr-dev-srs") == "stopped"
    assert [item.action for item in result.items if item.kind == "ec2"] == ["stop", "stop"]


@pytest.mark.parametrize(
    ("token", "expected"), [(None, 401), ("", 401), ("wrong", 403), (TOKEN + "x", 403)]
)
def test_a_missing_or_wrong_token_is_refused_and_starts_nothing(account, origin, token, expected):
    endpoint = Endpoint(account, origin)
    stop_pause(account)
    account.calls.clear()

    for path, method in (("/wake", "POST"), ("/status", "GET")):
        status, body = endpoint.call(method, path, token)
        assert status == expected
        assert "state" not in body

    assert endpoint.events == []
    assert account.calls == []  # not even a look at the resources
    assert account.asg_sizes("streamr-dev-coordinator") == (0, 0, 0)


def test_a_deep_wake_dispatches_the_pause_workflow(account, origin, github):
    endpoint = Endpoint(account, origin, deep=True, github_url=github.url)
    stop_pause(account)  # a deep pause leaves the group at zero and the database stopped
    account.calls.clear()

    status, body = endpoint.call("POST", "/wake")

    assert (status, body["action"], body["status"]["state"]) == (202, "dispatch", "waking")
    [request] = github.requests
    assert request["method"] == "POST"
    assert request["path"] == "/repos/streamr/streamrp2p/actions/workflows/pause.yml/dispatches"
    assert request["headers"]["Authorization"] == f"Bearer {GITHUB_TOKEN}"
    assert request["headers"]["Accept"] == "application/vnd.github+json"
    assert request["body"] == {"ref": "main", "inputs": {"stack": "dev", "action": "resume"}}
    assert endpoint.events == [] and account.mutating_calls() == []

    # A second wake while the workflow runs does not dispatch again.
    endpoint.now += timedelta(minutes=5)
    status, body = endpoint.call("POST", "/wake")
    assert (status, body["status"]["state"], len(github.requests)) == (202, "waking", 1)
    assert body["status"]["since"] == START.isoformat()

    # The workflow's `pulumi up` redeploys the endpoint un-paused; the database and hosts are
    # still stopped, so the next look asks the pause function for the resume, once.
    endpoint.settings = replace(endpoint.settings, deep_paused=False)
    endpoint.now = START + timedelta(minutes=12)
    assert endpoint.call("GET", "/status")[1]["state"] == "waking"
    assert endpoint.events == [{"action": "resume", "dry_run": False}]
    assert account.db_state("streamr-dev-db") == "available"
    assert account.instance_state("streamr-dev-srs") == "running"
    origin.open()
    endpoint.now = START + timedelta(minutes=14)
    body = endpoint.call("GET", "/status")[1]
    assert (body["state"], body["wake_seconds"]) == ("running", 840.0)
    assert len(endpoint.events) == 1 and len(github.requests) == 1


def test_a_deep_wake_github_refuses_is_a_502_naming_its_answer(account, origin):
    refusing = GithubStandIn(answer=401)
    try:
        endpoint = Endpoint(account, origin, deep=True, github_url=refusing.url)
        stop_pause(account)
        status, body = endpoint.call("POST", "/wake")
    finally:
        refusing.server.shutdown()
    assert status == 502
    assert "401" in body["error"] and "Bad credentials" in body["error"]
    # Nothing is remembered as waking, so the next wake tries again.
    assert endpoint.call("GET", "/status")[1]["state"] == "paused"


def test_a_deep_wake_before_the_github_token_is_stored_says_how_to_store_it(
    account, origin, github
):
    """The program creates the token's parameter as `unset`; the operator stores the value."""
    endpoint = Endpoint(account, origin, deep=True, github_url=github.url)
    endpoint.ssm.put_parameter(
        Name=GITHUB_PARAMETER, Value=UNSET, Type="SecureString", Overwrite=True
    )
    stop_pause(account)
    status, body = endpoint.call("POST", "/wake")
    assert status == 502
    assert f"aws ssm put-parameter --name {GITHUB_PARAMETER} --type SecureString" in body["error"]
    assert github.requests == []
    assert endpoint.call("GET", "/status")[1]["state"] == "paused"


def test_a_deep_wake_without_the_github_workflow_says_what_is_missing(account, origin):
    endpoint = Endpoint(account, origin, deep=True)
    stop_pause(account)
    status, body = endpoint.call("POST", "/wake")
    assert status == 503
    assert "streamr:githubRepository" in body["error"]


def test_the_page_is_served_without_a_token_and_other_routes_are_404(account, origin):
    endpoint = Endpoint(account, origin)
    status, page = endpoint.call("GET", "/", token=None)
    assert status == 200
    assert 'fetch("status"' in page and 'fetch("wake", { method: "POST"' in page
    assert TOKEN not in page
    assert endpoint.call("GET", "/wake")[0] == 404


def test_observe_names_the_whole_stack_in_one_word(account):
    from ops.discovery import discover

    assert observe(discover(account.clients, DEV)) == "running"
    stop_pause(account)
    assert observe(discover(account.clients, DEV)) == "stopped"
    account.clients.ec2.start_instances(InstanceIds=[account.ids["streamr-dev-srs"]])
    assert observe(discover(account.clients, DEV)) == "mixed"


def test_a_wake_that_never_went_live_is_given_up_after_the_limit():
    record = WakeRecord("waking", START, START, None)
    later = START + WAKE_GIVE_UP + timedelta(seconds=1)
    record, status = advance(record, "stopped", None, False, later)
    assert status.state == "paused" and not record.pending
    assert decide_wake(status).action == "resume"


def test_an_unreadable_record_is_forgotten_not_fatal():
    assert WakeRecord.from_json({"state": "asleep"}) == WakeRecord()
    assert WakeRecord.from_json({"since": "yesterday"}) == WakeRecord()
    assert WakeRecord.from_json({"since": "2026-12-01T21:00:00"}) == WakeRecord()


ENV = {
    "PROJECT": "streamr",
    "STAGE": "dev",
    "WAKE_TOKEN_PARAMETER": "/streamr-dev-wake/token",
    "RECORD_PARAMETER": RECORD,
    "PAUSE_FUNCTION_NAME": "streamr-dev-pause",
    "DEEP_PAUSED": "false",
}


def test_settings_are_read_from_the_environment():
    settings = WakeSettings.from_env(
        {
            **ENV,
            "RTMP_HOST": "203.0.113.7",
            "COORDINATOR_URL": "https://streamr.example/",
            "GITHUB_REPOSITORY": "o/r",
            "GITHUB_WORKFLOW": "pause.yml",
            "GITHUB_REF": "main",
            "GITHUB_TOKEN_PARAMETER": "/streamr-dev-wake/github-token",
        }
    )
    assert settings.rtmp_host == "203.0.113.7" and not settings.deep_paused
    assert settings.coordinator_url == "https://streamr.example"
    assert settings.github == GithubDispatch(
        "o/r", "pause.yml", "main", "/streamr-dev-wake/github-token"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"PAUSE_FUNCTION_NAME": ""}, "missing environment variable(s): PAUSE_FUNCTION_NAME"),
        ({"DEEP_PAUSED": "yes"}, "DEEP_PAUSED is 'yes'; allowed values: true, false"),
        ({"GITHUB_REPOSITORY": "o/r"}, "GITHUB_WORKFLOW, GITHUB_REF, GITHUB_TOKEN_PARAMETER"),
        ({"COORDINATOR_URL": "streamr.example"}, "COORDINATOR_URL is 'streamr.example'; it must"),
    ],
)
def test_settings_errors_name_the_variable(change, message):
    with pytest.raises(ConfigError) as raised:
        WakeSettings.from_env({**ENV, **change})
    assert message in str(raised.value)

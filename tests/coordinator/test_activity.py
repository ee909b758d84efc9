"""The platform's activity for the idle pause: only the ops token reads it; live streams and
viewers make it "now"; otherwise the last broadcast or session, never before the process started."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from streamr_coordinator.app import create_app
from streamr_coordinator.settings import Settings

from ops.idle import Activity

from .conftest import BOOTSTRAP, HOOK_SECRET
from .support import Api, srs_event

OPS_TOKEN = "test-ops-token-0123456789abcdef012345"
PATH = "/api/v1/ops/activity"
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}


@pytest.fixture
def ops_api(settings: Settings) -> Iterator[Api]:
    with_token = type(settings)(**{**settings.model_dump(), "ops_token": OPS_TOKEN})
    with TestClient(create_app(with_token)) as client:
        yield Api(client, hook_secret=HOOK_SECRET, bootstrap_token=BOOTSTRAP)


def _activity(api: Api) -> dict:
    response = api.client.get(PATH, headers=OPS)
    assert response.status_code == 200, response.text
    body = response.json()
    # The ops Lambda reads this very answer (ops/idle.py).
    assert Activity.from_json(body).live_streams == body["live_streams"]
    body["last_activity"] = datetime.fromisoformat(body["last_activity"])
    return body


def test_only_the_ops_token_reads_activity(ops_api: Api, client: TestClient) -> None:
    admin = ops_api.account("admin")
    assert ops_api.client.get(PATH).status_code == 401
    assert ops_api.client.get(PATH, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert ops_api.client.get(PATH, headers=admin.auth).status_code == 401
    # The ops token is no session token either.
    assert ops_api.client.get("/api/v1/streams", headers=OPS).status_code == 401
    # Without STREAMR_OPS_TOKEN the endpoint is closed to everyone.
    closed = client.get(PATH, headers=OPS)
    assert closed.status_code == 403
    assert closed.json() == {"detail": "no ops token is configured"}


def test_short_ops_tokens_are_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="ops_token"):
        type(settings)(**{**settings.model_dump(), "ops_token": "short"})


def test_live_streams_and_viewers_are_activity_now_and_the_last_one_is_remembered(
    ops_api: Api, sql
) -> None:
    idle = _activity(ops_api)
    assert (idle["live_streams"], idle["viewers"]) == (0, 0)
    started = idle["last_activity"]  # nothing happened yet: the process start

    streamer = ops_api.account("streamer")
    stream = ops_api.stream(streamer, "evening")
    ops_api.publish(stream)
    live = _activity(ops_api)
    assert live["live_streams"] == 1 and live["last_activity"] >= started
    viewer = srs_event("on_play", "evening", client_id="v1")
    assert ops_api.hook("on_play", viewer).json() == {"code": 0}
    assert _activity(ops_api)["viewers"] == 1

    ops_api.hook("on_stop", srs_event("on_stop", "evening", client_id="v1"))
    key = f"?key={stream['stream_key']}"
    ops_api.hook("on_unpublish", srs_event("on_unpublish", "evening", key))
    after = _activity(ops_api)
    assert (after["live_streams"], after["viewers"]) == (0, 0)
    ended = sql("SELECT max(ended_at) FROM broadcasts")[0][0]
    assert after["last_activity"] == ended

    # Activity from before this process started counts as the start (a woken platform is active).
    two_days = "started_at = started_at - interval '2d', ended_at = ended_at - interval '2d'"
    sql(f"UPDATE broadcasts SET {two_days}")  # noqa: S608 - constant text
    sql(f"UPDATE viewer_sessions SET {two_days}")  # noqa: S608 - constant text
    assert _activity(ops_api)["last_activity"] == started

"""SRS hooks: who may publish, viewer sessions per serving server, every real captured payload."""

from __future__ import annotations

import json

import pytest

from tests import reference

from .support import Api, hook_auth, srs_event

CAPTURED = reference.SRS / "hooks.jsonl"
ALLOW = {"code": 0}


def allowed(response) -> bool:
    """SRS's own rule: HTTP 200 and a JSON object whose `code` is the integer 0."""
    if response.status_code != 200:
        return False
    body = response.json()
    return isinstance(body, dict) and type(body.get("code")) is int and body["code"] == 0


@pytest.fixture
def show(api: Api):
    streamer = api.account("streamer")
    created = api.stream(streamer, "evening-show")
    return streamer, created


def test_right_key_publishes_and_marks_live(api: Api, show, sql) -> None:
    _, created = show
    response = api.hook(
        "on_publish", srs_event("on_publish", "evening-show", f"?key={created['stream_key']}")
    )
    assert allowed(response)
    assert response.json() == ALLOW
    assert sql("SELECT is_live FROM streams WHERE name = 'evening-show'") == [(True,)]
    live = api.client.get("/api/v1/streams/live").json()
    assert live == [{"name": "evening-show", "title": "", "live_since": live[0]["live_since"]}]

    assert allowed(api.hook("on_unpublish", srs_event("on_unpublish", "evening-show")))
    assert sql("SELECT is_live FROM streams WHERE name = 'evening-show'") == [(False,)]


@pytest.mark.parametrize(
    "param",
    ["", "?key=", "?key=sk_wrong", "?other=1"],
    ids=["no-param", "empty-key", "wrong-key", "no-key"],
)
def test_wrong_or_missing_key_is_denied(api: Api, show, param: str, sql) -> None:
    response = api.hook("on_publish", srs_event("on_publish", "evening-show", param))
    assert not allowed(response)
    assert response.status_code == 403
    assert sql("SELECT is_live FROM streams") == [(False,)]


def test_another_streams_key_is_denied(api: Api, show) -> None:
    streamer, _ = show
    other = api.stream(streamer, "other-show")
    response = api.hook(
        "on_publish", srs_event("on_publish", "evening-show", f"?key={other['stream_key']}")
    )
    assert not allowed(response)


def test_disabled_stream_is_denied(api: Api, show) -> None:
    streamer, created = show
    api.client.patch(
        f"/api/v1/streams/{created['id']}", json={"enabled": False}, headers=streamer.auth
    )
    response = api.hook(
        "on_publish", srs_event("on_publish", "evening-show", f"?key={created['stream_key']}")
    )
    assert not allowed(response)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing Authorization: Bearer"),
        (hook_auth("wrong"), "wrong hook secret"),
        (hook_auth("stn_forged"), "invalid, expired or revoked node token"),
        ({"Authorization": "Basic d3Jvbmc6d3Jvbmc="}, "missing Authorization: Bearer"),
    ],
)
def test_missing_or_wrong_hook_credential_is_denied(api: Api, show, headers, reason) -> None:
    _, created = show
    body = srs_event("on_publish", "evening-show", f"?key={created['stream_key']}")
    response = api.client.post("/hooks/srs/on_publish", json=body, headers=headers)
    assert response.status_code == 401
    assert not allowed(response)
    assert reason in response.json()["detail"]


@pytest.mark.parametrize("parameter", ["secret", "node_token"])
def test_a_credential_in_the_url_is_refused_even_when_right(api: Api, show, parameter) -> None:
    """SRS logs hook URLs and the ALB logs request lines: the query form of the credential is gone,
    and a host still configured with it is told how to send it."""
    _, created = show
    body = srs_event("on_publish", "evening-show", f"?key={created['stream_key']}")
    response = api.client.post(
        "/hooks/srs/on_publish",
        json=body,
        params={parameter: api.hook_secret},
        headers=hook_auth(api.hook_secret),
    )
    assert response.status_code == 401
    assert response.json()["detail"] == (
        f"{parameter} in the URL is refused (URLs are logged): send it as Authorization: Bearer, "
        "as srs/hook_relay.py does"
    )


def test_rotated_key_replaces_the_old_one(api: Api, show) -> None:
    streamer, created = show
    rotated = api.client.post(
        f"/api/v1/streams/{created['id']}/rotate-key", headers=streamer.auth
    ).json()
    old = api.hook(
        "on_publish", srs_event("on_publish", "evening-show", f"?key={created['stream_key']}")
    )
    new = api.hook(
        "on_publish", srs_event("on_publish", "evening-show", f"?key={rotated['stream_key']}")
    )
    assert (allowed(old), allowed(new)) == (False, True)


def test_an_edge_can_report_plays_but_never_publish(api: Api, show, sql) -> None:
    _, created = show
    friend = api.account("friend")
    node = api.node(friend, "pi-in-the-attic")
    edge = {"node_token": node["node_token"]}
    body = srs_event("on_publish", "evening-show", f"?key={created['stream_key']}")
    assert api.hook("on_publish", body, **edge).status_code == 403
    assert (
        api.hook("on_unpublish", srs_event("on_unpublish", "evening-show"), **edge).status_code
        == 403
    )
    assert api.hook("heartbeat", {"server": "x", "service": "y"}, **edge).status_code == 403

    api.publish(created)
    api.edge_online(node)
    ticket = f"?ticket={api.ticket('evening-show', node['id'])}"
    assert allowed(
        api.hook("on_play", srs_event("on_play", "evening-show", ticket, client_id="v1"), **edge)
    )
    assert allowed(api.hook("on_play", srs_event("on_play", "evening-show.m3u8", client_id="v2")))
    # A repeated on_play for the same connection opens nothing new.
    assert allowed(
        api.hook("on_play", srs_event("on_play", "evening-show", ticket, client_id="v1"), **edge)
    )
    sessions = sql("SELECT node_id, client_id, ended_at IS NULL FROM viewer_sessions ORDER BY id")
    assert sessions == [(node["id"], "v1", True), (None, "v2", True)]

    assert allowed(
        api.hook("on_stop", srs_event("on_stop", "evening-show", client_id="v1"), **edge)
    )
    sessions = sql("SELECT node_id, ended_at IS NULL FROM viewer_sessions ORDER BY id")
    assert sessions == [(node["id"], False), (None, True)]


def test_an_edges_viewer_without_a_ticket_is_refused(api: Api, show) -> None:
    _, created = show
    api.publish(created)
    node = api.node(api.account("friend"), "no-tickets")
    answer = api.hook(
        "on_play", srs_event("on_play", "evening-show"), node_token=node["node_token"]
    )
    assert answer.status_code == 403
    assert answer.json()["detail"] == (
        "no valid ticket: get this edge's URL from /api/v1/play/<stream>"
    )


@pytest.mark.parametrize("suffix", ["", ".flv", ".m3u8"])
def test_any_stream_name_a_hook_carries_may_have_an_extension(
    api: Api, show, sql, suffix: str
) -> None:
    """SRS keeps the extension of the URL played (`name.m3u8`), and an SRS 6 edge pulling for an
    HTTP-FLV viewer may ask the origin for `name.flv` (SRS #4215)."""
    _, created = show
    key = f"?key={created['stream_key']}"
    assert allowed(api.hook("on_publish", srs_event("on_publish", f"evening-show{suffix}", key)))
    node = api.node(api.account("friend"), "suffixes")
    api.edge_online(node)
    ticket = f"?ticket={api.ticket('evening-show', node['id'])}"
    name = f"evening-show{suffix}"
    edge = {"node_token": node["node_token"]}
    assert allowed(api.hook("on_play", srs_event("on_play", name, ticket, "viewer"), **edge))
    assert allowed(api.hook("on_play", srs_event("on_play", name, ticket, "pull")))
    assert allowed(api.hook("on_play", srs_event("on_play", name, "", "origin-viewer")))
    assert sql("SELECT count(*) FROM edge_pulls WHERE ended_at IS NULL") == [(1,)]
    assert sql("SELECT count(*) FROM viewer_sessions WHERE ended_at IS NULL") == [(2,)]
    for client, query in (("viewer", edge), ("pull", {}), ("origin-viewer", {})):
        assert allowed(api.hook("on_stop", srs_event("on_stop", name, client_id=client), **query))
    assert sql("SELECT count(*) FROM viewer_sessions WHERE ended_at IS NULL") == [(0,)]
    assert sql("SELECT count(*) FROM edge_pulls WHERE ended_at IS NULL") == [(0,)]
    assert allowed(api.hook("on_unpublish", srs_event("on_unpublish", name)))
    assert sql("SELECT is_live FROM streams") == [(False,)]


def test_play_of_unknown_stream_is_denied(api: Api) -> None:
    assert not allowed(api.hook("on_play", srs_event("on_play", "nobody-streams-this")))


def _captured() -> list[dict]:
    return [json.loads(line) for line in CAPTURED.read_text().splitlines() if line.strip()]


def test_every_captured_srs_payload_gets_the_right_answer(api: Api, sql) -> None:
    """419 real requests from SRS 6 and 7. Unknown streams: publish and play denied, the rest
    acknowledged. Then with the streams registered and their keys in `param`: all allowed."""
    captured = _captured()
    assert len(captured) == 419

    def send(row: dict, body: dict | None = None):
        action = row["path"].rsplit("/", 1)[-1] if row["method"] == "POST" else None
        if row["method"] == "GET":
            # Captured when the secret rode in the query; the relay's way carries none.
            segment = row["path"].split("/hooks/on_hls_notify/", 1)[1].split("?", 1)[0]
            return api.client.get(
                f"/hooks/srs/on_hls_notify/{segment}", headers=hook_auth(api.hook_secret)
            )
        assert action == row["body"]["action"]
        return api.hook(action, body or row["body"])

    gating = {"on_publish", "on_play"}
    for row in captured:
        response = send(row)
        action = row["body"]["action"] if row["body"] else "on_hls_notify"
        assert allowed(response) is (action not in gating), (row["tag"], action, response.text)

    streamer = api.account("streamer")
    keys = {}
    for row in captured:
        if row["body"] and row["body"]["action"] == "on_publish":
            name = row["body"]["stream"]
            if name not in keys:
                keys[name] = api.stream(streamer, name.replace(".", "-"))["stream_key"]
    # Stream names SRS saw with a dot are not valid names here; register those under their
    # dashed form and publish them so.
    for row in captured:
        body = row["body"]
        if not body or body["action"] not in gating:
            continue
        name = body["stream"].removesuffix(".m3u8")
        if name not in keys:
            continue
        replay = {**body, "stream": body["stream"].replace(name, name.replace(".", "-"))}
        if body["action"] == "on_publish":
            replay["param"] = f"?key={keys[name]}"
        assert allowed(send(row, replay)), (row["tag"], replay)
    assert sql("SELECT count(*) FROM viewer_sessions")[0][0] > 0


def test_no_route_takes_a_credential_in_its_query(api: Api) -> None:
    """The ALB logs each request line with its query (prod keeps them 90 days): no operation reads
    a secret, token, key, password or ticket from the query string."""
    credential = ("secret", "token", "key", "password", "ticket")
    in_query = [
        (path, parameter["name"])
        for path, operations in api.client.app.openapi()["paths"].items()
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and any(word in parameter["name"] for word in credential)
    ]
    assert in_query == []

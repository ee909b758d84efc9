"""Viewer invites against the spec-derived fake Headscale: a streamer creates one; opening it mints
a single-use, ephemeral `tag:viewer` key that expires in minutes (never after the invite); it
stops working when used up, expired or revoked (revoking removes the machines that joined with
it); keys and codes never reach the logs; and the same life cycle works through the pages."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from streamr_coordinator.app import create_app
from streamr_coordinator.security import keyed_hash
from streamr_coordinator.settings import Settings

from .conftest import HOOK_SECRET, PEPPER
from .support import PASSWORD, Account, Api
from .test_mesh_client import API_KEY, FakeHeadscale
from .test_mesh_client import fake as fake

OPEN = "/api/v1/invites/open"


def _meshed(settings: Settings, fake: FakeHeadscale, **changes) -> Settings:
    update = {"headscale_url": fake.url, "headscale_api_key": SecretStr(API_KEY), **changes}  # type: ignore[attr-defined]
    return settings.model_copy(update=update)


@pytest.fixture
def mesh_api(settings: Settings, fake: FakeHeadscale) -> Iterator[Api]:
    with TestClient(create_app(_meshed(settings, fake))) as client:
        yield Api(client, hook_secret=HOOK_SECRET, bootstrap_token=settings.admin_bootstrap_token)


def _invite(api: Api, owner: Account, **fields) -> dict:
    response = api.client.post("/api/v1/invites", json=fields, headers=owner.auth)
    assert response.status_code == 201, response.text
    return response.json()


def _listed(api: Api, owner: Account) -> dict[int, dict]:
    response = api.client.get("/api/v1/invites", headers=owner.auth)
    assert response.status_code == 200, response.text
    return {invite["id"]: invite for invite in response.json()}


def _key_requests(fake: FakeHeadscale) -> list[dict]:
    return [body for method, path, body in fake.requests if path == "/api/v1/preauthkey"]


def test_opening_an_invite_gives_a_single_use_ephemeral_viewer_key(
    mesh_api: Api, fake: FakeHeadscale, sql
) -> None:
    streamer = mesh_api.account("streamer")
    stream = mesh_api.stream(streamer, "night-show")
    invite = _invite(mesh_api, streamer, stream_id=stream["id"], max_uses=3, expires_in_hours=48)
    assert invite["stream_name"] == "night-show"
    assert (invite["uses"], invite["max_uses"], invite["state"]) == (0, 3, "open")
    link = urlsplit(invite["link"])
    assert link.path == "/invite"
    assert parse_qs(link.query)["code"] == [invite["code"]]
    assert fake.requests == []  # creating an invite mints nothing yet

    before = datetime.now(UTC)
    response = mesh_api.client.post(OPEN, json={"code": invite["code"]})
    assert response.status_code == 200, response.text
    key = response.json()
    (request,) = _key_requests(fake)
    assert request["aclTags"] == ["tag:viewer"]
    assert (request["reusable"], request["ephemeral"]) == (False, True)
    assert "user" not in request  # a tag-only key: the device belongs to nobody
    expires = datetime.fromisoformat(key["expires_at"])
    assert before + timedelta(minutes=14) < expires <= datetime.now(UTC) + timedelta(minutes=15)
    assert key["preauth_key"] == fake.keys[0]["key"]
    assert (key["tags"], key["ephemeral"]) == (["tag:viewer"], True)
    assert key["login_server"] == fake.url  # type: ignore[attr-defined]
    assert key["command"] == (
        f"tailscale up --login-server {fake.url} --auth-key {key['preauth_key']}"  # type: ignore[attr-defined]
    )
    assert key["watch"] == [{"stream": "night-show", "url": "http://testserver/watch/night-show"}]
    assert _listed(mesh_api, streamer)[invite["id"]]["uses"] == 1
    assert sql("SELECT mesh_key_id FROM invite_keys") == [(1,)]
    # Only the keyed hash of the code is stored.
    assert sql("SELECT code_hash FROM invites") == [(keyed_hash(PEPPER, invite["code"]),)]


def test_a_key_never_outlives_its_invite(settings: Settings, fake: FakeHeadscale) -> None:
    with TestClient(create_app(_meshed(settings, fake, viewer_key_ttl_minutes=180))) as client:
        api = Api(client, hook_secret=HOOK_SECRET, bootstrap_token=settings.admin_bootstrap_token)
        streamer = api.account("streamer")
        api.stream(streamer, "short-lived")
        invite = _invite(api, streamer, expires_in_hours=1)
        key = client.post(OPEN, json={"code": invite["code"]}).json()
    assert invite["stream_name"] is None  # for all of the streamer's streams
    assert key["watch"] == [{"stream": "short-lived", "url": "http://testserver/watch/short-lived"}]
    invite_end = datetime.fromisoformat(invite["expires_at"])
    assert abs(datetime.fromisoformat(key["expires_at"]) - invite_end) < timedelta(seconds=1)


def test_a_used_up_invite_is_refused_and_mints_nothing_more(
    mesh_api: Api, fake: FakeHeadscale
) -> None:
    streamer = mesh_api.account("streamer")
    invite = _invite(mesh_api, streamer, max_uses=2)
    keys = {
        mesh_api.client.post(OPEN, json={"code": invite["code"]}).json()["preauth_key"]
        for _ in range(2)
    }
    assert len(keys) == 2  # a new single-use key per opening
    response = mesh_api.client.post(OPEN, json={"code": invite["code"]})
    assert response.status_code == 410
    assert response.json()["detail"] == ("this invite is used up: ask the streamer for a new one")
    assert len(_key_requests(fake)) == 2
    listed = _listed(mesh_api, streamer)[invite["id"]]
    assert (listed["uses"], listed["state"]) == (2, "used up")


def test_parallel_openings_never_exceed_the_maximum(mesh_api: Api, fake: FakeHeadscale) -> None:
    streamer = mesh_api.account("streamer")
    invite = _invite(mesh_api, streamer, max_uses=3)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(
                lambda _: mesh_api.client.post(OPEN, json={"code": invite["code"]}).status_code,
                range(8),
            )
        )
    assert sorted(answers) == [200] * 3 + [410] * 5
    assert len(_key_requests(fake)) == 3
    assert _listed(mesh_api, streamer)[invite["id"]]["uses"] == 3


def test_an_expired_invite_is_refused(mesh_api: Api, fake: FakeHeadscale, sql) -> None:
    streamer = mesh_api.account("streamer")
    invite = _invite(mesh_api, streamer)
    sql("UPDATE invites SET expires_at = now() - interval '1 second' WHERE id = :i", i=invite["id"])
    response = mesh_api.client.post(OPEN, json={"code": invite["code"]})
    assert response.status_code == 410
    assert response.json()["detail"].startswith("this invite is expired")
    assert _key_requests(fake) == []
    assert _listed(mesh_api, streamer)[invite["id"]]["state"] == "expired"


def test_revoking_stops_the_invite_and_removes_the_devices_that_joined_with_it(
    mesh_api: Api, fake: FakeHeadscale, sql
) -> None:
    streamer = mesh_api.account("streamer")
    revoked, kept = _invite(mesh_api, streamer), _invite(mesh_api, streamer)
    for invite in (revoked, revoked, kept):
        assert mesh_api.client.post(OPEN, json={"code": invite["code"]}).status_code == 200
    # Each key joined one device (as Headscale lists it), and a friend's node is on the mesh too.
    for mesh_node_id, key_id in ((21, 1), (22, 2), (23, 3)):
        fake.add_node(
            mesh_node_id, f"viewer-{mesh_node_id}", ["tag:viewer"], f"100.64.1.{mesh_node_id}"
        )
        fake.nodes[mesh_node_id]["preAuthKey"] = fake.keys[key_id - 1]
    fake.add_node(7, "attic-pi", ["tag:friend"], "100.64.0.7")

    other = mesh_api.account("streamer")
    url = f"/api/v1/invites/{revoked['id']}"
    assert mesh_api.client.delete(url, headers=other.auth).status_code == 404
    response = mesh_api.client.delete(url, headers=streamer.auth)
    assert response.status_code == 200, response.text
    assert (response.json()["state"], response.json()["machines_removed"]) == ("revoked", 2)
    assert set(fake.nodes) == {23, 7}
    refused = mesh_api.client.post(OPEN, json={"code": revoked["code"]})
    assert refused.status_code == 410
    assert refused.json()["detail"].startswith("this invite is revoked")
    assert mesh_api.client.post(OPEN, json={"code": kept["code"]}).status_code == 200
    assert sql("SELECT count(*) FROM invite_keys WHERE invite_id = :i", i=revoked["id"]) == [(0,)]


def test_revoking_with_the_mesh_down_still_revokes(mesh_api: Api, fake: FakeHeadscale) -> None:
    streamer = mesh_api.account("streamer")
    invite = _invite(mesh_api, streamer)
    assert mesh_api.client.post(OPEN, json={"code": invite["code"]}).status_code == 200
    fake.script(503, {"code": 14, "message": "unavailable"}, times=3)
    response = mesh_api.client.delete(f"/api/v1/invites/{invite['id']}", headers=streamer.auth)
    assert response.status_code == 503
    assert _listed(mesh_api, streamer)[invite["id"]]["state"] == "revoked"
    assert mesh_api.client.post(OPEN, json={"code": invite["code"]}).status_code == 410
    retry = mesh_api.client.delete(f"/api/v1/invites/{invite['id']}", headers=streamer.auth)
    assert retry.status_code == 200


def test_a_mesh_failure_gives_the_use_back(mesh_api: Api, fake: FakeHeadscale) -> None:
    streamer = mesh_api.account("streamer")
    invite = _invite(mesh_api, streamer, max_uses=1)
    fake.script(503, {"code": 14, "message": "unavailable"}, times=3)
    response = mesh_api.client.post(OPEN, json={"code": invite["code"]})
    assert response.status_code == 503
    assert _listed(mesh_api, streamer)[invite["id"]]["uses"] == 0
    assert mesh_api.client.post(OPEN, json={"code": invite["code"]}).status_code == 200


def test_unknown_codes_and_other_streamers_streams_are_refused(mesh_api: Api) -> None:
    response = mesh_api.client.post(OPEN, json={"code": "inv_not-a-real-invite-code"})
    assert response.status_code == 404
    assert response.json()["detail"].startswith("no such invite")
    owner, other = mesh_api.account("streamer"), mesh_api.account("streamer")
    stream = mesh_api.stream(owner, "owned-show")
    response = mesh_api.client.post(
        "/api/v1/invites", json={"stream_id": stream["id"]}, headers=other.auth
    )
    assert response.status_code == 404
    friend = mesh_api.account("friend")
    assert mesh_api.client.post("/api/v1/invites", json={}, headers=friend.auth).status_code == 403
    too_many = mesh_api.client.post("/api/v1/invites", json={"max_uses": 0}, headers=owner.auth)
    assert too_many.status_code == 422
    assert "max_uses" in too_many.json()["detail"]


def test_without_a_mesh_an_invite_says_there_is_no_key(api: Api) -> None:
    streamer = api.account("streamer")
    invite = _invite(api, streamer)
    response = api.client.post(OPEN, json={"code": invite["code"]})
    assert response.status_code == 503
    assert "STREAMR_HEADSCALE_URL" in response.json()["detail"]
    assert _listed(api, streamer)[invite["id"]]["uses"] == 0


def test_keys_and_codes_never_reach_the_logs(
    mesh_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    streamer = mesh_api.account("streamer")
    invite = _invite(mesh_api, streamer)
    with caplog.at_level(logging.DEBUG):
        page = mesh_api.client.get("/invite", params={"code": invite["code"]})
        key = mesh_api.client.post(OPEN, json={"code": invite["code"]}).json()["preauth_key"]
        opened = mesh_api.client.post("/invite", data={"code": invite["code"]})
    assert page.status_code == opened.status_code == 200
    # Everything the coordinator logged (its access log, its Headscale client's httpx lines);
    # not the test's own client, whose httpx log names the URL it was asked to fetch.
    logged = "\n".join(
        f"{record.getMessage()} {getattr(record, 'fields', '')}"
        for record in caplog.records
        if "http://testserver" not in record.getMessage()
    )
    assert "/api/v1/invites/open" in logged  # the access log did run
    for secret in (invite["code"], key, _viewer_key(opened.text)):
        assert secret not in logged


def _viewer_key(html: str) -> str:
    return re.search(r'<code id="viewer-key" class="secret">([^<]+)</code>', html).group(1)


def _sign_in(client: TestClient, username: str) -> str:
    """Sign in through the form; the CSRF token of the session's pages."""
    form = client.get("/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    response = client.post(
        "/signin",
        data={"csrf_token": token, "username": username, "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get("/streamer")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def test_the_pages_create_open_and_revoke_an_invite(mesh_api: Api, fake: FakeHeadscale) -> None:
    streamer = mesh_api.account("streamer")
    stream = mesh_api.stream(streamer, "page-show")
    client = mesh_api.client
    csrf = _sign_in(client, streamer.username)
    assert 'href="/watch/page-show"' in client.get("/streamer").text

    created = client.post(
        "/streamer/invites",
        data={"csrf_token": csrf, "stream": str(stream["id"]), "hours": "2", "max_uses": "1"},
    )
    assert created.status_code == 200, created.text
    link = re.search(r'<code id="new-invite-link" class="secret">([^<]+)</code>', created.text)
    code = parse_qs(urlsplit(link.group(1)).query)["code"][0]
    assert 'id="invite-1"' in created.text and "0 of 1" in created.text
    assert link.group(1) not in client.get("/streamer").text  # the link is shown once

    client.cookies.clear()  # the viewer has no account
    invite_page = client.get("/invite", params={"code": code})
    assert invite_page.status_code == 200
    assert invite_page.headers["referrer-policy"] == "no-referrer"
    assert "You are invited to watch page-show" in invite_page.text
    assert 'id="open-invite"' in invite_page.text
    key_page = client.post("/invite", data={"code": code})
    assert key_page.status_code == 200
    key = _viewer_key(key_page.text)
    assert key == fake.keys[0]["key"]
    for platform in ("linux", "macos", "windows", "android", "ios"):
        assert f'<h3 id="{platform}">' in key_page.text
    assert f"sudo tailscale up --login-server {fake.url} --auth-key {key}" in key_page.text  # type: ignore[attr-defined]
    assert (
        "Use an auth key" in key_page.text and "Use a custom coordination server" in key_page.text
    )
    used_up = client.post("/invite", data={"code": code})
    assert used_up.status_code == 410
    assert "this invite is used up" in used_up.text

    csrf = _sign_in(client, streamer.username)
    revoked = client.post("/streamer/invites/1/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 200
    assert "Invite 1 revoked" in revoked.text
    assert "This invite is revoked" in client.get("/invite", params={"code": code}).text
    forged = client.post("/streamer/invites", data={"csrf_token": "forged", "max_uses": "1"})
    assert forged.status_code == 403

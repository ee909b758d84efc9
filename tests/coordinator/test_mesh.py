"""The coordinator and the mesh: node registration hands out a single-use `tag:friend` key and
deleting a node removes its machine, against the spec-derived fake Headscale; mesh failures leave
nothing half-done."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from streamr_coordinator.app import create_app
from streamr_coordinator.settings import Settings

from .conftest import HOOK_SECRET
from .support import Api
from .test_mesh_client import API_KEY, FakeHeadscale
from .test_mesh_client import fake as fake


def _meshed(settings: Settings, fake: FakeHeadscale, api_key: str = API_KEY) -> Settings:
    return settings.model_copy(
        update={"headscale_url": fake.url, "headscale_api_key": SecretStr(api_key)}  # type: ignore[attr-defined]
    )


@pytest.fixture
def mesh_api(settings: Settings, fake: FakeHeadscale) -> Iterator[Api]:
    with TestClient(create_app(_meshed(settings, fake))) as client:
        yield Api(client, hook_secret=HOOK_SECRET, bootstrap_token=settings.admin_bootstrap_token)


def _join_with(fake: FakeHeadscale, mesh_node_id: int, key_id: int, name: str) -> None:
    """A machine that used pre-auth key `key_id` to join, as Headscale lists it."""
    fake.add_node(mesh_node_id, name, ["tag:friend"], f"100.64.0.{mesh_node_id}")
    key = next(key for key in fake.keys if key["id"] == str(key_id))
    fake.nodes[mesh_node_id]["preAuthKey"] = key


def test_registering_a_node_hands_out_a_single_use_friend_key(
    mesh_api: Api, fake: FakeHeadscale, sql
) -> None:
    before = datetime.now(UTC)
    node = mesh_api.node(mesh_api.account("friend"), "attic-pi")
    mesh = node["mesh"]
    assert mesh["login_server"] == fake.url  # type: ignore[attr-defined]
    assert mesh["preauth_key"] == fake.keys[0]["key"]
    expires = datetime.fromisoformat(mesh["expires_at"])
    assert before + timedelta(minutes=59) < expires <= before + timedelta(minutes=61)
    ((method, path, body),) = fake.requests
    assert (method, path) == ("POST", "/api/v1/preauthkey")
    assert body["aclTags"] == ["tag:friend"]
    assert (body["reusable"], body["ephemeral"]) == (False, False)
    assert sql("SELECT mesh_key_id FROM nodes") == [(1,)]


def test_deleting_a_node_removes_its_machine_and_only_its_machine(
    mesh_api: Api, fake: FakeHeadscale
) -> None:
    friend = mesh_api.account("friend")
    leaving, staying = mesh_api.node(friend, "leaving"), mesh_api.node(friend, "staying")
    _join_with(fake, 7, key_id=1, name="leaving")
    _join_with(fake, 8, key_id=2, name="staying")
    response = mesh_api.client.delete(f"/api/v1/nodes/{leaving['id']}", headers=friend.auth)
    assert response.status_code == 204
    assert set(fake.nodes) == {8}
    mine = mesh_api.client.get("/api/v1/nodes", headers=friend.auth).json()
    assert [node["id"] for node in mine] == [staying["id"]]


def test_registration_with_the_mesh_down_leaves_nothing_behind(
    mesh_api: Api, fake: FakeHeadscale, sql
) -> None:
    friend = mesh_api.account("friend")
    fake.script(503, {"code": 14, "message": "unavailable"}, times=3)
    response = mesh_api.client.post(
        "/api/v1/nodes", json={"name": "unlucky", "capacity_viewers": 5}, headers=friend.auth
    )
    assert response.status_code == 503
    assert response.json()["detail"].startswith("the mesh is unavailable, nothing was changed")
    assert sql("SELECT count(*) FROM nodes")[0][0] == 0
    assert sql("SELECT count(*) FROM api_tokens WHERE node_id IS NOT NULL")[0][0] == 0
    assert mesh_api.node(friend, "unlucky")["mesh"] is not None  # the retry works


def test_deleting_with_the_mesh_down_keeps_the_node_for_a_retry(
    mesh_api: Api, fake: FakeHeadscale
) -> None:
    friend = mesh_api.account("friend")
    node = mesh_api.node(friend, "sticky")
    fake.script(503, {"code": 14, "message": "unavailable"}, times=3)
    response = mesh_api.client.delete(f"/api/v1/nodes/{node['id']}", headers=friend.auth)
    assert response.status_code == 503
    assert len(mesh_api.client.get("/api/v1/nodes", headers=friend.auth).json()) == 1
    retry = mesh_api.client.delete(f"/api/v1/nodes/{node['id']}", headers=friend.auth)
    assert retry.status_code == 204


def test_a_refused_api_key_is_reported_as_such(settings: Settings, fake: FakeHeadscale) -> None:
    with TestClient(create_app(_meshed(settings, fake, api_key="stale-key"))) as client:
        api = Api(client, hook_secret=HOOK_SECRET, bootstrap_token=settings.admin_bootstrap_token)
        response = client.post(
            "/api/v1/nodes",
            json={"name": "n1", "capacity_viewers": 5},
            headers=api.account("friend").auth,
        )
    assert response.status_code == 502
    assert response.json()["detail"] == (
        "the mesh refused the coordinator's API key; an operator must renew it"
    )


def test_the_origin_gets_an_origin_key_with_the_hook_secret(
    mesh_api: Api, fake: FakeHeadscale
) -> None:
    url = "/api/v1/mesh/origin-key"
    assert mesh_api.client.post(url).status_code == 401
    assert mesh_api.client.post(url, headers={"X-Hook-Secret": "wrong"}).status_code == 401
    response = mesh_api.client.post(url, headers={"X-Hook-Secret": HOOK_SECRET})
    assert response.status_code == 200
    assert response.json()["preauth_key"] == fake.keys[0]["key"]
    assert fake.requests[0][2]["aclTags"] == ["tag:origin"]


def test_without_a_mesh_nodes_register_without_a_key_and_the_origin_is_told_why(
    api: Api,
) -> None:
    assert api.node(api.account("friend"), "plain")["mesh"] is None
    response = api.client.post("/api/v1/mesh/origin-key", headers={"X-Hook-Secret": HOOK_SECRET})
    assert response.status_code == 503
    assert "STREAMR_HEADSCALE_URL" in response.json()["detail"]

"""Streams: keys are secrets shown once, stored as keyed hashes, never listed."""

from __future__ import annotations

from .support import Api


def test_key_is_shown_on_creation_only_and_stored_hashed(api: Api, sql) -> None:
    streamer = api.account("streamer")
    created = api.stream(streamer, "night-owl", title="Night owl", bitrate_kbps=3000)
    key = created["stream_key"]
    assert key.startswith("sk_") and len(key) > 40
    (stored,) = sql("SELECT key_hash FROM streams")[0]
    assert len(stored) == 32 and key.encode() not in stored

    listing = api.client.get("/api/v1/streams", headers=streamer.auth)
    one = api.client.get(f"/api/v1/streams/{created['id']}", headers=streamer.auth)
    for response in (listing, one):
        assert response.status_code == 200
        assert key not in response.text and "stream_key" not in response.text
    assert listing.json()[0]["bitrate_kbps"] == 3000


def test_streamer_updates_disables_and_deletes_own_stream(api: Api) -> None:
    streamer = api.account("streamer")
    created = api.stream(streamer, "daily")
    url = f"/api/v1/streams/{created['id']}"
    changed = api.client.patch(
        url,
        json={"title": "Daily", "payout_pool_minor": 500, "enabled": False},
        headers=streamer.auth,
    )
    assert changed.status_code == 200
    assert (changed.json()["title"], changed.json()["payout_pool_minor"]) == ("Daily", 500)
    assert changed.json()["enabled"] is False
    assert api.client.delete(url, headers=streamer.auth).status_code == 204
    assert api.client.get(url, headers=streamer.auth).status_code == 404


def test_names_are_unique_and_validated(api: Api) -> None:
    streamer = api.account("streamer")
    api.stream(streamer, "taken")
    again = api.client.post("/api/v1/streams", json={"name": "taken"}, headers=streamer.auth)
    assert again.status_code == 409
    for bad in ["A", "has space", "-dash-first", "x" * 64, "dots.not.allowed"]:
        response = api.client.post("/api/v1/streams", json={"name": bad}, headers=streamer.auth)
        assert response.status_code == 422, bad
        assert "body.name" in response.json()["detail"]


def test_public_listing_shows_only_live_enabled_streams_without_secrets(api: Api) -> None:
    streamer = api.account("streamer")
    live = api.stream(streamer, "on-air")
    api.stream(streamer, "off-air")
    body = {
        "action": "on_publish",
        "app": "live",
        "stream": "on-air",
        "client_id": "p",
        "param": f"?key={live['stream_key']}",
    }
    assert api.hook("on_publish", body).status_code == 200
    listing = api.client.get("/api/v1/streams/live")
    assert listing.status_code == 200
    assert [entry["name"] for entry in listing.json()] == ["on-air"]
    assert set(listing.json()[0]) == {"name", "title", "live_since"}

"""The dashboards over plain HTTP against the running coordinator: sign-in, cookies, CSRF,
roles, and what each user may see (no browser needed for these)."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import httpx
import pytest
from streamr_coordinator.web.data import FriendsValue

from .conftest import PASSWORD, Seeded, csrf_of, signed_in

REPOSITORY = Path(__file__).resolve().parents[2]


def test_anonymous_visitors_are_sent_to_sign_in(coordinator: Seeded) -> None:
    for path in ("/", "/operator", "/streamer", "/friend"):
        response = httpx.get(coordinator.url + path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/signin"


def test_sign_in_sets_a_strict_httponly_cookie_and_redirects_by_role(coordinator: Seeded) -> None:
    for username, home in (("opsadmin", "/operator"), ("alice", "/streamer"), ("carol", "/friend")):
        client, response = signed_in(coordinator, username)
        assert response.status_code == 303
        assert response.headers["location"] == home
        cookie = response.headers["set-cookie"]
        assert "streamr_session=stu_" in cookie
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Secure" not in cookie  # plain HTTP here
        assert client.get("/").headers["location"] == home
        page = client.get(home)
        assert page.status_code == 200
        assert page.headers["content-security-policy"].startswith("default-src 'none'")


def test_cookie_is_secure_behind_a_trusted_tls_proxy(coordinator: Seeded) -> None:
    proxied = {"X-Forwarded-Proto": "https"}  # the server trusts 127.0.0.0/8 as its proxy
    form = httpx.get(coordinator.url + "/signin", headers=proxied)
    assert "Secure" in form.headers["set-cookie"]
    _, response = signed_in(coordinator, "alice", proxied)
    assert "Secure" in response.headers["set-cookie"]


def test_sign_in_refuses_bad_passwords_and_forms_without_their_csrf_token(
    coordinator: Seeded,
) -> None:
    client = httpx.Client(base_url=coordinator.url)
    token = csrf_of(client.get("/signin"))
    wrong = client.post(
        "/signin", data={"csrf_token": token, "username": "alice", "password": "nope-nope-nope"}
    )
    assert wrong.status_code == 401
    assert "Wrong username or password." in wrong.text
    assert "streamr_session" not in wrong.headers.get("set-cookie", "")
    forged = httpx.post(  # no sign-in cookie: a cross-site form cannot know it
        coordinator.url + "/signin",
        data={"csrf_token": token, "username": "alice", "password": PASSWORD},
    )
    assert forged.status_code == 403
    assert "streamr_session" not in forged.headers.get("set-cookie", "")


def test_each_role_is_kept_to_its_own_page(coordinator: Seeded) -> None:
    for username, home, forbidden in (
        ("alice", "/streamer", ("/operator", "/friend")),
        ("carol", "/friend", ("/operator", "/streamer")),
        ("opsadmin", "/operator", ("/streamer", "/friend")),
    ):
        client, _ = signed_in(coordinator, username)
        session_csrf = csrf_of(client.get(home))
        for path in forbidden:
            response = client.get(path)
            assert response.status_code == 403, (username, path)
            assert "This page is for the" in response.text
            # Under the usual header: who is signed in, the way home, a working sign-out form.
            assert f'<strong id="whoami">{username}</strong>' in response.text
            assert f'<a class="brand" href="{home}">' in response.text
            assert csrf_of(response) == session_csrf


def test_error_pages_after_a_form_keep_the_header(coordinator: Seeded) -> None:
    alice, _ = signed_in(coordinator, "alice")
    token = csrf_of(alice.get("/streamer"))
    for data, code in (({"confirm": "yes"}, 403), ({"csrf_token": token, "confirm": "yes"}, 404)):
        response = alice.post("/streamer/streams/999999/rotate-key", data=data)
        assert response.status_code == code
        assert '<strong id="whoami">alice</strong>' in response.text
        assert csrf_of(response) == token


def test_the_friend_page_says_where_the_setup_command_runs(coordinator: Seeded) -> None:
    """From the top of a clone: the command's ./node/setup.sh is there, not in node/."""
    carol, _ = signed_in(coordinator, "carol")
    page = carol.get("/friend").text
    assert "from its top folder (the one that holds <code>node/</code>" in page
    command = re.search(r'<code id="setup-command">([^<]*)</code>', page).group(1)
    script = next(word for word in command.split() if word.endswith("setup.sh"))
    assert script == "./node/setup.sh"
    assert (REPOSITORY / script).is_file()


def test_pages_show_only_the_signed_in_users_data(coordinator: Seeded) -> None:
    alice, _ = signed_in(coordinator, "alice")
    page = alice.get("/streamer").text
    assert "alice-live" in page and "alice-quiet" in page
    assert "bob-secret" not in page and "dave-den" not in page
    assert "rtmp://ingest.example.net/live" in page
    carol, _ = signed_in(coordinator, "carol")
    page = carol.get("/friend").text
    assert "carol-attic" in page and "carol-cellar" in page
    assert "dave-den" not in page and "bob-secret" not in page
    for secret in [s["stream_key"] for s in coordinator.streams.values()] + [
        n["node_token"] for n in coordinator.nodes.values()
    ]:
        for text in (alice.get("/streamer").text, carol.get("/friend").text):
            assert secret not in text


def test_rotating_a_key_needs_csrf_confirmation_and_ownership(coordinator: Seeded) -> None:
    alice, _ = signed_in(coordinator, "alice")
    token = csrf_of(alice.get("/streamer"))
    quiet = coordinator.streams["alice-quiet"]
    bob = coordinator.streams["bob-secret"]
    url = f"/streamer/streams/{quiet['id']}/rotate-key"
    assert alice.post(url, data={"confirm": "yes"}).status_code == 403
    assert alice.post(url, data={"confirm": "yes", "csrf_token": "x" * 64}).status_code == 403
    unconfirmed = alice.post(url, data={"csrf_token": token})
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm" in unconfirmed.text
    others = alice.post(
        f"/streamer/streams/{bob['id']}/rotate-key", data={"csrf_token": token, "confirm": "yes"}
    )
    assert others.status_code == 404
    # Nothing above changed a key: both old keys still publish. Each stream is left as seeded
    # (bob-secret live, alice-quiet not): the session's other tests read the live streams.
    for name, seeded_live in (("alice-quiet", False), ("bob-secret", True)):
        key = coordinator.streams[name]["stream_key"]
        assert coordinator.hook("on_publish", name, f"?key={key}").status_code == 200
        if not seeded_live:
            assert coordinator.hook("on_unpublish", name).status_code == 200
    # A CSRF token belongs to its session: another session's token is refused.
    other_session, _ = signed_in(coordinator, "alice")
    assert other_session.post(url, data={"csrf_token": token, "confirm": "yes"}).status_code == 403


def test_sign_out_revokes_the_session(coordinator: Seeded) -> None:
    client, _ = signed_in(coordinator, "carol")
    cookie = client.cookies["streamr_session"]
    token = csrf_of(client.get("/friend"))
    assert client.post("/signout", data={"go": "1"}).status_code == 403  # no CSRF token
    response = client.post("/signout", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "/signin"
    stale = httpx.get(coordinator.url + "/friend", cookies={"streamr_session": cookie})
    assert stale.status_code == 303  # the token is revoked, not just forgotten by the browser
    api = httpx.get(
        coordinator.url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {cookie}"}
    )
    assert api.status_code == 401


@pytest.mark.parametrize("name", ["dashboard.css", "dashboard.js"])
def test_static_files_are_served_from_the_package(coordinator: Seeded, name: str) -> None:
    response = httpx.get(f"{coordinator.url}/static/{name}")
    assert response.status_code == 200 and response.content
    assert httpx.get(f"{coordinator.url}/static/..%2Fpages.py").status_code == 404
    assert httpx.get(f"{coordinator.url}/static/missing.css").status_code == 404


def test_api_docs_load_nothing_but_this_sites_assets(coordinator: Seeded) -> None:
    """/docs needs no CDN and no sign-in; its one inline script is allowed by hash only."""
    page = httpx.get(coordinator.url + "/docs")
    assert page.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]*)"', page.text)
    assert len(urls) == 3 and all(url.startswith("/docs/assets/") for url in urls), urls
    for url in urls:
        asset = httpx.get(coordinator.url + url)
        assert asset.status_code == 200 and len(asset.content) > 1000, url
        assert asset.headers["x-content-type-options"] == "nosniff"
    (script,) = re.findall(r"<script>(.*?)</script>", page.text, flags=re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = page.headers["content-security-policy"]
    assert f"script-src 'self' 'sha256-{digest}';" in policy
    assert "unsafe" not in policy and "frame-ancestors 'none'" in policy
    # Only what the page uses: ReDoc (also in the package) is not served.
    assert httpx.get(coordinator.url + "/redoc").status_code == 404
    assert httpx.get(coordinator.url + "/docs/assets/redoc.standalone.js").status_code == 404


def test_the_streamer_page_prices_what_friends_delivered_next_to_what_they_were_paid(
    coordinator: Seeded,
) -> None:
    """Last 30 days: the bytes the coordinator verified from friends' reports for this streamer's
    streams, at the configured origin egress price, and the payouts for those streams."""
    expected = {
        # alice-live: 3 MB + 1 MB verified, a pool of 10.00 paid; bob-secret: 2 MB, 10.00.
        "alice": "friends delivered 4.0 MB (verified), which would have cost 0.00 USD of origin "
        "egress at 0.090 USD/GB; friends were paid 10.00 credits.",
        "bob": "friends delivered 2.0 MB (verified), which would have cost 0.00 USD of origin "
        "egress at 0.090 USD/GB; friends were paid 10.00 credits.",
    }
    for streamer, sentence in expected.items():
        client, _ = signed_in(coordinator, streamer)
        page = re.sub(r"<[^>]+>", "", client.get("/streamer").text)
        assert f"Last 30 days: {sentence}" in page
    # A GB is priced at the configured rate: 1.35 GB (a viewer-hour at 3 Mbps) at 0.09 USD/GB.
    assert FriendsValue(1_350_000_000, 0).saved_usd(0.09) == pytest.approx(0.1215)

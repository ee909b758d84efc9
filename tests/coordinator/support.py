"""A thin client for the coordinator's API, so tests read as what users do."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from streamr_coordinator.cache import Cache
from streamr_coordinator.context import AppContext
from streamr_coordinator.db import DriverPool, make_engine, make_sessionmaker
from streamr_coordinator.domain import payouts
from streamr_coordinator.settings import Settings

from devenv import services

_users = itertools.count()
PASSWORD = "correct horse battery"


@dataclass
class Account:
    id: int
    username: str
    role: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    def __init__(self, client: TestClient, hook_secret: str, bootstrap_token: str) -> None:
        self.client = client
        self.hook_secret = hook_secret
        self.bootstrap_token = bootstrap_token

    def account(self, role: str) -> Account:
        username = f"{role}{next(_users)}"
        body = {"username": username, "password": PASSWORD}
        if role == "admin":
            response = self.client.post(
                "/api/v1/auth/bootstrap-admin",
                json=body,
                headers={"X-Bootstrap-Token": self.bootstrap_token},
            )
        else:
            response = self.client.post("/api/v1/auth/register", json={**body, "role": role})
        assert response.status_code == 201, response.text
        return Account(response.json()["id"], username, role, self.login(username))

    def login(self, username: str, password: str = PASSWORD) -> str:
        response = self.client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return response.json()["token"]

    def stream(self, owner: Account, name: str, **fields: Any) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/streams", json={"name": name, **fields}, headers=owner.auth
        )
        assert response.status_code == 201, response.text
        return response.json()

    def node(self, owner: Account, name: str, capacity: int = 10) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/nodes", json={"name": name, "capacity_viewers": capacity}, headers=owner.auth
        )
        assert response.status_code == 201, response.text
        return response.json()

    def report(self, node: dict[str, Any], *items: dict[str, Any], node_id: int | None = None):
        return self.client.post(
            f"/api/v1/nodes/{node_id or node['id']}/reports",
            json={"reports": list(items)},
            headers={"Authorization": f"Bearer {node['node_token']}"},
        )

    def hook(self, action: str, body: dict[str, Any], node_token: str | None = None):
        """A hook as the host's relay sends it: the origin's secret or the edge's node token as
        the bearer credential."""
        return self.client.post(
            f"/hooks/srs/{action}", json=body, headers=hook_auth(node_token or self.hook_secret)
        )

    def publish(self, stream: dict[str, Any]) -> None:
        """The streamer goes live at the origin (its SRS asks with the stream's key)."""
        event = srs_event("on_publish", stream["name"], f"?key={stream['stream_key']}")
        assert self.hook("on_publish", event).json() == {"code": 0}

    def edge_online(self, node: dict[str, Any]) -> None:
        """The node's kit: it says where viewers play from it, and heartbeats."""
        bearer = {"Authorization": f"Bearer {node['node_token']}"}
        response = self.client.put(
            f"/api/v1/nodes/{node['id']}/edge",
            json={"play_base_url": f"http://100.64.0.{node['id'] % 250 + 1}:8080"},
            headers=bearer,
        )
        assert response.status_code == 204, response.text
        assert self.client.post("/api/v1/node/heartbeat", headers=bearer).status_code == 200

    def ticket(self, stream_name: str, node_id: int) -> str:
        """What a viewer gets from /api/v1/play: the ticket in that node's edge URL."""
        answer = self.client.get(f"/api/v1/play/{stream_name}")
        assert answer.status_code == 200, answer.text
        urls = {edge["node_id"]: edge["flv_url"] for edge in answer.json()["edges"]}
        assert node_id in urls, f"node {node_id} is not offered: {answer.json()}"
        return parse_qs(urlsplit(urls[node_id]).query)["ticket"][0]

    def watch(self, node: dict[str, Any], stream_name: str, client_id: str):
        """A routed viewer plays from the node's edge: the edge's on_play with the viewer's
        ticket, then (as SRS does for the first viewer) the edge's pull at the origin with it."""
        param = f"?ticket={self.ticket(stream_name, node['id'])}"
        event = srs_event("on_play", stream_name, param, client_id=client_id)
        response = self.hook("on_play", event, node_token=node["node_token"])
        pull = srs_event("on_play", stream_name, param, client_id=f"pull-{node['id']}")
        pull["ip"] = f"100.64.0.{node['id'] % 250 + 1}"
        assert self.hook("on_play", pull).json() == {"code": 0}
        return response


def hook_auth(credential: str) -> dict[str, str]:
    """The header `srs/hook_relay.py` adds to each hook: the hook secret or a node token."""
    return {"Authorization": f"Bearer {credential}"}


def srs_event(action: str, stream: str, param: str = "", client_id: str = "c1") -> dict[str, Any]:
    """A hook body shaped like the ones SRS sends (see tests/reference/srs/hooks.jsonl)."""
    return {
        "server_id": "srs-origin",
        "service_id": "s1",
        "action": action,
        "client_id": client_id,
        "ip": "203.0.113.7",
        "vhost": "__defaultVhost__",
        "app": "live",
        "tcUrl": "rtmp://origin/live",
        "stream": stream,
        "param": param,
        "stream_url": f"/live/{stream}",
        "stream_id": "vid-1",
    }


def instance_context(settings: Settings) -> AppContext:
    """What one coordinator instance has: its own connection pool."""
    engine = make_engine(settings)
    autocommit_engine = make_engine(settings, autocommit=True)
    return AppContext(
        settings,
        engine,
        engine,
        DriverPool(settings),
        autocommit_engine,
        make_sessionmaker(engine),
        Cache(None),
    )


class Coordinator:
    """One coordinator instance's domain layer, driven from synchronous tests."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.ctx = instance_context(settings)

    def run(self, awaitable):
        return self.loop.run_until_complete(awaitable)

    def pay_period(self, start: datetime) -> payouts.PeriodResult:
        """Pay the hour from `start`."""

        async def pay() -> payouts.PeriodResult:
            async with self.ctx.engine.begin() as connection:
                return await payouts.pay_period(connection, start, start + timedelta(hours=1))

        return self.run(pay())

    def close(self) -> None:
        self.run(self.ctx.engine.dispose())
        self.run(self.ctx.autocommit_engine.dispose())
        self.run(self.ctx.hook_connections.close())
        self.loop.close()


@contextlib.contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """The app behind a real uvicorn HTTP server on loopback, in a thread; yields its base URL."""
    port = services.free_port()
    server = uvicorn.Server(
        # log_config=None: uvicorn's loggers propagate, so a test sees what it logs (tracebacks).
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)

"""The baselines, served exactly like the coordinator: the smallest FastAPI app, and, with
`BENCH_DATABASE_URL` set, the same app with one PostgreSQL connection of its own (opened at
startup) for two floors: one round trip (`SELECT 1`), and a bare `on_publish` (the coordinator's
statement after the secret is compared and the body parsed, without its middleware, pool,
validation or access log). What any hook that asks PostgreSQL costs at least."""

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from streamr_coordinator.domain import hooks
from streamr_coordinator.security import keyed_hash, same_secret


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = os.environ.get("BENCH_DATABASE_URL")
    app.state.database = url and await psycopg.AsyncConnection.connect(url, autocommit=True)
    try:
        yield
    finally:
        if app.state.database:
            await app.state.database.close()


app = FastAPI(lifespan=lifespan)


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


@app.get("/hello/database")
async def hello_database() -> dict[str, int]:
    cursor = await app.state.database.execute("SELECT 1")
    (one,) = await cursor.fetchone()
    return {"hello": one}


@app.post("/hello/publish")
async def hello_publish(request: Request) -> JSONResponse:
    credential = request.headers.get("authorization", "").removeprefix("Bearer ")
    if not same_secret(os.environ["STREAMR_HOOK_SECRET"], credential):
        return JSONResponse({"code": 401}, status_code=401)
    body = json.loads(await request.body())
    fields = ("stream", "server_id", "service_id", "client_id", "ip", "param")
    event = hooks.Event(**{name: body.get(name, "") for name in fields})
    key = hooks.stream_key(event.param) or ""
    values = event.columns() | {"key_hash": keyed_hash(os.environ["STREAMR_TOKEN_PEPPER"], key)}
    cursor = await app.state.database.execute(hooks._PUBLISH, values)
    if await cursor.fetchone() is None:
        return JSONResponse({"code": 403}, status_code=403)
    return JSONResponse({"code": 0})

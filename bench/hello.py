"""The baselines: the smallest FastAPI app, served exactly like the coordinator, and the same app
with one PostgreSQL round trip (`SELECT 1` on one connection of its own, opened at startup when
`BENCH_DATABASE_URL` is set): what any hook that asks the database costs at least."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI


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

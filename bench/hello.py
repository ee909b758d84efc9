"""The baseline: the smallest FastAPI app, served exactly like the coordinator."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}

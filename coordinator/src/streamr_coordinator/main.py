"""The ASGI app for uvicorn (`streamr_coordinator.main:app`), configured from the environment."""

from .app import create_app

app = create_app()

"""The API's documentation page: Swagger UI from the fastapi-offline package's copy of its
assets (Swagger UI is Apache-2.0), served by the coordinator itself, so `/docs` renders with no
network and nothing but this site in its Content-Security-Policy."""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files

from fastapi import FastAPI, HTTPException, status
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from .assets import packaged_file
from .pages import SECURITY_HEADERS

DOCS = "/docs"
ASSETS = "/docs/assets"
_SWAGGER_UI = files("fastapi_offline") / "static"
_PAGE_ASSETS = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}


def _inline_script_hash(html: str) -> str:
    """CSP source for the page's one inline script (the call that starts Swagger UI)."""
    (script,) = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def add_docs(app: FastAPI) -> None:
    """`/docs` and its assets, on `app` itself (create it with `docs_url=None, redoc_url=None`)."""
    assert app.openapi_url is not None
    html = get_swagger_ui_html(
        openapi_url=app.openapi_url,
        title=f"{app.title} · API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon.png",
        # Swagger UI would send the document to validator.swagger.io for a badge.
        swagger_ui_parameters={"validatorUrl": None},
    ).body.decode()
    headers = {
        **SECURITY_HEADERS,
        # Swagger UI fetches the document and runs "Try it out" against this site only; it sets
        # styles from script (allowed) and draws icons as data: images.
        "Content-Security-Policy": f"default-src 'none'; script-src 'self' "
        f"{_inline_script_hash(html)}; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    }

    async def docs_page() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)

    async def docs_asset(name: str) -> Response:
        if name not in _PAGE_ASSETS:  # the package also ships ReDoc, which we do not serve
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no static file {name!r}")
        return packaged_file(_SWAGGER_UI, name)

    app.add_api_route(DOCS, docs_page, methods=["GET"], include_in_schema=False)
    app.add_api_route(f"{ASSETS}/{{name}}", docs_asset, methods=["GET"], include_in_schema=False)

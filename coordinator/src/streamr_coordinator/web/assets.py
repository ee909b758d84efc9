"""Files shipped inside Python packages, served as they are: the pages load nothing from a CDN,
so they work offline and in the container image alike."""

from __future__ import annotations

from importlib.resources.abc import Traversable

from fastapi import HTTPException, status
from fastapi.responses import Response

MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".png": "image/png",
}


def packaged_file(folder: Traversable, name: str) -> Response:
    """`name` from `folder` (one level, known file types only), cacheable for a few minutes."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    resource = folder / name
    if "/" in name or suffix not in MEDIA_TYPES or not resource.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no static file {name!r}")
    return Response(
        resource.read_bytes(),
        media_type=MEDIA_TYPES[suffix],
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )

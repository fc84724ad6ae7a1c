"""The web console at `/console`: a few static files, shipped inside this package.

The console is a client of the API like any other. Its shell (HTML, CSS, ES modules) is public
and holds no data and no secret; the user types an API key, the page keeps it for the tab only
(`sessionStorage`) and sends it as `X-API-Key` on every call to the same authenticated,
rate-limited endpoints curl uses. So these routes need no key, are not rate-limited (like the
probes, they touch nothing but memory) and are left out of the OpenAPI document.

Every response carries a Content-Security-Policy that allows nothing but this origin: no
external source, no inline script or style, no framing. Whatever a prompt or an answer holds
is rendered as text by the page (DOM nodes and `textContent`, never HTML); the policy is the
second wall, not the first.

The files are read once, at import, into memory with their gzip form and an ETag: a request
can only name one of them (there is no path on disk to traverse), and a browser revalidates
with `If-None-Match` and gets a 304.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from api.errors import APIError

__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "Asset", "load_assets", "router"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Revalidate on every load (a new version of the service serves new files at the same
# names) but move no bytes when nothing changed: the ETag answers 304.
_CACHE_CONTROL = "no-cache"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One static file as served: its bytes, gzipped bytes (None: gzip saves nothing), type
    and strong ETag."""

    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str


def _media_type(name: str) -> str:
    suffix = name[name.rfind(".") :] if "." in name else ""
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _walk(folder: Traversable, prefix: str = "") -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for entry in folder.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            found |= _walk(entry, f"{prefix}{entry.name}/")
        else:
            found[prefix + entry.name] = entry.read_bytes()
    return found


def load_assets(folder: Traversable | None = None) -> dict[str, Asset]:
    """The console's files by their path under `static/` (e.g. `views/history.js`)."""
    folder = folder if folder is not None else resources.files(__name__) / "static"
    assets = {}
    for name, body in _walk(folder).items():
        packed = gzip.compress(body, compresslevel=9, mtime=0)
        assets[name] = Asset(
            body=body,
            gzipped=packed if len(packed) < len(body) else None,
            media_type=_media_type(name),
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
        )
    return assets


ASSETS = load_assets()

router = APIRouter(include_in_schema=False)


def _serve(request: Request, name: str) -> Response:
    asset = ASSETS.get(name)
    if asset is None:
        raise APIError(404, f"no console file {name!r}", type="not_found_error", code="not_found")
    headers = {
        **SECURITY_HEADERS,
        "Cache-Control": _CACHE_CONTROL,
        "ETag": asset.etag,
        "Vary": "Accept-Encoding",
    }
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        return Response(status_code=200, headers=headers, media_type=asset.media_type)
    return Response(body, headers=headers, media_type=asset.media_type)


@router.api_route("/console", methods=["GET", "HEAD"])
@router.api_route("/console/", methods=["GET", "HEAD"])
async def console_page(request: Request) -> Response:
    """The console's one page; it routes between its views with the URL's fragment."""
    return _serve(request, "index.html")


@router.api_route("/console/{name:path}", methods=["GET", "HEAD"])
async def console_file(request: Request, name: Annotated[str, Path(max_length=200)]) -> Response:
    return _serve(request, name)

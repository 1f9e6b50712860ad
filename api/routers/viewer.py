"""The clinician viewer: an HTML page at ``/`` and ``/patients/{id}`` and its static files.

The page is a shell: it holds no patient data and needs no key (policy ``public``). Its script
asks for an API key once, keeps it in ``sessionStorage`` (never in a URL) and reads everything
through the keyed ``/v1`` API with ``Authorization: Bearer <key>``, so the viewer sees exactly what
its key's role may see. The scripts are served from the package (``api/viewer/static``,
cytoscape and cytoscape-dagre vendored there): no CDN and no network when it runs. See
docs/viewer.md.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
from functools import lru_cache
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.responses import HTMLResponse, Response

from api.auth import PUBLIC
from api.viewer import STATIC
from graph.records import Id

router = APIRouter(tags=["viewer"], include_in_schema=False, dependencies=[Depends(PUBLIC)])

STATIC_PREFIX = "/viewer/static"
PAGE = "index.html"
_SUFFIXES = {".js", ".css", ".txt"}
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# cytoscape adds this one <style> element to the page (its container must not be static); the
# policy allows exactly it by its hash, and no other inline style.
CYTOSCAPE_STYLE = ".__________cytoscape_container { position: relative; }"
_CYTOSCAPE_STYLE_HASH = base64.b64encode(hashlib.sha256(CYTOSCAPE_STYLE.encode()).digest()).decode()
# The page runs only its own scripts: no inline script, no other origin (the API is this origin).
# Images may be blob: URLs (thumbnails fetched with the key); styles that cytoscape and the
# script set through the DOM (element.style) are not inline styles and need no permission.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; "
        f"style-src 'self' 'sha256-{_CYTOSCAPE_STYLE_HASH}'; img-src 'self' blob: data:; "
        "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@lru_cache(maxsize=1)
def static_files() -> dict[str, FilePath]:
    """The files the viewer serves, by URL name (``viewer.js``, ``vendor/cytoscape.min.js``);
    only these answer, so no request can name a path outside the folder."""
    return {
        path.relative_to(STATIC).as_posix(): path
        for path in sorted(STATIC.rglob("*"))
        if path.is_file() and path.suffix in _SUFFIXES
    }


def _page() -> HTMLResponse:
    html = (STATIC / PAGE).read_text(encoding="utf-8")
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    return HTMLResponse(html, headers=headers)


@router.get("/", response_class=HTMLResponse)
def viewer_home() -> HTMLResponse:
    """The viewer's start page: the API key, then the list of patients."""
    return _page()


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def viewer_patient(
    patient_id: Annotated[Id, Path(description="A patient id")],
) -> HTMLResponse:
    """One patient's page (the script reads the id from the URL path and fetches the data)."""
    return _page()


@router.get(STATIC_PREFIX + "/{name:path}")
def viewer_static(name: str) -> Response:
    """A file of the viewer (script, style, vendored library or its license)."""
    path = static_files().get(name)
    if path is None:
        raise HTTPException(status_code=404, detail="no such viewer file")
    media = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "text/plain"
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    return Response(path.read_bytes(), media_type=media, headers=headers)

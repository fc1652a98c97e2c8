"""The web UI: its page shell and its static files, on the service's own port (docs/ui.md).

These routes are open (the listed ``OPEN_ROUTES`` of api/authz.py): they serve only the
same files to everybody; the UI calls the API with a bearer token like any client. Every
answer carries a strict Content-Security-Policy (no inline script or style, nothing from
another origin, no framing). The assets live under a versioned path and are cached for a
year; the shell is never cached, so a new release is picked up on the next load.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from dockyard.errors import NotFoundError
from dockyard.ui import Assets

router = APIRouter(include_in_schema=False)

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' ws: wss:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
IMMUTABLE = "public, max-age=31536000, immutable"


def _assets(request: Request) -> Assets:
    assets: Assets = request.app.state.ui_assets
    return assets


def _shell(request: Request) -> Response:
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    return Response(_assets(request).index, media_type="text/html", headers=headers)


@router.get("/")
async def home(request: Request) -> Response:
    """The UI's page shell."""
    return _shell(request)


@router.get("/ui/assets/{version}/{path:path}")
async def asset(version: str, path: str, request: Request) -> Response:
    """One static file of this release (an old release's name is a 404)."""
    found = _assets(request).get(version, path)
    if found is None:
        raise NotFoundError("no such UI asset", code="ASSET_NOT_FOUND", details={"path": path})
    headers = {**SECURITY_HEADERS, "Cache-Control": IMMUTABLE}
    return Response(found.body, media_type=found.media_type, headers=headers)


@router.get("/ui")
@router.get("/ui/{page:path}")
async def page(request: Request) -> Response:
    """A page of the UI (the shell: the page's script draws it)."""
    return _shell(request)

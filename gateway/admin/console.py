"""The officers' web console: one page and its static assets, served by the admin app.

    GET /console                 the page (index.html)
    GET /console/static/{name}   its scripts and styles, from ``gateway/admin/console/``
    GET /console/config          {"sso": bool}: whether "sign in with your company account"
                                 is offered (see ``oidc_login.py``)

The page renders data that callers control (subjects, paths, explanations), so every
response carries a strict Content-Security-Policy: scripts and styles from this origin only,
no inline script, no framing. The page itself never uses ``innerHTML``; the policy is the
second line. The JSON it shows comes from the officer API, which checks the bearer token;
these routes hold nothing secret and need none.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from gateway.admin.oidc_login import sso_enabled
from gateway.errors import NotFound

ASSET_DIR = Path(__file__).with_name("console")
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = MappingProxyType(
    {
        "content-security-policy": CONTENT_SECURITY_POLICY,
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "cache-control": "no-cache",
    }
)
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _load_assets(folder: Path) -> MappingProxyType[str, tuple[bytes, str]]:
    """Every servable file, read once: name → (body, content type). Nothing else is served."""
    assets = {
        path.name: (path.read_bytes(), _CONTENT_TYPES[path.suffix])
        for path in sorted(folder.iterdir())
        if path.is_file() and path.suffix in _CONTENT_TYPES
    }
    return MappingProxyType(assets)


ASSETS = _load_assets(ASSET_DIR)
router = APIRouter(include_in_schema=False)


def _asset_response(name: str) -> Response:
    try:
        body, content_type = ASSETS[name]
    except KeyError:
        raise NotFound(
            f"the console has no file named {name[:80]!r}", reason_id="console_asset_not_found"
        ) from None
    return Response(body, media_type=content_type, headers=dict(SECURITY_HEADERS))


@router.get("/console")
async def console_page() -> Response:
    """The console page; it asks for a token (or offers SSO) before showing anything."""
    return _asset_response("index.html")


@router.get("/console/static/{name}")
async def console_asset(name: str) -> Response:
    """A script or stylesheet of the console, by file name (no folders)."""
    return _asset_response(name)


@router.get("/console/config")
async def console_config(request: Request) -> JSONResponse:
    """What the page needs to know before sign-in: whether OIDC sign-in is offered."""
    return JSONResponse({"sso": sso_enabled(request.app)}, headers=dict(SECURITY_HEADERS))

"""JSON responses and JSON errors for the demo's REST apps (CRM, IdP), via orjson.

Errors look like a typical upstream's: ``{"error": "<code>", "detail": "<what to do>"}``.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from aiohttp import web

from gateway.demo.records import Page, ParameterError, parse_page, positive_int

JSON = "application/json"
_ERRORS: dict[int, type[web.HTTPException]] = {
    cls.status_code: cls
    for cls in (
        web.HTTPBadRequest,
        web.HTTPNotFound,
        web.HTTPConflict,
        web.HTTPUnsupportedMediaType,
    )
}


def json_response(payload: Any, status: int = 200) -> web.Response:
    """``payload`` serialised with orjson."""
    return web.Response(body=orjson.dumps(payload), status=status, content_type=JSON)


def json_error(status: Literal[400, 404, 409, 415], error: str, detail: str) -> web.HTTPException:
    """An exception to ``raise`` from a handler; aiohttp sends it as a JSON error body."""
    text = orjson.dumps({"error": error, "detail": detail}).decode()
    return _ERRORS[status](text=text, content_type=JSON)


def page_of(request: web.Request) -> Page:
    """The request's ``page``/``page_size`` query parameters, or a 400 saying what is allowed."""
    try:
        return parse_page(request.query.get("page"), request.query.get("page_size"))
    except ParameterError as exc:
        raise json_error(400, "bad_paging", str(exc)) from None


def query_int(request: web.Request, name: str, *, default: int, maximum: int) -> int:
    """A whole number 1..``maximum`` from the query string, or a 400 naming the parameter."""
    try:
        return positive_int(name, request.query.get(name), default=default, maximum=maximum)
    except ParameterError as exc:
        raise json_error(400, "bad_parameter", str(exc)) from None


def query_number(request: web.Request, name: str, *, default: float, maximum: float) -> float:
    """A finite number 0..``maximum`` from the query string, or a 400 naming the parameter."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= maximum:  # also false for NaN
        raise json_error(400, "bad_parameter", f"{name} must be 0..{maximum:g}, got {raw!r}")
    return value

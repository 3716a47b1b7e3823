"""The forward stage against a real upstream on loopback: what the upstream receives."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gateway.proxy import Forwarder
from gateway.settings import UpstreamSettings
from tests.support.servers import serve_app


def _cookie_app() -> web.Application:
    async def login(request: web.Request) -> web.Response:
        response = web.json_response({"ok": True})
        response.set_cookie("session", request.query["who"], path="/")
        return response

    async def whoami(request: web.Request) -> web.Response:
        return web.json_response({"cookie": request.headers.get("Cookie")})

    app = web.Application()
    app.router.add_get("/login", login)
    app.router.add_get("/whoami", whoami)
    return app


@pytest.fixture
async def forwarder() -> AsyncIterator[Forwarder]:
    async with serve_app(_cookie_app()) as url:
        # a host name, not an IP address: aiohttp's default cookie jar ignores IP hosts
        url = url.replace("127.0.0.1", "localhost")
        fwd = Forwarder({"crm": UpstreamSettings(base_url=url, prefix="/crm")})
        await fwd.start()
        try:
            yield fwd
        finally:
            await fwd.close()


async def _get(fwd: Forwarder, target: str, query: str = "", headers=()) -> tuple[int, bytes]:
    response = await fwd.send("crm", "GET", target, query, list(headers), None)
    try:
        body = await response.read(1 << 20)
        assert body is not None
        return response.status, body
    finally:
        response.release()


async def test_a_cookie_one_caller_was_given_is_never_sent_for_another(forwarder: Forwarder):
    """The pooled session is shared by every caller: it must not keep upstream cookies."""
    status, _ = await _get(forwarder, "/login", "who=alice")
    assert status == 200
    _, body = await _get(forwarder, "/whoami")
    assert body == b'{"cookie": null}'
    _, body = await _get(forwarder, "/whoami", headers=[(b"cookie", b"session=bob")])
    assert body == b'{"cookie": "session=bob"}'


async def test_the_upstreams_set_cookie_reaches_its_own_caller(forwarder: Forwarder):
    response = await forwarder.send("crm", "GET", "/login", "who=carol", [], None)
    try:
        assert response.header(b"set-cookie") is not None
        assert b"session=carol" in response.header(b"set-cookie")
    finally:
        response.release()

"""tests/support/servers.py and the demo's own starter: real sockets, nothing left behind."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.error
import urllib.request
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from gateway.demo.crm import make_crm_app
from gateway.demo.idp import DemoIdP, make_idp_app
from gateway.demo.upstreams import start_demo_upstreams
from tests.support.servers import ServerThread, free_port, serve_app


def accepts(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


def fetch_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return orjson.loads(response.read())


async def test_serve_app_listens_on_loopback_and_stops_afterwards(http) -> None:
    async with serve_app(make_crm_app()) as url:
        assert url.startswith("http://127.0.0.1:")
        async with http.get(f"{url}/api/customers/1") as response:
            assert response.status == 200
    assert not accepts(url)


async def test_a_factory_with_a_parameter_is_given_the_url_first(http) -> None:
    async with (
        serve_app(lambda url: make_idp_app(DemoIdP(url))) as url,
        http.get(f"{url}/.well-known/openid-configuration") as response,
    ):
        assert (await response.json())["issuer"] == url


async def test_stopping_does_not_wait_for_a_slow_request_in_flight(recorder) -> None:
    async with aiohttp.ClientSession() as http:
        async with serve_app(make_crm_app(recorder)) as url:
            request = asyncio.ensure_future(http.get(f"{url}/slow?seconds=30"))
            while not recorder.requests():  # until the server is inside the handler
                await asyncio.sleep(0.01)
            stopping = time.monotonic()
        assert time.monotonic() - stopping < 5
        with pytest.raises(aiohttp.ClientError):
            await request


def test_server_thread_serves_sync_callers_and_stops() -> None:
    with ServerThread(make_crm_app) as server:
        assert fetch_json(f"{server.url}/api/customers/2")["id"] == 2
        url = server.url
    assert not accepts(url)
    server.stop()  # a second stop is harmless


def test_server_thread_passes_the_url_to_factories_that_want_it() -> None:
    with ServerThread(lambda url: make_idp_app(DemoIdP(url))) as server:
        assert fetch_json(f"{server.url}/.well-known/openid-configuration")["issuer"] == server.url


def test_server_thread_reports_a_factory_that_fails() -> None:
    def broken() -> web.Application:
        raise ValueError("cannot build this app")

    with pytest.raises(ValueError, match="cannot build"):
        ServerThread(broken).start()


def test_server_thread_refuses_use_before_start_and_a_second_start() -> None:
    server = ServerThread(make_crm_app)
    with pytest.raises(RuntimeError, match="start"):
        _ = server.url
    with server, pytest.raises(RuntimeError, match="already"):
        server.start()


def test_free_port_gives_a_port_that_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


async def test_demo_upstreams_start_together_and_close_together(http) -> None:
    upstreams = await start_demo_upstreams()
    try:
        urls = (upstreams.crm_url, upstreams.erp_url, upstreams.idp_url)
        assert len(set(urls)) == 3 and all(u.startswith("http://127.0.0.1:") for u in urls)
        async with http.get(f"{upstreams.crm_url}/api/small") as response:
            assert response.status == 200
        async with http.get(f"{upstreams.erp_url}/soap?wsdl") as response:
            assert response.status == 200
        async with http.get(f"{upstreams.idp_url}/jwks.json") as response:
            assert (await response.json()) == upstreams.idp.jwks()
        assert upstreams.idp.issuer == upstreams.idp_url
        seen = [(r.upstream, r.path) for r in upstreams.recorder.requests()]
        assert seen == [("crm", "/api/small"), ("erp", "/soap"), ("idp", "/jwks.json")]
    finally:
        await upstreams.close()
    assert not any(accepts(u) for u in urls)
    await upstreams.close()


async def test_demo_upstreams_report_a_port_in_use_and_leave_nothing_running() -> None:
    crm_port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            await start_demo_upstreams(crm_port=crm_port, erp_port=taken.getsockname()[1])
    assert not accepts(f"http://127.0.0.1:{crm_port}")

"""The Recorder: what an upstream received, byte for byte, and nothing when absent."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest

from gateway.demo.crm import make_crm_app
from gateway.demo.erp import make_erp_app
from gateway.demo.recorder import RecordedRequest, Recorder
from tests.support.servers import ServerThread


async def send_raw(base_url: str, request: bytes) -> bytes:
    """Write ``request`` byte for byte (no client library tidying it up); return the reply."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_it_keeps_the_raw_target_repeated_headers_and_body(crm: str, recorder) -> None:
    target = "/api/customers/%37?page=1&page=2&x=%2e%2e"
    body = b'{"email":"r@x.cn"}'
    reply = await send_raw(
        crm,
        f"PATCH {target} HTTP/1.1\r\nHost: crm\r\nAuthorization: Bearer t\r\n"
        "X-Dup: a\r\nx-dup: b\r\nContent-Type: text/plain\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )
    assert reply.startswith(b"HTTP/1.1 415")  # refused by the CRM, yet recorded
    seen = recorder.last("crm")
    assert (seen.method, seen.target, seen.path) == ("PATCH", target, "/api/customers/%37")
    assert seen.query_string == "page=1&page=2&x=%2e%2e"
    assert seen.headers[2:4] == (("X-Dup", "a"), ("x-dup", "b"))
    assert seen.header("X-DUP") == "a, b"
    assert seen.header("authorization") == "Bearer t"
    assert seen.header("x-missing") is None
    assert seen.json() == {"email": "r@x.cn"}


async def test_each_upstream_labels_its_requests(crm: str, erp: str, recorder, http) -> None:
    async with http.get(f"{crm}/api/small"):
        pass
    async with http.get(f"{erp}/soap?wsdl"):
        pass
    assert [r.upstream for r in recorder.requests()] == ["crm", "erp"]
    assert [r.target for r in recorder.requests("erp")] == ["/soap?wsdl"]
    recorder.clear()
    assert len(recorder) == 0
    with pytest.raises(LookupError, match="'crm'"):
        recorder.last("crm")


def test_it_keeps_only_the_newest_requests() -> None:
    recorder = Recorder(maxlen=3)
    for n in range(5):
        recorder.add(RecordedRequest("crm", "GET", f"/{n}", (), b""))
    assert [r.target for r in recorder.requests()] == ["/2", "/3", "/4"]


def test_without_a_recorder_an_app_has_no_middleware_and_a_wrong_one_is_refused() -> None:
    assert len(make_crm_app().middlewares) == 0
    assert len(make_erp_app(None).middlewares) == 0
    assert len(make_crm_app(Recorder()).middlewares) == 1
    with pytest.raises(TypeError, match="Recorder"):
        make_crm_app("http://127.0.0.1:1")  # type: ignore[arg-type]


def test_it_can_be_read_from_the_test_thread_while_a_server_thread_writes() -> None:
    recorder = Recorder()
    with ServerThread(lambda: make_crm_app(recorder)) as server:
        for n in range(1, 4):
            with urllib.request.urlopen(f"{server.url}/api/customers/{n}", timeout=5):
                pass
    assert [r.path for r in recorder.requests("crm")] == [f"/api/customers/{n}" for n in (1, 2, 3)]

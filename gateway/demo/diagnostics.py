"""Test tools on the demo CRM: a slow answer, an echo, a chunked stream.

GET  /slow?seconds=S              sleeps S seconds (0..60), then {"slept": S}
GET  /echo, POST /echo            what arrived, as JSON (see ``echo``)
GET  /stream?chunks=N&delay_ms=D  N (1..10000, default 10) NDJSON lines, sent chunked,
                                  D ms (0..1000) apart
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from gateway.demo import data
from gateway.demo.jsonhttp import json_response, query_int, query_number

MAX_SLEEP_S = 60.0
MAX_CHUNKS = 10_000
MAX_CHUNK_DELAY_MS = 1000.0


async def slow(request: web.Request) -> web.Response:
    """Answer after ``seconds`` (for timeout tests)."""
    seconds = query_number(request, "seconds", default=1.0, maximum=MAX_SLEEP_S)
    await asyncio.sleep(seconds)
    return json_response({"slept": seconds})


async def echo(request: web.Request) -> web.Response:
    """Return what this upstream received, for header and forwarding tests.

    ``path`` and ``query_string`` are raw (not percent-decoded); ``query`` keeps order and
    repeated names as ``[name, value]`` pairs; ``headers`` maps lower-cased names to values
    (repeats joined by ``", "``) and ``header_list`` keeps them exactly as sent.
    """
    body = await request.read()
    path, _, query_string = request.raw_path.partition("?")
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    payload: dict[str, Any] = {
        "method": request.method,
        "path": path,
        "query_string": query_string,
        "query": [[k, v] for k, v in request.query.items()],
        "headers": headers,
        "header_list": [[k, v] for k, v in request.headers.items()],
        "body": body.decode("utf-8", errors="replace"),
        "body_length": len(body),
    }
    return json_response(payload)


async def stream(request: web.Request) -> web.StreamResponse:
    """``chunks`` customers as NDJSON, one per chunk, with chunked transfer encoding."""
    chunks = query_int(request, "chunks", default=10, maximum=MAX_CHUNKS)
    delay_s = query_number(request, "delay_ms", default=0, maximum=MAX_CHUNK_DELAY_MS) / 1000
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    customers = data.customers()
    for number in range(chunks):
        if number and delay_s:
            await asyncio.sleep(delay_s)
        await response.write(orjson.dumps(customers[number % len(customers)]) + b"\n")
    await response.write_eof()
    return response


def add_diagnostic_routes(app: web.Application) -> None:
    """Mount ``/slow``, ``/echo`` and ``/stream`` on ``app``."""
    app.router.add_get("/slow", slow)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/stream", stream)

"""What the demo upstreams actually received, so tests can check what Wardgate forwarded.

An app built with a ``Recorder`` gets one middleware that stores each request (method, raw
target, headers exactly as sent, body) before the handler runs; an app built without one
gets no middleware at all, so the benchmark path pays nothing. The recorder keeps the
newest ``maxlen`` requests (a long ``wardgate demo`` run stays bounded) and is safe to read
from another thread than the one serving (``ServerThread``).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the upstream saw it."""

    upstream: str
    method: str
    target: str  # path and query exactly as on the request line (not percent-decoded)
    headers: tuple[tuple[str, str], ...]  # in order, duplicates kept, names as sent
    body: bytes

    @property
    def path(self) -> str:
        """The raw path, without the query string."""
        return self.target.partition("?")[0]

    @property
    def query_string(self) -> str:
        """The raw query string, without the ``?``."""
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive); repeated headers joined by ``, ``."""
        wanted = name.lower()
        values = [value for key, value in self.headers if key.lower() == wanted]
        return ", ".join(values) if values else None

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body)


class Recorder:
    """A bounded, thread-safe log of the requests the demo upstreams received."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._requests: deque[RecordedRequest] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, request: RecordedRequest) -> None:
        """Append one request (the oldest is dropped once ``maxlen`` is reached)."""
        with self._lock:
            self._requests.append(request)

    def requests(self, upstream: str | None = None) -> list[RecordedRequest]:
        """All kept requests, oldest first; only those of ``upstream`` if given."""
        with self._lock:
            kept = list(self._requests)
        return [r for r in kept if upstream is None or r.upstream == upstream]

    def last(self, upstream: str | None = None) -> RecordedRequest:
        """The newest request (of ``upstream`` if given); ``LookupError`` if there is none."""
        kept = self.requests(upstream)
        if not kept:
            where = f" by {upstream!r}" if upstream else ""
            raise LookupError(f"no request was received{where}")
        return kept[-1]

    def clear(self) -> None:
        """Forget everything recorded so far."""
        with self._lock:
            self._requests.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._requests)

    def middleware(self, upstream: str) -> Middleware:
        """An aiohttp middleware recording every request of the app named ``upstream``."""

        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            body = await request.read()  # aiohttp caches it; the handler reads it again
            headers = tuple(request.headers.items())
            self.add(RecordedRequest(upstream, request.method, request.raw_path, headers, body))
            return await handler(request)

        return record


# Bodies up to this size are accepted (aiohttp's default is 1 MiB): more than Wardgate's own
# default request cap, so a test of that cap is decided by Wardgate, not by the upstream.
MAX_BODY_BYTES = 16 * 1024 * 1024


def middlewares(recorder: Recorder | None, upstream: str) -> list[Middleware]:
    """The middleware list for an app: empty without a recorder."""
    if recorder is None:
        return []
    if not isinstance(recorder, Recorder):
        raise TypeError(f"recorder must be a Recorder or None, got {type(recorder).__name__}")
    return [recorder.middleware(upstream)]

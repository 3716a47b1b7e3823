"""``/healthz`` (the process is alive) and ``/readyz`` (ready to serve with its promises kept).

Ready means: policies loaded and the audit writer accepting events. A database outage alone
does not make a replica unready — the writer spools to disk meanwhile, and taking every pod
out of the Service would turn a database blip into a full outage. ``database`` is still
reported so operators and alerts can see it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
import structlog
from sqlalchemy import Engine, text

log = structlog.get_logger(__name__)


class Health:
    """Readiness is re-checked at most once a second, so probes cannot load the database."""

    def __init__(
        self, engine: Engine, policy_version: Callable[[], str], audit_accepting: Callable[[], bool]
    ) -> None:
        self._engine = engine
        self._policy_version = policy_version
        self._audit_accepting = audit_accepting
        self._checked_at = 0.0
        self._ready: dict[str, Any] = {}

    async def readiness(self) -> dict[str, Any]:
        now = time.monotonic()
        if now - self._checked_at >= 1.0:
            self._checked_at = now
            self._ready = {
                "policy_version": self._policy_version(),
                "database": await self._database(),
                "audit": "accepting" if self._audit_accepting() else "refusing",
            }
        return self._ready

    async def _database(self) -> str:
        def ping() -> None:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        try:
            await asyncio.wait_for(asyncio.to_thread(ping), timeout=2.0)
        except Exception as exc:  # any failure means "not ready"; the reason goes to the log
            log.warning("readiness: database unreachable", error=type(exc).__name__)
            return "unreachable"
        return "ok"

    async def answer(self, path: str) -> tuple[int, dict[str, Any]]:
        """Status and body for ``/healthz`` or ``/readyz`` (both listeners serve them)."""
        if path == "/healthz":
            return 200, {"status": "alive"}
        body = await self.readiness()
        ok = body["audit"] == "accepting" and bool(body["policy_version"])
        return (200 if ok else 503), {"status": "ready" if ok else "not ready", **body}

    async def respond(self, path: str, send: Any) -> None:
        """The answer as raw ASGI messages (the proxy listener has no framework)."""
        status, body = await self.answer(path)
        payload = orjson.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

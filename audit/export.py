"""Events out to a SIEM: JSON lines, CEF, and live RFC 5424 syslog over TCP.

JSON lines carry exactly the ``AuditEvent`` field names (time in RFC 3339 UTC), so an
export is valid input for the detection replay tool. CEF follows ArcSight's escaping:
``\\`` and ``|`` in the header; ``\\``, ``=`` and line breaks in extension values.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
import structlog
from sqlalchemy import Engine, select

from audit.chain import rfc3339
from audit.event import EVENT_FIELDS
from audit.models import as_utc, events_table

log = structlog.get_logger(__name__)
ev = events_table.c
_STREAM = 5000
PRODUCT_VERSION = "0.1.0"


def iter_events(
    engine: Engine, *, since: datetime | None = None, until: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Every stored event, oldest first, streamed from the database."""
    stmt = select(events_table).order_by(ev.time, ev.chain_id, ev.seq)
    if since is not None:
        stmt = stmt.where(ev.time >= as_utc(since))
    if until is not None:
        stmt = stmt.where(ev.time < as_utc(until))
    with engine.connect() as conn:
        for row in conn.execution_options(stream_results=True, yield_per=_STREAM).execute(stmt):
            yield dict(row._mapping)


def jsonl_line(event: Mapping[str, Any]) -> bytes:
    """One JSON line with the ``AuditEvent`` field names."""
    doc = {name: event[name] for name in EVENT_FIELDS}
    doc["time"] = rfc3339(event["time"])
    return orjson.dumps(doc) + b"\n"


# --- CEF -------------------------------------------------------------------------------


def _cef_header(value: object) -> str:
    return (
        str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    )


def _cef_value(value: object) -> str:
    if isinstance(value, list | dict):
        value = orjson.dumps(value).decode()
    text = str(value)
    text = text.replace("\\", "\\\\").replace("=", "\\=")
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")


def cef_line(event: Mapping[str, Any]) -> str:
    """One CEF:0 record (no trailing newline)."""
    denied = event["decision"] == "deny"
    header = [
        "CEF:0",
        "Wardgate",
        "Wardgate",
        PRODUCT_VERSION,
        f"request-{event['decision']}",
        "request denied" if denied else "request allowed",
        "6" if denied else "3",
    ]
    ext = {
        "rt": int(as_utc(event["time"]).timestamp() * 1000),
        "externalId": event["id"],
        "suser": event["subject"],
        "src": event["client_addr"],
        "requestMethod": event["method"],
        "request": event["path"],
        "requestClientApplication": event["user_agent"],
        "act": event["decision"],
        "reason": event["reason_id"],
        "outcome": event["status"],
        "in": event["request_bytes"],
        "out": event["response_bytes"],
        "cs1Label": "roles",
        "cs1": ",".join(event["roles"]),
        "cs2Label": "upstream",
        "cs2": event["upstream"],
        "cs3Label": "entity",
        "cs3": event["entity"],
        "cs4Label": "fieldsMasked",
        "cs4": ",".join(event["fields_masked"]),
        "cs5Label": "piiHits",
        "cs5": event["pii_hits"] or None,
        "cs6Label": "matchedRule",
        "cs6": event["matched_rule"],
        "cn1Label": "records",
        "cn1": event["records"],
        "cn2Label": "latencyMs",
        "cn2": round(float(event["latency_ms"])),
    }
    pairs = " ".join(f"{k}={_cef_value(v)}" for k, v in ext.items() if v not in (None, ""))
    return "|".join(_cef_header(h) for h in header) + "|" + pairs


# --- syslog ----------------------------------------------------------------------------

_FACILITY_LOG_AUDIT = 13
_SEVERITY = {"allow": 5, "deny": 4}  # notice, warning


def syslog_frame(event: Mapping[str, Any], hostname: str, app: str = "wardgate") -> bytes:
    """One RFC 5424 message carrying the CEF record, framed by octet counting (RFC 6587)."""
    pri = _FACILITY_LOG_AUDIT * 8 + _SEVERITY.get(event["decision"], 5)
    ts = as_utc(event["time"]).isoformat(timespec="microseconds").replace("+00:00", "Z")
    message = f"<{pri}>1 {ts} {hostname} {app} {os.getpid()} audit - {cef_line(event)}".encode()
    return b"%d " % len(message) + message


class SyslogSink:
    """Live forwarding of committed events to a syslog collector over TCP.

    Forwarding is a copy, not the evidence: ``offer`` never blocks the writer. Events
    wait in a bounded queue while the collector is away (reconnects with backoff); when
    that queue is full, the newest are dropped and counted in ``dropped``.
    """

    def __init__(self, url: str, *, queue_size: int = 10_000, retry_s: float = 1.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
            raise ValueError(f"syslog_url {url!r}: must look like tcp://host:port")
        self.host, self.port = parts.hostname, parts.port
        self.sent = self.dropped = 0
        self._retry_s = retry_s
        self._hostname = socket.gethostname()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(queue_size)
        self._unsent: bytes | None = None  # taken from the queue, not yet written
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-syslog")

    def offer(self, events: Iterable[Mapping[str, Any]]) -> None:
        for event in events:
            try:
                self._queue.put_nowait(syslog_frame(event, self._hostname))
            except asyncio.QueueFull:
                self.dropped += 1
        if self.dropped:
            log.warning("audit_syslog_dropping", dropped=self.dropped)

    async def close(self, timeout_s: float = 2.0) -> None:
        """Give queued messages a moment to leave, then stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._queue.join()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                log.warning(
                    "audit_syslog_unreachable", host=self.host, port=self.port, error=str(exc)
                )
                await asyncio.sleep(self._retry_s)
                continue
            try:
                await self._send(writer)
            except OSError as exc:
                log.warning("audit_syslog_disconnected", error=str(exc))
            finally:
                writer.transport.abort()

    async def _send(self, writer: asyncio.StreamWriter) -> None:
        while True:
            if self._unsent is None:
                self._unsent = await self._queue.get()
            writer.write(self._unsent)
            await writer.drain()  # raises OSError when the collector went away
            self._unsent = None
            self._queue.task_done()
            self.sent += 1

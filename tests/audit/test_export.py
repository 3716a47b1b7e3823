"""Export for SIEMs: JSON lines, CEF escaping, and live syslog to a real TCP collector."""

from __future__ import annotations

import asyncio
import re
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine

from audit.event import AuditEvent
from audit.export import SyslogSink, cef_line, iter_events, jsonl_line
from audit.settings import AuditSettings
from audit.writer import AuditWriter
from tests.audit.conftest import make_event

NASTY = 'eve=x act=allow \\ | "\n<script>'


async def write(engine: Engine, settings: AuditSettings, events: list[AuditEvent]) -> None:
    writer = AuditWriter(settings, engine)
    await writer.start()
    for event in events:
        await writer.record(event)
    await writer.close()


async def test_jsonl_has_exactly_the_audit_event_fields_and_round_trips(
    engine: Engine, settings: AuditSettings
) -> None:
    events = [make_event(i) for i in range(5)] + [make_event(5, subject=NASTY, decision="deny")]
    await write(engine, settings, events)
    lines = [orjson.loads(jsonl_line(e)) for e in iter_events(engine)]
    assert [line["id"] for line in lines] == [e.id for e in events]  # oldest first
    for line, event in zip(lines, events, strict=True):
        assert set(line) == {f.name for f in fields(AuditEvent)}
        rebuilt = AuditEvent(**line)
        assert datetime.fromisoformat(rebuilt.time) == event.time
        assert (rebuilt.subject, rebuilt.roles, rebuilt.pii_hits) == (
            event.subject,
            list(event.roles),
            event.pii_hits,
        )


async def test_since_and_until_bound_the_export(engine: Engine, settings: AuditSettings) -> None:
    await write(engine, settings, [make_event(i) for i in range(10)])
    since = datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)
    until = datetime(2026, 1, 1, 0, 0, 6, tzinfo=UTC)
    got = [e["request_id"] for e in iter_events(engine, since=since, until=until)]
    assert got == ["req-3", "req-4", "req-5"]


def as_row(event: AuditEvent) -> dict[str, Any]:
    """An event shaped like a stored row (lists where the database returns lists)."""
    row = {f.name: getattr(event, f.name) for f in fields(AuditEvent)}
    return row | {"roles": list(event.roles), "fields_masked": list(event.fields_masked)}


_EXT = re.compile(r"(\w+)=((?:\\.|[^\\])*?)(?= \w+=|$)")


def parse_cef(line: str) -> tuple[list[str], dict[str, str]]:
    """A strict reader: header split on unescaped pipes, extension on unescaped key=."""
    parts = re.split(r"(?<!\\)\|", line, maxsplit=7)
    header, ext = parts[:7], parts[7]
    values = {}
    for key, raw in _EXT.findall(ext):
        values[key] = re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], raw)
    return header, values


def test_cef_escapes_what_a_caller_controls() -> None:
    line = cef_line(as_row(make_event(1, subject=NASTY, path="/crm/a|b=c")))
    assert "\n" not in line
    header, ext = parse_cef(line)
    assert header[:4] == ["CEF:0", "Wardgate", "Wardgate", "0.1.0"]
    assert ext["suser"] == NASTY  # no injected "act=allow" key
    assert ext["act"] == "allow" and ext["request"] == "/crm/a|b=c"
    assert ext["cn1"] == "1" and ext["cs1"] == "sales" and ext["cs5"] == '{"email":1}'


async def serve_collector(
    port: int = 0, frames: asyncio.Queue[bytes] | None = None
) -> tuple[asyncio.Server, asyncio.Queue[bytes], int]:
    """A syslog collector on loopback reading octet-counted frames into a queue."""
    received: asyncio.Queue[bytes] = frames if frames is not None else asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = int((await reader.readuntil(b" "))[:-1])
                received.put_nowait(await reader.readexactly(length))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    return server, received, server.sockets[0].getsockname()[1]


async def test_live_syslog_forwarding_uses_rfc5424_with_octet_counting(
    engine: Engine, settings: AuditSettings
) -> None:
    server, frames, port = await serve_collector()
    configured = settings.model_copy(update={"syslog_url": f"tcp://127.0.0.1:{port}"})
    await write(engine, configured, [make_event(1), make_event(2, decision="deny", subject=NASTY)])
    first, second = frames.get_nowait(), frames.get_nowait()
    server.close()
    await server.wait_closed()
    assert re.match(rb"<109>1 2026-01-01T00:00:01\.000000Z \S+ wardgate \d+ audit - CEF:0\|", first)
    assert second.startswith(b"<108>1 ")  # log audit facility, warning for a deny
    assert parse_cef(second.split(b" - ", 1)[1].decode())[1]["suser"] == NASTY


async def test_syslog_sink_waits_for_a_collector_that_comes_up_later() -> None:
    server, frames, port = await serve_collector()
    server.close()
    await server.wait_closed()
    sink = SyslogSink(f"tcp://127.0.0.1:{port}", retry_s=0.02)
    await sink.start()
    row = as_row(make_event(7))
    sink.offer([row])
    await asyncio.sleep(0.05)  # collector down: kept, not dropped
    revived, frames, _ = await serve_collector(port, frames)
    async with asyncio.timeout(5):
        frame = await frames.get()
    assert b"externalId=" + row["id"].encode() in frame and sink.dropped == 0
    await sink.close()
    revived.close()
    await revived.wait_closed()


def test_a_bad_syslog_url_is_refused() -> None:
    with pytest.raises(ValueError, match="tcp://host:port"):
        SyslogSink("udp://127.0.0.1:514")
    with pytest.raises(ValueError):
        AuditSettings(syslog_url="tcp://nohostport")

"""Fixtures for the audit tests: real SQLite files and a throwaway PostgreSQL schema."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine

from audit.event import AuditEvent
from audit.models import anchors_table, checkpoints_table, events_table
from audit.settings import AuditSettings
from audit.store import Base, make_engine
from tests.support.postgres import schema_url, temporary_schema

AUDIT_TABLES = [events_table, checkpoints_table, anchors_table]


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A uniquely named, empty PostgreSQL schema, dropped afterwards."""
    with temporary_schema("wg_audit") as schema:
        yield schema


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'audit.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL (tables not yet created), on each real database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    return schema_url(request.getfixturevalue("pg_schema"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database holding the audit tables."""
    eng = make_engine(db_url)
    Base.metadata.create_all(eng, tables=AUDIT_TABLES)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> AuditSettings:
    return AuditSettings(
        spool_dir=str(tmp_path / "spool"),
        batch_interval_ms=5,
        retry_interval_s=0.05,
        instance_id="test",
        signing_key_env="WARDGATE_TEST_NO_SUCH_KEY",
    )


SEED_HEX = "11" * 32


def make_event(n: int = 0, **overrides: Any) -> AuditEvent:
    """A realistic allowed CRM read; ``overrides`` change any field."""
    base: dict[str, Any] = {
        "request_id": f"req-{n}",
        "method": "GET",
        "path": f"/crm/customers/{n}",
        "decision": "allow",
        "reason_id": "allowed",
        "status": 200,
        "time": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n),
        "subject": f"user{n % 7}@corp.example",
        "roles": ("sales",),
        "auth_method": "jwt",
        "client_addr": "10.0.0.5",
        "user_agent": "sync-bot/1.0",
        "upstream": "crm",
        "entity": "customer",
        "matched_rule": "p, sales, crm, customer, GET",
        "records": n % 50,
        "fields_masked": ("cost_price",),
        "pii_hits": {"email": 1},
        "request_bytes": 0,
        "response_bytes": 2048,
        "latency_ms": 12.5,
    }
    base.update(overrides)
    return AuditEvent(**base)


@asynccontextmanager
async def serve_asgi(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on a kernel-chosen loopback port; yields its URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task

"""Nothing lost: a database that goes away under load, and a writer killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from audit.models import events_table
from audit.settings import AuditSettings
from audit.store import Base, make_engine
from audit.verify import verify
from audit.writer import AuditWriter
from tests.audit.conftest import AUDIT_TABLES, make_event
from tests.audit.tcpproxy import TcpProxy
from tests.support.postgres import schema_url

REPO = Path(__file__).resolve().parents[2]


def stored_ids(engine: Engine, chain_id: str | None = None) -> list[str]:
    query = select(events_table.c.id).order_by(events_table.c.chain_id, events_table.c.seq)
    if chain_id is not None:
        query = query.where(events_table.c.chain_id == chain_id)
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


@pytest.mark.postgres
@pytest.mark.parametrize("durability", ["fast", "strict"])
async def test_postgres_cut_mid_load_loses_nothing_and_keeps_order(
    pg_schema: str, settings: AuditSettings, durability: str
) -> None:
    direct = make_engine(schema_url(pg_schema))
    Base.metadata.create_all(direct, tables=AUDIT_TABLES)
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    via_proxy = make_engine(
        f"postgresql://root@127.0.0.1:{proxy.port}/test?options=-csearch_path%3D{pg_schema}",
        connect_args={"connect_timeout": 2},
    )
    writer = AuditWriter(settings.model_copy(update={"durability": durability}), via_proxy)
    await writer.start()
    events = [make_event(i) for i in range(3000)]

    async def until(condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):
            while not condition():
                await asyncio.sleep(0.002)

    for i in range(0, len(events), 30):
        await asyncio.gather(*(writer.record(e) for e in events[i : i + 30]))
        await asyncio.sleep(0.001)
        if i == 900:  # the database goes away mid-load …
            await until(lambda: writer.written > 0)
            await proxy.stop()
        if i == 1800:  # … long enough for batches to be spooled, then comes back
            await until(lambda: writer.spooled > 0)
            await proxy.start()  # same port
    async with asyncio.timeout(10):  # the idle writer retries the database by itself
        while writer.spool_pending:
            await asyncio.sleep(0.01)
    await writer.close()
    await proxy.stop()
    via_proxy.dispose()

    assert writer.spooled > 0 and writer.replayed == writer.spooled
    assert stored_ids(direct) == [e.id for e in events]  # all of them, in record order
    assert verify(direct).ok
    direct.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["reachable", "unreachable"])
def test_strict_writer_killed_with_sigkill_loses_no_acknowledged_event(
    engine: Engine, db_url: str, tmp_path: Path, settings: AuditSettings, database: str
) -> None:
    spool = tmp_path / "crash-spool"
    child_db = db_url if database == "reachable" else "postgresql://root@127.0.0.1:1/test"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.audit.strict_child", child_db, str(spool)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None
    acknowledged = []
    while len(acknowledged) < 400:
        line = child.stdout.readline()
        assert line, "the child writer died before acknowledging enough events"
        acknowledged.append(line.decode().strip())
    child.send_signal(signal.SIGKILL)
    child.wait()
    acknowledged += [line.decode().strip() for line in child.stdout.read().splitlines()]

    async def restart() -> AuditWriter:
        writer = AuditWriter(settings.model_copy(update={"spool_dir": str(spool)}), engine)
        await writer.start()  # replays what the killed process left in the spool
        await writer.close()
        return writer

    restarted = asyncio.run(restart())
    stored = set(stored_ids(engine))
    missing = [i for i in acknowledged if i not in stored]
    assert not missing, f"{len(missing)} acknowledged events lost"
    if database == "unreachable":
        assert restarted.replayed >= len(acknowledged)
    assert verify(engine).ok

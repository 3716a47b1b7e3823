"""Audit writer throughput: events/s through ``AuditWriter`` into PostgreSQL and SQLite.

    .venv/bin/python bench/audit_bench.py [--events 100000] [--runs 3] [--pg URL]

Each run records N events through a fresh writer (fast durability, default batch settings)
and closes it, so the time covers queueing, hash chaining, and the committed inserts
(COPY on PostgreSQL, executemany on SQLite). Also measures strict durability with 64
concurrent callers, and the bare insert paths. Prints the median of the runs: events per
wall-clock second, and events per CPU-second of this process (all its threads; the
database server's own CPU is not included), which varies far less on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.chain import Chain
from audit.event import AuditEvent
from audit.models import anchors_table, checkpoints_table, events_table
from audit.settings import AuditSettings
from audit.store import Base, make_engine
from audit.writer import AuditWriter, bulk_insert_events

TABLES = [events_table, checkpoints_table, anchors_table]


def sample_events(n: int) -> list[AuditEvent]:
    return [
        AuditEvent(
            request_id=f"req-{i}",
            method="GET",
            path=f"/crm/customers/{i}",
            decision="allow",
            reason_id="allowed",
            status=200,
            subject=f"user{i % 100}@corp.example",
            roles=("sales", "staff"),
            auth_method="jwt",
            client_addr="10.0.0.5",
            user_agent="sync-bot/1.0",
            upstream="crm",
            entity="customer",
            matched_rule="p, sales, crm, customer, GET",
            records=i % 50,
            fields_masked=("cost_price",),
            pii_hits={"email": 1},
            response_bytes=2048,
            latency_ms=12.5,
        )
        for i in range(n)
    ]


@contextmanager
def database(kind: str, pg_url: str) -> Iterator[Engine]:
    """A fresh, empty store: a temp SQLite file, or a throwaway PostgreSQL schema."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{tmp}/bench.db")
            Base.metadata.create_all(engine, tables=TABLES)
            yield engine
            engine.dispose()
        return
    schema = f"wg_bench_{secrets.token_hex(4)}"
    admin = make_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(f"{pg_url}?options=-csearch_path%3D{schema}")
    try:
        Base.metadata.create_all(engine, tables=TABLES)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


async def through_writer(engine: Engine, events: list[AuditEvent], durability: str) -> Rates:
    with tempfile.TemporaryDirectory() as spool:
        settings = AuditSettings.model_validate(
            {"spool_dir": spool, "durability": durability, "instance_id": "bench"}
        )
        writer = AuditWriter(settings, engine)
        await writer.start()
        with Clock() as clock:
            await _record_all(writer, events, durability)
            await writer.close()
        assert writer.written == len(events), (writer.written, writer.spooled)
    return rates(len(events), clock)


async def _record_all(writer: AuditWriter, events: list[AuditEvent], durability: str) -> None:
    if durability == "fast":
        for event in events:
            await writer.record(event)
        return

    # strict: 64 callers, each waiting for its own event to be durable before the next
    async def caller(mine: list[AuditEvent]) -> None:
        for event in mine:
            await writer.record(event)

    await asyncio.gather(*(caller(events[i::64]) for i in range(64)))


def bare_insert(engine: Engine, events: list[AuditEvent], copy: bool) -> Rates:
    chain = Chain("bench", checkpoint_every=10**9, checkpoint_interval_s=1e9, signer=None)
    rows = [chain.append(e) for e in events]
    with Clock() as clock:
        for i in range(0, len(rows), 500):
            with engine.begin() as conn:
                if copy:
                    bulk_insert_events(conn, rows[i : i + 500])
                else:
                    conn.execute(insert(events_table), rows[i : i + 500])
    return rates(len(rows), clock)


def chain_only(events: list[AuditEvent]) -> Rates:
    chain = Chain("bench", checkpoint_every=10**9, checkpoint_interval_s=1e9, signer=None)
    with Clock() as clock:
        for event in events:
            chain.append(event)
    return rates(len(events), clock)


class Clock:
    """Wall and process CPU time of one measured section."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


Rates = tuple[float, float]  # events per wall second, events per CPU second


def rates(n: int, clock: Clock) -> Rates:
    return n / clock.wall, n / clock.cpu


def median_of(runs: int, measure: Callable[[], Rates]) -> tuple[float, list[float], float]:
    """Median wall rate, every wall rate, and the median rate per CPU-second."""
    results = [measure() for _ in range(runs)]
    walls = [wall for wall, _ in results]
    return statistics.median(walls), walls, statistics.median(cpu for _, cpu in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--strict-events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg", default="postgresql+psycopg://root@127.0.0.1:5432/test")
    args = parser.parse_args()
    events = sample_events(args.events)
    strict_events = events[: args.strict_events]

    def report(label: str, result: tuple[float, list[float], float]) -> None:
        med, values, per_cpu = result
        runs = ", ".join(f"{v:,.0f}" for v in values)
        print(
            f"{label:<50} median {med:>8,.0f}/s wall, {per_cpu:>8,.0f}/CPU-s  (runs: {runs})",
            flush=True,
        )

    report("hash chain only (no database)", median_of(args.runs, lambda: chain_only(events)))
    for kind in ("postgresql", "sqlite"):

        def writer_run(
            kind: str = kind, durability: str = "fast", evs: list[AuditEvent] = events
        ) -> Rates:
            with database(kind, args.pg) as engine:
                return asyncio.run(through_writer(engine, evs, durability))

        report(
            f"{kind}: AuditWriter fast, {len(events):,} events", median_of(args.runs, writer_run)
        )
        report(
            f"{kind}: AuditWriter strict, 64 callers",
            median_of(args.runs, lambda: writer_run(kind, "strict", strict_events)),  # noqa: B023
        )
        for copy in (True, False) if kind == "postgresql" else (False,):

            def insert_run(kind: str = kind, copy: bool = copy) -> Rates:
                with database(kind, args.pg) as engine:
                    return bare_insert(engine, events, copy)

            label = "COPY" if copy else "executemany INSERT"
            report(f"{kind}: bare {label}, batches of 500", median_of(args.runs, insert_run))


if __name__ == "__main__":
    main()

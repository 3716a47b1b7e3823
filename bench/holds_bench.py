"""Holds across replicas: what ``precheck`` costs, and how fast a hold reaches another replica.

    .venv/bin/python -m bench.holds_bench [--trials 30]

1. ``precheck`` CPU per call (memory lookup) with 0, 100 and 10,000 holds in force.
2. Two guards on one PostgreSQL schema (127.0.0.1:5432/test): a block placed on A (the
   ``observe`` that crosses the limit) → first refusal on B, and the officer's resolve on B →
   first request let through on A; with Redis fan-out, then with database polling only
   (Redis unreachable, ``refresh_s`` 0.25). Medians and maxima over ``trials`` people.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from audit.alerts import AlertStore
from audit.counters import MemoryCounters
from audit.detect import ExportGuard
from audit.holds import Hold, LocalHolds, SharedHolds
from audit.schema import ensure_schema
from audit.store import make_engine
from tests.detection.conftest import WEDNESDAY_10H as T
from tests.detection.conftest import Clock, FakePeople, config, obs
from tests.support.postgres import schema_url, temporary_schema
from tests.support.servers import free_port


async def precheck_us(holds_in_force: int, calls: int = 200_000) -> float:
    holds = LocalHolds()
    for i in range(holds_in_force):
        holds.place(Hold(f"a{i}", f"p{i}", "customer", "block", None, "blocked"))
    store = AlertStore(make_engine("sqlite://"))  # never touched: precheck reads memory only
    guard = ExportGuard(config(), MemoryCounters(), store, FakePeople(), holds=holds)
    begin = time.process_time()
    for i in range(calls):
        await guard.precheck("sales07", "crm", "customer" if i % 2 else "invoice")
    return (time.process_time() - begin) / calls * 1e6


async def until(guard: ExportGuard, subject: str, *, refused: bool) -> float:
    """Milliseconds until ``guard`` refuses (or lets through) ``subject``."""
    begin = time.perf_counter()
    while True:  # asking precheck, as a request would, is what is measured
        if (await guard.precheck(subject, "crm", "customer")).refused == refused:
            return (time.perf_counter() - begin) * 1000
        await asyncio.sleep(0.001)


async def propagation(schema: str, redis_url: str, trials: int) -> tuple[list[float], list[float]]:
    clock, people = Clock(), FakePeople()
    guards = []
    for _ in range(2):
        engine = make_engine(schema_url(schema))
        holds = SharedHolds(engine, redis_url, clock)
        guard = ExportGuard(
            config(), MemoryCounters(), AlertStore(engine), people, clock=clock, holds=holds
        )
        await guard.load()
        guards.append(guard)
    a, b = guards
    placed, released = [], []
    for i in range(trials):
        subject = f"bench{i}"
        await a.observe(obs(T, 6000, subject=subject))
        (alert_id,) = (await a.precheck(subject, "crm", "customer")).alert_ids
        placed.append(await until(b, subject, refused=True))
        await b.resolve(alert_id, by="bench", verdict="benign")
        released.append(await until(a, subject, refused=False))
    for guard in guards:
        await guard.aclose()
    return placed, released


def row(name: str, ms: list[float]) -> str:
    return f"| {name} | {statistics.median(ms):.1f} | {max(ms):.1f} |"


async def main(trials: int) -> None:
    print("| holds in force | precheck CPU µs |\n|---:|---:|")
    for n in (0, 100, 10_000):
        print(f"| {n:,} | {await precheck_us(n):.2f} |")
    print("\n| path | p50 ms | max ms |\n|---|---:|---:|")
    for label, redis_url in (
        ("Redis fan-out", "redis://127.0.0.1:6379"),
        ("database polling only", f"redis://127.0.0.1:{free_port()}"),
    ):
        with temporary_schema("wg_holds_bench") as schema:
            ensure_schema(schema_url(schema))
            placed, released = await propagation(schema, redis_url, trials)
        print(row(f"block on A → refused on B, {label}", placed))
        print(row(f"resolve on B → through on A, {label}", released))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    asyncio.run(main(parser.parse_args().trials))

"""What the audit slot reservation adds to the request path, in CPU per request.

    .venv/bin/python bench/audit_reserve_bench.py [--events 50000] [--runs 5]

The proxy calls ``reserve()`` before forwarding and ``record(event, reserved=...)`` after;
before the reservation it called ``record(event)`` alone. Each run queues N events through a
started writer on SQLite (the queue is large enough; nothing yields, so the writer's own work
is not in the timing) and divides this process's CPU time by N. Prints the median of the
runs for ``when_full: reject`` (a slot is counted) and ``block`` (only the running check).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.settings import AuditSettings
from audit.writer import AuditWriter
from bench.audit_bench import database, sample_events


async def cpu_ns_per_event(when_full: str, reserve: bool, events: int, spool: Path) -> float:
    settings = AuditSettings(
        spool_dir=str(spool),
        queue_size=events + 1,
        when_full=when_full,  # type: ignore[arg-type]
        instance_id="bench",
        signing_key_env="WARDGATE_BENCH_NO_SIGNING_KEY",
    )
    batch = sample_events(events)
    with database("sqlite", "") as engine:
        writer = AuditWriter(settings, engine)
        await writer.start()
        started = time.process_time()
        if reserve:
            for event in batch:
                await writer.record(event, reserved=writer.reserve())
        else:
            for event in batch:
                await writer.record(event)
        spent = time.process_time() - started
        await writer.close()
    return spent / events * 1e9


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for when_full in ("reject", "block"):
            times: dict[bool, list[float]] = {False: [], True: []}
            for run in range(args.runs):
                for reserve in (False, True):
                    spool = Path(tmp) / f"spool-{when_full}-{reserve}-{run}"
                    times[reserve].append(
                        await cpu_ns_per_event(when_full, reserve, args.events, spool)
                    )
            plain, reserved = (statistics.median(times[r]) for r in (False, True))
            print(
                f"when_full={when_full}: record {plain:,.0f} ns, reserve + record "
                f"{reserved:,.0f} ns (+{reserved - plain:,.0f} ns per request)"
            )


if __name__ == "__main__":
    asyncio.run(main())

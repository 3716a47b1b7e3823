"""A writer process for the crash test: strict mode, prints each acknowledged event id.

Usage: python -m tests.audit.strict_child DB_URL SPOOL_DIR
"""

from __future__ import annotations

import asyncio
import sys

import structlog

from audit.settings import AuditSettings
from audit.store import make_engine
from audit.writer import AuditWriter
from tests.audit.conftest import make_event


async def main(db_url: str, spool_dir: str) -> None:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout = acks
    settings = AuditSettings(
        durability="strict",
        spool_dir=spool_dir,
        batch_size=50,
        retry_interval_s=60,
        signing_key_env="WARDGATE_TEST_NO_SUCH_KEY",
    )
    timeout = {} if db_url.startswith("sqlite") else {"connect_args": {"connect_timeout": 2}}
    engine = make_engine(db_url, **timeout)
    writer = AuditWriter(settings, engine)
    await writer.start()

    async def worker(w: int) -> None:
        n = 0
        while True:
            event = make_event(w * 1_000_000 + n)
            await writer.record(event)
            sys.stdout.write(event.id + "\n")
            sys.stdout.flush()
            n += 1

    await asyncio.gather(*(worker(w) for w in range(16)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))

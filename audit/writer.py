"""The audit writer: queue, batch, chain, commit (or spool), and tell strict callers.

    record(event) ─► queue ─► background task: batch ─► chain ─► worker thread:
                                                              database  (group commit)
                                                              or spool  (fsync) while it is away

``fast`` durability returns once the event is queued; ``strict`` returns once its batch is
committed or fsynced into the spool, one commit releasing every waiter of the batch.

In fast mode the proxy records after the answer has gone out, when a refusal could only lose
the event, never the data. So it ``reserve()``s a queue slot before forwarding (refused with
503 then, while refusing still protects the data) and hands it to ``record(reserved=True)``,
which always accepts; ``release()`` gives back a slot whose request ended without an event.
With ``when_full: reject`` the queue and the held slots together never exceed ``queue_size``. The
chain is computed here, in queue order, so seq order is commit order. While the spool holds
anything, new batches go behind it: the spool is replayed, oldest first, before anything
newer is written, so order and chain survive an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import time
from typing import Any

import orjson
import structlog
from sqlalchemy import Connection, Engine, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.dml import Insert

from audit.chain import Chain, Signer, load_signer, new_chain_id
from audit.event import AuditEvent
from audit.export import SyslogSink
from audit.models import checkpoints_table, events_table
from audit.settings import AuditSettings
from audit.spool import Spool
from gateway.errors import ServiceUnavailable

log = structlog.get_logger(__name__)

_STOP = object()
_Item = tuple[AuditEvent, "asyncio.Future[None] | None"]


class AuditWriter:
    """Batched, hash-chained, spool-backed writer of audit events.

    Counters for metrics: ``queued``, ``written``, ``spooled``, ``replayed``, ``failures``
    (events that could be neither committed nor spooled), ``queue_depth`` and ``reserved``.
    """

    def __init__(
        self,
        settings: AuditSettings,
        engine: Engine,
        *,
        signer: Signer | None = None,
        sink: SyslogSink | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.queued = self.written = self.spooled = self.replayed = self.failures = 0
        self._signer = signer if signer is not None else load_signer(settings)
        if sink is None and settings.syslog_url:
            sink = SyslogSink(settings.syslog_url)
        self._sink = sink
        self._queue: asyncio.Queue[Any] = asyncio.Queue(settings.queue_size)
        self._chain = Chain(
            new_chain_id(settings.instance_id),
            checkpoint_every=settings.checkpoint_every,
            checkpoint_interval_s=settings.checkpoint_interval_s,
            signer=self._signer,
        )
        self._spool: Spool | None = None
        self._task: asyncio.Task[None] | None = None
        self._accepting = False
        self._reject = settings.when_full == "reject"
        self._reserved = 0  # slots held for requests not yet recorded (when_full: reject)
        self._blocked = 0  # callers waiting for room in a full queue (when_full: block)
        self._none_blocked = asyncio.Event()
        self._db_down_until = 0.0
        self._replay_events = _idempotent_insert(engine, events_table)
        self._insert_checkpoints = _idempotent_insert(engine, checkpoints_table)

    @property
    def chain_id(self) -> str:
        return self._chain.chain_id

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @property
    def reserved(self) -> int:
        """Queue slots held by ``reserve()`` and not yet recorded or released."""
        return self._reserved

    @property
    def accepting(self) -> bool:
        """False before start, after close, and after a failure that stopped the writer."""
        return self._accepting

    @property
    def spool_pending(self) -> bool:
        return self._spool is not None and self._spool.pending

    async def start(self) -> None:
        """Open the spool, replay what an earlier process left in it, start draining."""
        self._spool = await asyncio.to_thread(Spool, self.settings.spool_dir)
        if self._spool.pending:
            log.info("audit_spool_found", path=str(self._spool.path))
            await asyncio.to_thread(self._replay)
        if self._sink is not None:
            await self._sink.start()
        self._accepting = True
        self._task = asyncio.create_task(self._run(), name="audit-writer")

    def reserve(self) -> bool:
        """Hold a queue slot for an event to be recorded later; True if one was taken.

        Raises ``ServiceUnavailable`` when the writer is not running, or when every slot is
        taken (``when_full: reject``). ``when_full: block`` takes none: its ``record`` waits
        for room instead of refusing. No await: nothing is held across a suspension point.
        """
        self._check_accepting()
        if not self._reject:
            return False
        if self._full():
            raise _backpressure()
        self._reserved += 1
        return True

    def release(self) -> None:
        """Give back a slot from ``reserve`` whose request ends without recording."""
        self._reserved -= 1

    async def record(self, event: AuditEvent, *, reserved: bool = False) -> None:
        """Queue ``event``; in strict mode, return only once it is durable.

        ``reserved``: the event takes the slot ``reserve()`` returned True for, so it is
        never refused for want of room (the slot is the caller's no longer, even on error).
        """
        if reserved:
            self._reserved -= 1  # the queue has room for it: queued + held <= queue_size
        self._check_accepting()
        waiter = None
        if self.settings.durability == "strict":
            waiter = asyncio.get_running_loop().create_future()
        item = (event, waiter)
        if self._reject:
            if not reserved and self._full():
                raise _backpressure()
            self._queue.put_nowait(item)
        else:
            self._blocked += 1
            try:
                await self._queue.put(item)
            finally:
                self._blocked -= 1
                if not self._blocked:
                    self._none_blocked.set()
            if self._task is None or self._task.done():  # stopped while this caller waited
                self._fail_queued()
        self.queued += 1
        if waiter is not None:
            await waiter

    def _full(self) -> bool:
        """Queued events plus held slots have reached ``queue_size`` (when_full: reject)."""
        return self._queue.qsize() + self._reserved >= self.settings.queue_size

    def _check_accepting(self) -> None:
        if not self._accepting:
            raise ServiceUnavailable(
                "the audit trail is not running, so no request can be recorded; retry shortly",
                reason_id="audit_unavailable",
            )

    async def close(self) -> None:
        """Stop accepting, write everything queued, checkpoint the tip, release the spool."""
        if self._task is None:
            return
        self._accepting = False
        if self._blocked:  # let every blocked caller in ahead of the stop
            self._none_blocked.clear()
            await self._none_blocked.wait()
        if not self._task.done():
            await self._queue.put(_STOP)
        with contextlib.suppress(Exception):  # a crash was logged by _run; the spool is kept
            await self._task
        self._task = None
        if self._sink is not None:
            await self._sink.close()
        assert self._spool is not None
        self._spool.close()

    # --- background task -----------------------------------------------------------------

    async def _run(self) -> None:
        try:
            stopping = False
            while not stopping:
                batch, stopping = await self._collect()
                if batch:
                    await self._commit(batch)
                elif self.spool_pending:
                    await asyncio.to_thread(self._replay_if_due)
            final = self._chain.checkpoint()
            await asyncio.to_thread(self._persist, [], [final] if final else [])
        except Exception:
            # Fail closed: refuse new requests rather than accept what cannot be recorded.
            self._accepting = False
            log.exception("audit_writer_stopped", queued=self._queue.qsize())
            self._fail_queued()
            raise

    def _fail_queued(self) -> None:
        failure = ServiceUnavailable(
            "the audit trail stopped; this request could not be recorded",
            reason_id="audit_unavailable",
        )
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not _STOP:
                self.failures += 1
                if item[1] is not None and not item[1].done():
                    item[1].set_exception(failure)

    async def _collect(self) -> tuple[list[_Item], bool]:
        """Wait for a first item, then take more until the batch is full or due."""
        idle_timeout = self.settings.retry_interval_s if self.spool_pending else None
        try:
            first = await asyncio.wait_for(self._queue.get(), idle_timeout)
        except TimeoutError:
            return [], False
        if first is _STOP:
            return [], True
        batch: list[_Item] = [first]
        if self._drain_into(batch):
            return batch, True
        # fast mode lingers once for the batch to fill (one timer, not one wake-up per event);
        # strict callers are waiting: commit what is there now (more gather meanwhile)
        if self.settings.durability == "fast" and len(batch) < self.settings.batch_size:
            await asyncio.sleep(self.settings.batch_interval_ms / 1000)
            if self._drain_into(batch):
                return batch, True
        return batch, False

    def _drain_into(self, batch: list[_Item]) -> bool:
        """Move queued items into ``batch`` up to the batch size; True if a stop was seen."""
        while len(batch) < self.settings.batch_size:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return False
            if item is _STOP:
                return True
            batch.append(item)
        return False

    async def _commit(self, batch: list[_Item]) -> None:
        rows = []
        for event, waiter in batch:
            try:
                rows.append(self._chain.append(event))
            except (TypeError, ValueError, AttributeError) as exc:  # a malformed event
                self.failures += 1
                log.error("audit_event_malformed", event_id=str(event.id), error=repr(exc))
                if waiter is not None:
                    waiter.set_exception(exc)
        checkpoint = self._chain.checkpoint() if self._chain.checkpoint_due() else None
        try:
            await asyncio.to_thread(self._persist, rows, [checkpoint] if checkpoint else [])
        except Exception as exc:  # neither database nor spool took it: tell every waiter
            self.failures += len(rows)
            log.error("audit_batch_lost", events=len(rows), error=repr(exc))
            failure = ServiceUnavailable(
                "the audit trail could not store this request's record; retry shortly",
                reason_id="audit_unavailable",
            )
            for _, waiter in batch:
                if waiter is not None and not waiter.done():
                    waiter.set_exception(failure)
            return
        for _, waiter in batch:
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        if self._sink is not None:
            self._sink.offer(rows)

    # --- worker thread -------------------------------------------------------------------

    def _persist(self, rows: list[dict[str, Any]], checkpoints: list[dict[str, Any]]) -> None:
        """Commit the batch, or append it to the spool; raise only if both fail."""
        assert self._spool is not None
        if not rows and not checkpoints:
            return
        self._replay_if_due()
        if not self._spool.pending and time.monotonic() >= self._db_down_until:
            try:
                with self.engine.begin() as conn:
                    if rows:
                        bulk_insert_events(conn, rows)
                    if checkpoints:
                        conn.execute(self._insert_checkpoints, checkpoints)
            except SQLAlchemyError as exc:
                self._database_failed(exc)
            else:
                self.written += len(rows)
                return
        self._spool.append({"events": rows, "checkpoints": checkpoints})
        self.spooled += len(rows)

    def _replay_if_due(self) -> None:
        assert self._spool is not None
        if self._spool.pending and time.monotonic() >= self._db_down_until:
            self._replay()

    def _replay(self) -> None:
        """Write every spooled batch in order (idempotently), then empty the spool."""
        assert self._spool is not None
        replayed = 0
        try:
            for batch in self._spool.batches():
                with self.engine.begin() as conn:
                    if batch["events"]:
                        conn.execute(self._replay_events, batch["events"])
                    if batch["checkpoints"]:
                        conn.execute(self._insert_checkpoints, batch["checkpoints"])
                replayed += len(batch["events"])
        except SQLAlchemyError as exc:
            self._database_failed(exc)
            return
        self._spool.clear()
        self.replayed += replayed
        self._db_down_until = 0.0
        log.info("audit_spool_replayed", events=replayed)

    def _database_failed(self, exc: SQLAlchemyError) -> None:
        self._db_down_until = time.monotonic() + self.settings.retry_interval_s
        log.warning(
            "audit_database_unavailable",
            error=type(getattr(exc, "orig", None) or exc).__name__,
            retry_in_s=self.settings.retry_interval_s,
        )


def _backpressure() -> ServiceUnavailable:
    return ServiceUnavailable(
        "the audit trail is saturated; retry in a moment",
        reason_id="audit_backpressure",
        headers={"retry-after": "1"},
    )


_EVENT_COLUMNS = [c.name for c in events_table.columns]
_COPY_EVENTS = f"COPY audit_events ({', '.join(_EVENT_COLUMNS)}) FROM STDIN"
_copy_values = operator.itemgetter(*_EVENT_COLUMNS)  # one C call per row, not one per column
_JSON_POSITIONS = [_EVENT_COLUMNS.index(c) for c in ("roles", "fields_masked", "pii_hits")]


def bulk_insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert fresh rows as fast as the database allows: COPY on PostgreSQL (≈ 3× an
    executemany INSERT, see bench/audit_bench.py), executemany elsewhere."""
    if conn.dialect.name != "postgresql":
        conn.execute(insert(events_table), rows)
        return
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(_COPY_EVENTS) as copy:
        for row in rows:
            values = list(_copy_values(row))
            for i in _JSON_POSITIONS:
                values[i] = orjson.dumps(values[i]).decode()
            copy.write_row(values)


def _idempotent_insert(engine: Engine, table: Any) -> Insert:
    """INSERT … ON CONFLICT (chain_id, seq) DO NOTHING: a spooled batch may already have
    been committed before the crash or lost acknowledgement that kept it in the spool."""
    dialect = engine.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=["chain_id", "seq"])
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=["chain_id", "seq"])
    raise ValueError(f"audit store: unsupported database {dialect!r}; use SQLite or PostgreSQL")

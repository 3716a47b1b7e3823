"""Append-only disk spool for audit batches while the database is unreachable.

One record per batch, one line per record: ``<length> <crc32 hex> <json>\\n``. Each append
is fsynced, so a batch is durable once ``append`` returns. A crash can leave only the last
record torn; it is detected (short, or bad CRC, with nothing valid after it) and cut off
when the spool is opened. Damage anywhere else is not a crash artefact: the spool refuses to
open rather than guess, and the file is left as evidence.

A lock file keeps two processes from sharing one spool directory.
"""

from __future__ import annotations

import fcntl
import os
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import structlog

from gateway.errors import ConfigError

log = structlog.get_logger(__name__)

SPOOL_NAME = "audit-spool.log"
LOCK_NAME = "audit-spool.lock"


def encode_record(batch: dict[str, Any]) -> bytes:
    """One spool line for ``batch`` (datetimes become ISO 8601 strings)."""
    payload = orjson.dumps(batch)
    return b"%d %08x " % (len(payload), zlib.crc32(payload)) + payload + b"\n"


def decode_record(line: bytes) -> dict[str, Any] | None:
    """The batch in one spool line, or ``None`` if the line is torn or damaged."""
    try:
        length_text, crc_text, rest = line.split(b" ", 2)
        length, crc = int(length_text), int(crc_text, 16)
    except ValueError:
        return None
    payload = rest[:-1] if rest.endswith(b"\n") else b""
    if len(payload) != length or zlib.crc32(payload) != crc:
        return None
    batch: dict[str, Any] = orjson.loads(payload)
    for key in ("events", "checkpoints"):
        for row in batch.get(key, ()):
            row["time"] = datetime.fromisoformat(row["time"])
    return batch


class Spool:
    """The spool file of one writer process."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock = (self.directory / LOCK_NAME).open("a+b")
        except OSError as exc:
            raise ConfigError(f"audit.spool_dir {self.directory}: cannot use it: {exc}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise ConfigError(
                f"audit.spool_dir {self.directory} is in use by another Wardgate process; "
                "give each instance its own spool_dir"
            ) from None
        self.path = self.directory / SPOOL_NAME
        self._file: BinaryIO = self.path.open("a+b")
        try:
            self._cut_torn_tail()
        except ConfigError:
            self.close()
            raise

    @property
    def pending(self) -> bool:
        """True while batches wait to be replayed into the database."""
        return self._file.tell() > 0

    def append(self, batch: dict[str, Any]) -> None:
        """Write one batch and fsync it: durable when this returns."""
        self._file.write(encode_record(batch))
        self._file.flush()
        os.fsync(self._file.fileno())

    def batches(self) -> Iterator[dict[str, Any]]:
        """Every spooled batch, oldest first, read one line at a time."""
        with self.path.open("rb") as reader:
            for line in reader:
                batch = decode_record(line)
                if batch is None:  # cannot happen after _cut_torn_tail; never guess
                    raise ConfigError(f"{self.path}: damaged record at offset {reader.tell()}")
                yield batch

    def clear(self) -> None:
        """Empty the spool once every batch in it is in the database."""
        self._file.truncate(0)
        self._file.seek(0)
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()
        self._lock.close()  # closing releases the flock

    def _cut_torn_tail(self) -> None:
        offset = 0
        with self.path.open("rb") as reader:
            for line in reader:
                if decode_record(line) is None:
                    if reader.read(1) or not _could_be_torn(line):
                        raise ConfigError(
                            f"{self.path}: damaged record at offset {offset} with records after "
                            "it; this is not a crash artefact. Move the file aside, inspect it, "
                            "and restart"
                        )
                    log.warning("audit_spool_torn_tail_cut", path=str(self.path), offset=offset)
                    self._file.truncate(offset)
                    os.fsync(self._file.fileno())
                    break
                offset += len(line)
        self._file.seek(0, os.SEEK_END)


def _could_be_torn(line: bytes) -> bool:
    # A crash mid-append leaves a prefix of a record (no newline yet) or zero-filled blocks.
    return not line.endswith(b"\n") or line.strip(b"\x00\n") == b""

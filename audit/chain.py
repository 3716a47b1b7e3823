"""The hash chain: canonical encoding, links, chain state and signed checkpoints.

Every row carries ``hash = SHA-256(canonical(prev_hash, seq, chain_id, event fields))``, so
editing, deleting, reordering or inserting a row breaks the chain at that row. A forger
who knows the algorithm could recompute the chain, so the writer also stores Ed25519-signed
checkpoints ``(chain_id, seq, hash)``; only the holder of the signing key can make those.

One chain per writer process lifetime: ``chain_id = "<instance_id or hostname>/<start time>-
<random>"``. A process never needs to read the database to know where its chain stands, so
it can start (and spool) while the database is down, and two processes that share an
instance id can never interleave one chain. Rows spooled by an earlier process keep their
own chain id and are replayed unchanged.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.event import EVENT_FIELDS, AuditEvent
from audit.models import as_utc
from audit.settings import AuditSettings
from gateway.errors import ConfigError

GENESIS_HASH = "0" * 64

# The columns covered by the hash (the encoding sorts keys, so order does not matter).
HASHED_FIELDS: tuple[str, ...] = ("chain_id", *EVENT_FIELDS)


def rfc3339(value: datetime) -> str:
    """``2026-11-26T16:11:36.000123Z``: UTC, always with microseconds."""
    return as_utc(value).isoformat(timespec="microseconds")[:-6] + "Z"


def canonical(prev_hash: str, seq: int, fields: Mapping[str, Any]) -> bytes:
    """The exact bytes that are hashed for one row."""
    doc: dict[str, Any] = {name: fields[name] for name in HASHED_FIELDS}
    doc["time"] = rfc3339(doc["time"])
    doc["prev_hash"] = prev_hash
    doc["seq"] = seq
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def link(prev_hash: str, seq: int, event: Mapping[str, Any]) -> str:
    """The hex SHA-256 of a row given its predecessor's hash, its seq and its fields."""
    return hashlib.sha256(canonical(prev_hash, seq, event)).hexdigest()


def _s(value: object) -> str | None:
    # The database returns text; a non-str value must hash as the text it will be stored as.
    return value if value is None or type(value) is str else str(value)


def event_fields(event: AuditEvent, chain_id: str) -> dict[str, Any]:
    """An event as the values the database will hand back (so the hash survives storage)."""
    return {
        "chain_id": chain_id,
        "id": _s(event.id),
        "request_id": _s(event.request_id),
        "time": as_utc(event.time),
        "subject": _s(event.subject),
        "roles": [_s(r) for r in event.roles],
        "auth_method": _s(event.auth_method),
        "client_addr": _s(event.client_addr),
        "user_agent": _s(event.user_agent),
        "upstream": _s(event.upstream),
        "entity": _s(event.entity),
        "method": _s(event.method),
        "path": _s(event.path),
        "decision": _s(event.decision),
        "reason_id": _s(event.reason_id),
        "matched_rule": _s(event.matched_rule),
        "status": int(event.status),
        "records": int(event.records),
        "fields_masked": [_s(f) for f in event.fields_masked],
        "pii_hits": {str(k): int(v) for k, v in event.pii_hits.items()},
        "request_bytes": int(event.request_bytes),
        "response_bytes": int(event.response_bytes),
        "latency_ms": float(event.latency_ms),
    }


def _without_nul(value: Any) -> Any:
    # PostgreSQL text cannot hold NUL; a client-chosen value must never fail a batch.
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {_without_nul(k): v for k, v in value.items()}
    return value


def new_chain_id(instance_id: str | None) -> str:
    """A chain id unique to this process start (see the module docstring)."""
    base = instance_id or socket.gethostname()
    started = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{base}/{started}-{secrets.token_hex(3)}"


# --- signing ---------------------------------------------------------------------------


def checkpoint_message(kind: str, chain_id: str, seq: int, hash_: str, at: datetime) -> bytes:
    """What a checkpoint (``kind="checkpoint"``) or prune anchor (``"anchor"``) signs."""
    return f"wardgate-audit-{kind}:v1\n{chain_id}\n{seq}\n{hash_}\n{rfc3339(at)}".encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short stable name for a key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    """Signs checkpoints and anchors with an Ed25519 private key (never printed)."""

    private_key: Ed25519PrivateKey

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id!r})"

    @property
    def key_id(self) -> str:
        return key_id(self.private_key.public_key())

    def sign(self, message: bytes) -> str:
        return self.private_key.sign(message).hex()


def parse_private_key(text: str, source: str) -> Ed25519PrivateKey:
    """A PEM private key or a 32-byte seed in hex; ``source`` names where it came from."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{source}: not a readable unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{source}: the PEM key is not Ed25519; generate one with Ed25519")
        return key
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise ConfigError(f"{source}: expected a PEM Ed25519 key or 64 hex digits (32 bytes)")
    return Ed25519PrivateKey.from_private_bytes(seed)


def parse_public_key(text: str, source: str) -> Ed25519PublicKey:
    """A PEM public key, a raw public key in hex, or a private key (its public half)."""
    text = text.strip()
    if text.startswith("-----BEGIN PUBLIC KEY"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except ValueError as exc:
            raise ConfigError(f"{source}: not a readable PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigError(f"{source}: the public key is not Ed25519")
        return key
    if text.startswith("-----BEGIN"):
        return parse_private_key(text, source).public_key()
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    except ValueError as exc:
        raise ConfigError(f"{source}: expected a PEM key or 64 hex digits") from exc


def load_signer(settings: AuditSettings, environ: Mapping[str, str] | None = None) -> Signer | None:
    """The configured signer, or ``None`` when no key is configured (checkpoints unsigned)."""
    env = os.environ if environ is None else environ
    if env.get(settings.signing_key_env):
        return Signer(parse_private_key(env[settings.signing_key_env], settings.signing_key_env))
    if settings.signing_key_file:
        path = Path(settings.signing_key_file)
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"audit.signing_key_file: cannot read {path}: {exc}") from None
        return Signer(parse_private_key(text, f"audit.signing_key_file {path}"))
    return None


def signature_ok(public_key: Ed25519PublicKey, message: bytes, signature_hex: str) -> bool:
    """True only for a well-formed signature that verifies."""
    try:
        public_key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- chain state -----------------------------------------------------------------------


class Chain:
    """The tip of this process's chain; links events in the order they are appended."""

    def __init__(
        self,
        chain_id: str,
        *,
        checkpoint_every: int,
        checkpoint_interval_s: float,
        signer: Signer | None,
    ) -> None:
        self.chain_id = chain_id
        self.seq = 0
        self.tip = GENESIS_HASH
        self._every = checkpoint_every
        self._interval = checkpoint_interval_s
        self._signer = signer
        self._checkpointed_seq = 0
        self._checkpointed_at = time.monotonic()

    def append(self, event: AuditEvent) -> dict[str, Any]:
        """The database row for ``event`` as the next link of the chain."""
        row = event_fields(event, self.chain_id)
        seq = self.seq + 1
        data = canonical(self.tip, seq, row)
        if b"\\u0000" in data:  # rare: a NUL somewhere; store U+FFFD instead
            row = {name: _without_nul(value) for name, value in row.items()}
            data = canonical(self.tip, seq, row)
        row["seq"], row["prev_hash"] = seq, self.tip
        row["hash"] = self.tip = hashlib.sha256(data).hexdigest()
        self.seq = seq
        return row

    def checkpoint_due(self) -> bool:
        pending = self.seq - self._checkpointed_seq
        if pending <= 0:
            return False
        elapsed = time.monotonic() - self._checkpointed_at
        return pending >= self._every or elapsed >= self._interval

    def checkpoint(self) -> dict[str, Any] | None:
        """A checkpoint row for the current tip, or ``None`` if nothing new since the last."""
        if self.seq == self._checkpointed_seq:
            return None
        at = datetime.now(UTC)
        message = checkpoint_message("checkpoint", self.chain_id, self.seq, self.tip, at)
        self._checkpointed_seq = self.seq
        self._checkpointed_at = time.monotonic()
        return {
            "chain_id": self.chain_id,
            "seq": self.seq,
            "hash": self.tip,
            "time": at,
            "signature": self._signer.sign(message) if self._signer else None,
            "key_id": self._signer.key_id if self._signer else None,
        }

"""API keys for service accounts: table ``api_keys`` and a fast in-memory view of it.

A key reads ``wgk_<id>_<secret>``: a 12-character public id (the row's primary key, safe to
log) and a 32-byte random secret of which only the SHA-256 is stored. The full key is shown
once, at creation. ``identify`` looks keys up in memory; the view is reloaded from the
database about every second so a revocation made by another instance (or the CLI) takes
effect everywhere within a second, and at once in the instance that made it.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import JSON, DateTime, Engine, String, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from audit.store import Base, make_sessionmaker
from gateway.errors import BadRequest, NotFound

log = structlog.get_logger(__name__)

KEY_PREFIX = "wgk_"
ID_LENGTH = 12
SECRET_BYTES = 32
_SECRET_LENGTH = 43  # base64url of 32 bytes, unpadded
KEY_LENGTH = len(KEY_PREFIX) + ID_LENGTH + 1 + _SECRET_LENGTH
_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class ApiKey(Base):
    """One API key. ``secret_sha256`` is all that is kept of the secret."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(255), index=True)
    roles: Mapped[list[str]] = mapped_column(JSON)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(255))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as ``identify`` and the CLI see it (never the secret)."""

    id: str
    name: str
    subject: str
    roles: frozenset[str]
    secret_sha256: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    last_used_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def split_key(key: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed key, else ``None`` (no partial parses)."""
    if len(key) != KEY_LENGTH or not key.startswith(KEY_PREFIX):
        return None
    key_id = key[len(KEY_PREFIX) : len(KEY_PREFIX) + ID_LENGTH]
    separator = key[len(KEY_PREFIX) + ID_LENGTH]
    secret = key[len(KEY_PREFIX) + ID_LENGTH + 1 :]
    # The id may itself contain '_': it is split by position, never by searching for '_'.
    if separator != "_" or not _URLSAFE.issuperset(key_id) or not _URLSAFE.issuperset(secret):
        return None
    return key_id, secret


def hash_secret(secret: str) -> str:
    """SHA-256 hex of the secret part.

    A fast hash is enough: the secret is 256 random bits, so there is nothing to guess by
    brute force and a slow password hash would only cost time on every request.
    """
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes even for timezone=True columns; they were written in UTC.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _record(row: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        name=row.name,
        subject=row.subject,
        roles=frozenset(row.roles or ()),
        secret_sha256=row.secret_sha256,
        created_at=_aware(row.created_at) or datetime.now(UTC),
        created_by=row.created_by,
        revoked_at=_aware(row.revoked_at),
        revoked_reason=row.revoked_reason,
        last_used_at=_aware(row.last_used_at),
    )


def _require_text(field: str, value: str, limit: int) -> str:
    value = value.strip()
    if not value or len(value) > limit:
        raise BadRequest(
            f"{field} must be between 1 and {limit} characters; got {value!r}",
            reason_id="api_key_bad_input",
        )
    return value


class ApiKeyStore:
    """Creates, revokes and lists API keys; ``lookup`` answers from memory."""

    def __init__(self, engine: Engine, *, reload_interval_s: float = 1.0) -> None:
        self._sessions = make_sessionmaker(engine)
        self._reload_interval_s = reload_interval_s
        self._by_id: dict[str, ApiKeyRecord] = {}
        self._used: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    # -- the hot path ------------------------------------------------------------------

    def lookup(self, key_id: str) -> ApiKeyRecord | None:
        """The key with this public id, from memory (no I/O)."""
        return self._by_id.get(key_id)

    def mark_used(self, key_id: str) -> None:
        """Remember a successful use; ``last_used_at`` is written in the next reload."""
        self._used.add(key_id)

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Load all keys, then keep reloading them in the background."""
        self._apply(await asyncio.to_thread(self._load))
        if self._task is None:
            self._task = asyncio.create_task(self._reload_forever())

    async def close(self) -> None:
        """Stop reloading and write the pending ``last_used_at`` updates."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await asyncio.to_thread(self._write_used, self._take_used())

    async def _reload_forever(self) -> None:
        while True:
            await asyncio.sleep(self._reload_interval_s)
            try:
                await asyncio.to_thread(self._write_used, self._take_used())
                self._apply(await asyncio.to_thread(self._load))
            except SQLAlchemyError as exc:
                # Keep serving the last loaded keys; revocations made here still apply.
                log.warning("api_keys_reload_failed", error=type(exc).__name__)

    def _load(self) -> dict[str, ApiKeyRecord]:
        # Runs in a worker thread: reads only, the swap happens in _apply on the caller's side.
        with self._sessions() as session:
            return {row.id: _record(row) for row in session.scalars(select(ApiKey))}

    def _apply(self, loaded: dict[str, ApiKeyRecord]) -> None:
        # Revocation is one-way: a load that read the row just before a local revoke
        # committed must not bring the key back to life.
        for key_id, current in list(self._by_id.items()):
            fresh = loaded.get(key_id)
            if current.revoked and fresh is not None and not fresh.revoked:
                loaded[key_id] = current
        self._by_id = loaded

    def _take_used(self) -> set[str]:
        used, self._used = self._used, set()
        return used

    def _write_used(self, used: set[str]) -> None:
        if not used:
            return
        with self._sessions.begin() as session:
            session.execute(
                update(ApiKey).where(ApiKey.id.in_(used)).values(last_used_at=datetime.now(UTC))
            )

    # -- administration ----------------------------------------------------------------

    def create(self, name: str, subject: str, roles: Iterable[str], created_by: str) -> str:
        """Store a new key and return it in full: the only time the secret exists."""
        name = _require_text("name", name, 200)
        subject = _require_text("subject", subject, 255)
        created_by = _require_text("created_by", created_by, 255)
        role_list = sorted({_require_text("role", role, 100) for role in roles})
        if not role_list:
            raise BadRequest(
                "an API key needs at least one role; pass --role ROLE",
                reason_id="api_key_bad_input",
            )
        key_id = _new_key_id()
        secret = secrets.token_urlsafe(SECRET_BYTES)
        row = ApiKey(
            id=key_id,
            name=name,
            subject=subject,
            roles=role_list,
            secret_sha256=hash_secret(secret),
            created_at=datetime.now(UTC),
            created_by=created_by,
        )
        with self._sessions.begin() as session:
            session.add(row)
        self._by_id[key_id] = _record(row)
        log.info("api_key_created", key_id=key_id, subject=subject, roles=role_list)
        return f"{KEY_PREFIX}{key_id}_{secret}"

    def revoke(self, key_id: str, reason: str) -> bool:
        """Revoke a key; ``False`` if it already was. Raises ``NotFound`` for an unknown id."""
        reason = _require_text("reason", reason, 500)
        with self._sessions.begin() as session:
            row = session.get(ApiKey, key_id)
            if row is None:
                raise NotFound(
                    f"no API key with id {key_id!r}; list the keys to find its id",
                    reason_id="api_key_not_found",
                )
            changed = row.revoked_at is None
            if changed:
                row.revoked_at = datetime.now(UTC)
                row.revoked_reason = reason
            record = _record(row)
        self._by_id[key_id] = record
        if changed:
            log.info("api_key_revoked", key_id=key_id, subject=record.subject, reason=reason)
        return changed

    def disable_for_subject(self, subject: str, reason: str = "subject left") -> list[str]:
        """Revoke every active key of ``subject`` (on leave); returns the ids revoked."""
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            rows = session.scalars(
                select(ApiKey).where(ApiKey.subject == subject, ApiKey.revoked_at.is_(None))
            ).all()
            for row in rows:
                row.revoked_at = now
                row.revoked_reason = reason
            records = [_record(row) for row in rows]
        for record in records:
            self._by_id[record.id] = record
        if records:
            log.info("api_keys_disabled", subject=subject, key_ids=[r.id for r in records])
        return [r.id for r in records]

    def list(self) -> list[ApiKeyRecord]:
        """All keys, newest first, read from the database."""
        with self._sessions() as session:
            rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc())).all()
            return [_record(row) for row in rows]


def _new_key_id() -> str:
    """12 url-safe characters (9 random bytes), never starting with '-': an id that did
    would read as an option in ``wardgate keys revoke ID``."""
    while (key_id := secrets.token_urlsafe(9)).startswith("-"):
        pass
    return key_id

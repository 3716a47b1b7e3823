"""Live access status of people: a memory map the identify stage reads on every request.

The map is refreshed from the database every ``refresh_s`` (only rows whose ``change_seq``
moved) and at once when another instance announces a change on the Redis channel
``wardgate:people``. Changes made through this instance are applied to the map before the
call returns. If the database or Redis is away, the last known map stays in force.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TypeVar

import structlog
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gateway.directory.changes import Changes
from gateway.directory.roles import RoleStore, new_person
from gateway.directory.store import Person, as_utc, init_directory_db
from gateway.errors import BadRequest
from gateway.fanout import Fanout

__all__ = ["CHANNEL", "PeopleStatus", "RoleStore"]

CHANNEL = "wardgate:people"
log = structlog.get_logger(__name__)
T = TypeVar("T")
OnRevoke = Callable[[str], Awaitable[object] | None]  # what it returns is ignored


@dataclass(frozen=True, slots=True)
class _Entry:
    status: str
    revoked_before: float | None
    revoke_at: float | None
    departing: bool


def _epoch(value: datetime | None) -> float | None:
    value = as_utc(value)
    return value.timestamp() if value else None


class PeopleStatus:
    """``AccessStatus`` + ``PeopleActions`` over the people table.

    Every write goes through ``apply`` (one transaction, one cause), so sync, HR, SCIM and
    officers share one path to the map, the Redis fan-out and ``on_revoke`` (which the lead
    wires to ``ApiKeyStore.disable_for_subject``).
    """

    def __init__(
        self,
        engine: Engine,
        redis_url: str | None,
        clock: Callable[[], float] = time.time,
        *,
        roles: RoleStore | None = None,
        on_revoke: OnRevoke | None = None,
        refresh_s: float = 0.25,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._roles = roles
        self._on_revoke = on_revoke
        self._entries: dict[str, _Entry] = {}
        self._seq = 0
        # one refresh at a time: an older read applied after a newer one would resurrect
        # a revoked person until their next change
        self._refreshing = asyncio.Lock()
        self._fanout = Fanout("people", CHANNEL, redis_url, self._follow, refresh_s=refresh_s)

    # -- the per-request questions (memory only) --------------------------------------

    def refusal(self, subject: str, issued_at: float | None) -> str | None:
        entry = self._entries.get(subject)
        if entry is None:
            return None
        if entry.status in ("left", "disabled"):
            return "person_revoked"
        if entry.status == "suspended":
            return "person_suspended"
        if entry.revoke_at is not None and self._clock() >= entry.revoke_at:
            return "person_revoked"
        revoked_before = entry.revoked_before
        if revoked_before is not None and issued_at is not None and issued_at < revoked_before:
            return "token_revoked"
        return None

    def is_departing(self, subject: str) -> bool:
        entry = self._entries.get(subject)
        return entry is not None and entry.departing and entry.status == "active"

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Load the map, then keep it fresh in the background."""
        await asyncio.to_thread(init_directory_db, self._engine)
        await self.refresh()
        await self._fanout.start()

    async def close(self) -> None:
        await self._fanout.close()

    async def refresh(self) -> None:
        """Read every person changed since the last refresh into the map."""
        async with self._refreshing:
            seq, changed = await asyncio.to_thread(self._load_since, self._seq)
            self._entries.update(changed)
            self._seq = max(self._seq, seq)
        if self._roles is not None:
            self._roles.observe(self._seq)

    def _load_since(self, seq: int) -> tuple[int, dict[str, _Entry]]:
        with Session(self._engine) as session:
            rows = session.execute(
                select(
                    Person.subject,
                    Person.status,
                    Person.revoked_before,
                    Person.revoke_at,
                    Person.departing_since,
                    Person.change_seq,
                ).where(Person.change_seq > seq)
            ).all()
        changed = {
            r.subject: _Entry(
                status=r.status,
                revoked_before=_epoch(r.revoked_before),
                revoke_at=_epoch(r.revoke_at),
                departing=r.departing_since is not None,
            )
            for r in rows
        }
        return max([seq, *(r.change_seq for r in rows)]), changed

    async def _follow(self) -> None:
        """One round of the background follow: read changes, then revoke whoever is due."""
        await self.refresh()
        await self._revoke_due()

    async def _revoke_due(self) -> None:
        now = self._clock()
        due = [
            subject
            for subject, e in self._entries.items()
            if e.revoke_at is not None
            and e.revoke_at <= now
            and e.status not in ("left", "disabled")
        ]
        for subject in due:
            await self.revoke(subject, reason="scheduled termination", cause="scheduled")

    # -- writes ---------------------------------------------------------------------------

    async def apply(self, cause: str, change: Callable[[Changes], T]) -> T:
        """Run ``change`` in one transaction, then update the map, fan out and disable keys."""

        def run() -> tuple[Changes, T]:
            # results outlive the session (SCIM renders the person it changed)
            with Session(self._engine, expire_on_commit=False) as session, session.begin():
                changes = Changes(session, cause)
                return changes, change(changes)

        changes, result = await asyncio.to_thread(run)
        if changes.touched:
            await self.refresh()
            await self._fanout.announce(str(self._seq))
        for subject in sorted(changes.revoked):
            await self._disable_keys(subject)
        return result

    async def _disable_keys(self, subject: str) -> None:
        if self._on_revoke is None:
            return
        result = self._on_revoke(subject)
        if inspect.isawaitable(result):
            await result

    async def revoke(
        self, subject: str, reason: str, cause: str, at: datetime | None = None
    ) -> None:
        """End ``subject``'s access at ``at`` (default now); a future ``at`` is scheduled."""
        now = datetime.fromtimestamp(self._clock(), UTC)

        def change(ch: Changes) -> None:
            person = ch.person(subject) or new_person(ch, subject, "admin")
            ch.end_access(person, at or now, now, reason)

        await self.apply(cause, change)

    async def suspend(self, subject: str, *, by: str, reason: str) -> None:
        def change(ch: Changes) -> None:
            person = ch.person(subject) or new_person(ch, subject, "admin")
            if person.status in ("left", "disabled"):
                return  # already refused for good; suspending must not look like a reinstatement
            ch.set_status(person, "suspended", reason)

        await self.apply(f"admin:{by}", change)

    async def reinstate(self, subject: str, *, by: str, reason: str) -> None:
        def change(ch: Changes) -> None:
            person = ch.person(subject)
            if person is None or person.status != "suspended":
                raise BadRequest(
                    f"{subject!r} is not suspended; only a suspension can be reinstated "
                    "(a person who left comes back through the directory)",
                    reason_id="person_not_suspended",
                )
            ch.set_status(person, "active", reason)

        await self.apply(f"admin:{by}", change)

    async def mark_departing(self, subject: str, *, last_day: str | None, by: str) -> None:
        try:
            day = date.fromisoformat(last_day) if last_day else None
        except ValueError:
            raise BadRequest(
                f"last_day {last_day!r} is not a date; send YYYY-MM-DD", reason_id="bad_body"
            ) from None

        def change(ch: Changes) -> None:
            ch.mark_departing(ch.person(subject) or new_person(ch, subject, "admin"), day)

        await self.apply(f"admin:{by}", change)

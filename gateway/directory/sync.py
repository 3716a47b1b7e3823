"""Directory sync: compare what the directory says with what Wardgate holds, then apply.

``plan_sync`` is pure and decides everything, including whether the sync is implausible
(it would revoke more than ``max_revoke_share`` of the active people, or empty a role
that has members now: the signs of a broken filter or a half-empty directory). A refused
sync changes nothing. An unreachable directory changes nothing either: people are marked
stale and keep their last known roles; HR and SCIM pushes still revoke meanwhile.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import structlog
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from gateway.directory.changes import REVOKED_STATUSES, Changes, bump_seq
from gateway.directory.model import DirectoryPerson, DirectorySnapshot, DirectorySource, Grant
from gateway.directory.settings import DirectorySettings
from gateway.directory.status import PeopleStatus
from gateway.directory.store import Person, RoleChange, RoleGrantRow

log = structlog.get_logger(__name__)
OnAlert = Callable[[str, str], Awaitable[None] | None]  # (reason_id, message)


@dataclass(frozen=True, slots=True)
class CurrentPerson:
    """What Wardgate holds about a person now."""

    subject: str
    status: str
    source: str
    roles: frozenset[Grant] = frozenset()
    status_cause: str | None = None

    @property
    def revocable_by_sync(self) -> bool:
        """Only a sync may undo its own disable; HR, SCIM and officers' revocations stick."""
        return (self.status_cause or "").startswith("sync:")


@dataclass(frozen=True, slots=True)
class Mover:
    subject: str
    added: frozenset[Grant]
    removed: frozenset[Grant]


@dataclass(frozen=True, slots=True)
class SyncDiff:
    """What a sync changes (or would change, if ``refused`` is set it changes nothing)."""

    source: str
    joiners: tuple[DirectoryPerson, ...] = ()
    movers: tuple[Mover, ...] = ()
    leavers: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    re_enabled: tuple[str, ...] = ()
    refused: str | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def empty(self) -> bool:
        return not (self.joiners or self.movers or self.leavers or self.disabled or self.re_enabled)


def plan_sync(
    snapshot: DirectorySnapshot,
    current: dict[str, CurrentPerson],
    max_revoke_share: float = 0.10,
) -> SyncDiff:
    """Decide joiners, movers, leavers, disabled and re-enabled people; refuse if implausible."""
    joiners: list[DirectoryPerson] = []
    movers: list[Mover] = []
    disabled: list[str] = []
    re_enabled: list[str] = []
    for subject, seen in sorted(snapshot.people.items()):
        cur = current.get(subject)
        if cur is None:
            if seen.status == "active":
                joiners.append(seen)
            else:
                disabled.append(subject)  # known from now on, refused from the start
            continue
        if seen.status != "active":
            if cur.status not in REVOKED_STATUSES:
                disabled.append(subject)
            continue
        if cur.status in REVOKED_STATUSES:
            if cur.revocable_by_sync:
                re_enabled.append(subject)
                movers.append(Mover(subject, seen.roles, frozenset()))
            continue
        if seen.roles != cur.roles:
            movers.append(Mover(subject, seen.roles - cur.roles, cur.roles - seen.roles))
    leavers = [
        s
        for s, cur in sorted(current.items())
        if s not in snapshot.people
        and cur.source == snapshot.source
        and cur.status not in REVOKED_STATUSES
    ]
    diff = SyncDiff(
        source=snapshot.source,
        joiners=tuple(joiners),
        movers=tuple(movers),
        leavers=tuple(leavers),
        disabled=tuple(disabled),
        re_enabled=tuple(re_enabled),
    )
    refusal = _implausible(diff, current, max_revoke_share)
    return replace(diff, refused=refusal) if refusal else diff


def _implausible(diff: SyncDiff, current: dict[str, CurrentPerson], share: float) -> str | None:
    active = {s for s, c in current.items() if c.status == "active" and c.source == diff.source}
    revoking = active & set(diff.leavers + diff.disabled)
    if active and len(revoking) > share * len(active):
        return (
            f"would revoke {len(revoking)} of {len(active)} active people "
            f"(more than max_revoke_share {share:.0%}); check the directory and its filters, "
            "or raise directory.max_revoke_share if this is real"
        )
    roles_after = _roles_after(diff, current)
    held_now = {g for c in current.values() if c.status == "active" for g in c.roles}
    emptied = sorted(held_now - roles_after)
    if emptied:
        names = ", ".join(f"{role}@{domain}" for role, domain in emptied)
        return f"would leave role(s) {names} with no member; check the group mappings"
    return None


def _roles_after(diff: SyncDiff, current: dict[str, CurrentPerson]) -> set[Grant]:
    gone = set(diff.leavers) | set(diff.disabled)
    roles = {s: set(c.roles) for s, c in current.items() if c.status == "active" and s not in gone}
    for subject in diff.re_enabled:
        roles[subject] = set()
    for mover in diff.movers:
        roles[mover.subject] = (roles.get(mover.subject, set()) | mover.added) - mover.removed
    for joiner in diff.joiners:
        roles[joiner.subject] = set(joiner.roles)
    return {g for grants in roles.values() for g in grants}


def load_current(session: Session) -> dict[str, CurrentPerson]:
    roles: dict[str, set[Grant]] = {}
    for subject, role, domain in session.execute(
        select(RoleGrantRow.subject, RoleGrantRow.role, RoleGrantRow.domain)
    ):
        roles.setdefault(subject, set()).add((role, domain))
    return {
        p.subject: CurrentPerson(
            p.subject, p.status, p.source, frozenset(roles.get(p.subject, ())), p.status_cause
        )
        for p in session.scalars(select(Person))
    }


def apply_sync(diff: SyncDiff, snapshot: DirectorySnapshot, changes: Changes) -> None:
    """Apply a planned, not refused, diff in ``changes``' transaction."""
    assert diff.refused is None, "a refused sync must not be applied"
    for seen in snapshot.people.values():
        person = changes.upsert(seen, snapshot.source)
        person.last_seen_in_directory = changes.at
        person.stale = False
    for subject in diff.leavers:
        if leaver := changes.person(subject):
            changes.revoke(leaver, "left", "gone from the directory")
    for subject in diff.disabled:
        if locked := changes.person(subject):
            changes.revoke(locked, snapshot.people[subject].status, "disabled in the directory")
    for subject in diff.re_enabled:
        if back := changes.person(subject):
            changes.set_status(back, "active", "enabled in the directory again")
    for seen in snapshot.people.values():
        current = changes.person(seen.subject)
        if current is not None and current.status not in REVOKED_STATUSES:
            changes.set_roles(current, seen.roles, source=snapshot.source)


class SyncRunner:
    """Runs syncs: ``run_once`` for the CLI, ``run_forever`` beside the gateway."""

    def __init__(
        self,
        settings: DirectorySettings,
        engine: Engine,
        status: PeopleStatus,
        source: DirectorySource,
        *,
        on_alert: OnAlert | None = None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._status = status
        self._source = source
        self._on_alert = on_alert
        self._unreachable = False

    async def run_once(self, dry_run: bool = False) -> SyncDiff:
        """One full sync; raises ``DirectoryUnavailable`` (after marking people stale)."""
        try:
            snapshot = await asyncio.to_thread(self._source.snapshot)
        except Exception as exc:
            await self._mark_stale(exc)
            raise
        self._unreachable = False
        with Session(self._engine) as session:
            current = load_current(session)
        diff = plan_sync(snapshot, current, self._settings.max_revoke_share)
        if dry_run:
            return diff
        if diff.refused:
            await self._refuse(diff)
            return diff
        await self._status.apply(f"sync:{diff.run_id}", lambda ch: apply_sync(diff, snapshot, ch))
        log.info(
            "directory_synced",
            run_id=diff.run_id,
            joiners=len(diff.joiners),
            movers=len(diff.movers),
            leavers=len(diff.leavers),
            disabled=len(diff.disabled),
            re_enabled=len(diff.re_enabled),
        )
        return diff

    async def run_forever(self) -> None:
        """Full sync every ``interval_s``; between them, resync when a group changed."""
        last_full = float("-inf")
        marker: str | None = None
        while True:
            now = time.monotonic()
            fresh_marker = await self._marker()
            if now - last_full >= self._settings.interval_s or (
                fresh_marker and fresh_marker != marker
            ):
                marker = fresh_marker
                last_full = now
                try:
                    await self.run_once()
                except Exception as exc:  # already marked stale and alerted; try again later
                    log.warning("directory_sync_failed", error=type(exc).__name__)
            await asyncio.sleep(self._settings.change_poll_s)

    async def _marker(self) -> str | None:
        try:
            return await asyncio.to_thread(self._source.changes_marker)
        except Exception:  # the full sync will report the outage
            return None

    async def _refuse(self, diff: SyncDiff) -> None:
        message = f"sync {diff.run_id} refused: {diff.refused}"
        log.error("directory_sync_refused", run_id=diff.run_id, reason=diff.refused)
        with Session(self._engine) as session, session.begin():
            session.add(
                RoleChange(
                    kind="sync_refused",
                    subject=None,
                    detail=message[:1024],
                    cause=f"sync:{diff.run_id}",
                )
            )
        await self._alert("directory_sync_refused", message)

    async def _mark_stale(self, exc: Exception) -> None:
        def mark() -> None:
            with Session(self._engine) as session, session.begin():
                bump_seq(session)  # the writers' lock order: counter first, then people
                session.execute(
                    update(Person).where(Person.source == self._source.name).values(stale=True)
                )

        await asyncio.to_thread(mark)
        if self._unreachable:
            return
        self._unreachable = True
        message = f"directory ({self._source.name}) unreachable: {exc}; keeping last known roles"
        log.error("directory_unreachable", source=self._source.name, error=str(exc))
        await self._alert("directory_unreachable", message)

    async def _alert(self, reason_id: str, message: str) -> None:
        if self._on_alert is None:
            return
        result = self._on_alert(reason_id, message)
        if inspect.isawaitable(result):
            await result

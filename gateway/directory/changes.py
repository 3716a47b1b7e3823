"""Changing people and roles, inside one transaction, with every change's cause recorded.

Every writer (sync, HR webhook, SCIM, officers) goes through ``Changes`` so that the
``change_seq`` counter, the ``role_changes`` log and the revocation rules are the same
whichever door a change came in by.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from gateway.directory.model import DirectoryPerson, Grant
from gateway.directory.store import (
    DirectoryState,
    Person,
    RoleChange,
    RoleGrantRow,
    as_utc,
    utcnow,
)

REVOKED_STATUSES = frozenset({"left", "disabled"})


def bump_seq(session: Session) -> int:
    """Take the next change number; the counter row stays locked until commit."""
    seq = session.execute(
        update(DirectoryState)
        .where(DirectoryState.id == 1)
        .values(seq=DirectoryState.seq + 1)
        .returning(DirectoryState.seq)
    ).scalar_one_or_none()
    if seq is None:
        session.add(DirectoryState(id=1, seq=1))
        session.flush()
        return 1
    return int(seq)


class Changes:
    """One transaction's changes to people, all stamped with one ``change_seq`` and ``cause``.

    Create it first thing in the transaction: it takes the change counter's row lock
    before any person row is locked, so writers always lock in the same order (no deadlock).
    """

    def __init__(self, session: Session, cause: str) -> None:
        self.session = session
        self.cause = cause
        self.at = utcnow()
        self.touched: set[str] = set()
        self.revoked: set[str] = set()  # subjects whose access ended in this transaction
        self._seq = bump_seq(session)

    def touch(self, person: Person) -> None:
        person.change_seq = self._seq
        person.updated_at = self.at
        self.touched.add(person.subject)

    def log(
        self,
        kind: str,
        subject: str | None,
        *,
        role: str | None = None,
        domain: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.session.add(
            RoleChange(
                kind=kind,
                subject=subject,
                role=role,
                domain=domain,
                detail=detail,
                cause=self.cause,
                at=self.at,
            )
        )

    def person(self, subject: str) -> Person | None:
        return self.session.get(Person, subject, with_for_update=True)

    def set_status(self, person: Person, status: str, detail: str | None = None) -> bool:
        """Set the status; leaving ``active`` for left/disabled also drops every grant."""
        if person.status == status:
            return False
        self.log("status", person.subject, detail=f"{person.status} -> {status}" + _suffix(detail))
        person.status = status
        person.status_cause = self.cause
        if status in REVOKED_STATUSES:
            person.revoke_at = None
            person.departing_since = None
            self.set_roles(person, set(), source=person.source)
            self.revoked.add(person.subject)
        self.touch(person)
        return True

    def reactivate(self, person: Person, roles: Iterable[Grant], detail: str) -> None:
        """Back to ``active`` with ``roles`` at once: the revocation dropped every grant, and
        the status alone would leave the person with no access until the next sync."""
        if self.set_status(person, "active", detail):
            self.set_roles(person, roles, source=person.source, detail=detail)

    def revoke(self, person: Person, status: str = "left", detail: str | None = None) -> bool:
        """End access now: every token issued before now stays refused, even if re-enabled."""
        revoked_before = as_utc(person.revoked_before)
        if revoked_before is None or revoked_before < self.at:
            person.revoked_before = self.at
            self.touch(person)
        return self.set_status(person, status, detail)

    def end_access(self, person: Person, when: datetime, now: datetime, detail: str) -> None:
        """Revoke at ``when``: at once if it has come, else scheduled (refusal starts by itself)."""
        if person.status in REVOKED_STATUSES:
            # Already gone: a repeat or a late event must not move revoked_before. But a
            # revocation by someone else now owns it, or whoever revoked first (SCIM, a sync)
            # could re-activate a person HR or an officer meant to keep out.
            if person.status_cause != self.cause:
                self.log("status", person.subject, detail=f"{detail}: already {person.status}")
                person.status_cause = self.cause
                self.touch(person)
            return
        if when > now:
            person.revoke_at = when
            self.log("status", person.subject, detail=f"{detail}: scheduled for {when.isoformat()}")
            self.touch(person)
        else:
            self.revoke(
                person, "left", detail
            )  # a past ``when`` still kills tokens issued until now

    def mark_departing(self, person: Person, last_day: date | None) -> None:
        """Record a notice; ignored for people already gone (a late notice re-enables no one)."""
        if person.status in REVOKED_STATUSES or person.departing_since is not None:
            return
        person.departing_since = self.at
        person.last_day = last_day
        self.log("status", person.subject, detail=f"departing, last day {last_day or 'unknown'}")
        self.touch(person)

    def set_roles(
        self, person: Person, roles: Iterable[Grant], source: str, detail: str | None = None
    ) -> tuple[set[Grant], set[Grant]]:
        """Make the person's grants exactly ``roles``; return (added, removed).

        ``detail`` says why in each grant's and revocation's log entry."""
        wanted = set(roles)
        rows = self.session.scalars(
            select(RoleGrantRow).where(RoleGrantRow.subject == person.subject)
        ).all()
        have = {(r.role, r.domain) for r in rows}
        added, removed = wanted - have, have - wanted
        for role, domain in sorted(removed):
            self.session.execute(
                delete(RoleGrantRow).where(
                    RoleGrantRow.subject == person.subject,
                    RoleGrantRow.role == role,
                    RoleGrantRow.domain == domain,
                )
            )
            self.log("revoke", person.subject, role=role, domain=domain, detail=detail)
        for role, domain in sorted(added):
            self.session.add(
                RoleGrantRow(
                    subject=person.subject,
                    role=role,
                    domain=domain,
                    source=source,
                    granted_at=self.at,
                )
            )
            self.log("grant", person.subject, role=role, domain=domain, detail=detail)
        if added or removed:
            self.touch(person)
        return added, removed

    def upsert(self, seen: DirectoryPerson, source: str) -> Person:
        """Create or update a person's attributes from a directory record (not status/roles)."""
        person = self.person(seen.subject)
        is_new = person is None
        if person is None:
            person = Person(subject=seen.subject, source=source, status="active", stale=False)
            self.session.add(person)
            self.log("status", seen.subject, detail="joined")
        values = {
            "display_name": seen.display_name,
            "email": seen.email,
            "employee_id": seen.employee_id,
            "department": seen.department,
            "manager": seen.manager,
        }
        if is_new or any(getattr(person, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(person, key, value)
            self.touch(person)
        return person


def _suffix(detail: str | None) -> str:
    return f" ({detail})" if detail else ""

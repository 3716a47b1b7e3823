"""The role store: who holds which role in which upstream, read by the policy module."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gateway.directory.changes import Changes
from gateway.directory.model import Grant
from gateway.directory.store import Person, RoleGrantRow


class RoleStore:
    """Grants of active people as Casbin grouping rules (subject, role, domain).

    ``version`` is the highest change number seen; it is advanced by ``PeopleStatus`` when
    its cache refreshes (pass ``roles=`` to it) and by ``set_roles`` here, so the policy
    module recompiles exactly when a grant or a status changed.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._version = 0

    @property
    def version(self) -> int:
        return self._version

    def observe(self, seq: int) -> None:
        """Record that the database has reached change number ``seq``."""
        self._version = max(self._version, seq)

    def grants(self) -> list[tuple[str, str, str]]:
        """(subject, role, domain) for every grant of a person whose status is ``active``."""
        with Session(self._engine) as session:
            rows = session.execute(
                select(RoleGrantRow.subject, RoleGrantRow.role, RoleGrantRow.domain)
                .join(Person, Person.subject == RoleGrantRow.subject)
                .where(Person.status == "active")
                .order_by(RoleGrantRow.subject, RoleGrantRow.role, RoleGrantRow.domain)
            )
            return [(subject, role, domain) for subject, role, domain in rows]

    def set_roles(
        self, subject: str, roles: set[Grant], cause: str
    ) -> tuple[set[Grant], set[Grant]]:
        """Make ``subject``'s grants exactly ``roles`` (blocking); return (added, removed).

        An unknown subject is created as an ``admin``-sourced active person.
        """
        with Session(self._engine) as session, session.begin():
            changes = Changes(session, cause)
            person = changes.person(subject) or new_person(changes, subject, "admin")
            result = changes.set_roles(person, roles, source="admin")
            seq = person.change_seq
        self.observe(seq)
        return result


def new_person(changes: Changes, subject: str, source: str, status: str = "active") -> Person:
    """Add a person nobody has synced yet (officer or HR acted first)."""
    person = Person(subject=subject, source=source, status=status, status_cause=changes.cause)
    changes.session.add(person)
    changes.log("status", subject, detail=f"created as {status}")
    changes.touch(person)
    return person

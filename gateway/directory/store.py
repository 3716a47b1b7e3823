"""People, their roles and every change to either: tables and read helpers.

``directory_state.seq`` is one counter bumped (row-locked) by every change; each changed
person row takes the new value as ``change_seq``. Because the counter row stays locked
until commit, changes commit in ``seq`` order, so a reader that asks for
``change_seq > last_seen`` never misses one. Mutations live in ``changes.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Engine,
    Integer,
    String,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from audit.store import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every stored time is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class Person(Base):
    __tablename__ = "people"

    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    employee_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    department: Mapped[str | None] = mapped_column(String(128))
    manager: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))  # file | ldap | scim | admin
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_cause: Mapped[str | None] = mapped_column(String(255))  # who set the status
    revoked_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoke_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # scheduled
    departing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_day: Mapped[date | None] = mapped_column(Date)
    last_seen_in_directory: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    change_seq: Mapped[int] = mapped_column(BigInteger, index=True, default=0)


class RoleGrantRow(Base):
    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("subject", "role", "domain"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(255), index=True)
    role: Mapped[str] = mapped_column(String(128))
    domain: Mapped[str] = mapped_column(String(128), default="*")
    source: Mapped[str] = mapped_column(String(16))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RoleChange(Base):
    """Every grant, revoke and status change with its cause (``sync:<run>``, ``hr:<id>`` …)."""

    __tablename__ = "role_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # grant | revoke | status | sync_refused
    subject: Mapped[str | None] = mapped_column(String(255), index=True)
    role: Mapped[str | None] = mapped_column(String(128))
    domain: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[str | None] = mapped_column(String(1024))
    cause: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class HrEvent(Base):
    """HR webhook events by id: a replay is recognised and changes nothing."""

    __tablename__ = "hr_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(String(255))
    body_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DirectoryState(Base):
    __tablename__ = "directory_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


DIRECTORY_TABLES = [
    Base.metadata.tables[name]
    for name in ("people", "role_grants", "role_changes", "hr_events", "directory_state")
]


def init_directory_db(engine: Engine) -> None:
    """Create the directory tables if missing (Alembic does this in production) and the counter."""
    Base.metadata.create_all(engine, tables=DIRECTORY_TABLES)
    with Session(engine) as session, session.begin():
        if session.get(DirectoryState, 1) is None:
            session.add(DirectoryState(id=1, seq=0))


@dataclass(frozen=True, slots=True)
class PersonView:
    """A person as the officer API shows them."""

    subject: str
    display_name: str | None
    status: str
    roles: list[tuple[str, str]]
    source: str
    department: str | None
    departing: bool
    last_day: date | None
    revoked_before: datetime | None
    last_seen_in_directory: datetime | None
    stale: bool


def _view(person: Person, roles: list[tuple[str, str]]) -> PersonView:
    return PersonView(
        subject=person.subject,
        display_name=person.display_name,
        status=person.status,
        roles=sorted(roles),
        source=person.source,
        department=person.department,
        departing=person.departing_since is not None and person.status == "active",
        last_day=person.last_day,
        revoked_before=as_utc(person.revoked_before),
        last_seen_in_directory=as_utc(person.last_seen_in_directory),
        stale=person.stale,
    )


def list_people(engine: Engine) -> list[PersonView]:
    """Everyone Wardgate knows, sorted by subject, with their current grants."""
    with Session(engine) as session:
        roles: dict[str, list[tuple[str, str]]] = {}
        for subject, role, domain in session.execute(
            select(RoleGrantRow.subject, RoleGrantRow.role, RoleGrantRow.domain)
        ):
            roles.setdefault(subject, []).append((role, domain))
        people = session.scalars(select(Person).order_by(Person.subject))
        return [_view(p, roles.get(p.subject, [])) for p in people]


def get_person(engine: Engine, subject: str) -> PersonView | None:
    with Session(engine) as session:
        person = session.get(Person, subject)
        if person is None:
            return None
        return _view(person, grants_of(session, subject))


def grants_of(session: Session, subject: str) -> list[tuple[str, str]]:
    rows = session.execute(
        select(RoleGrantRow.role, RoleGrantRow.domain).where(RoleGrantRow.subject == subject)
    )
    return [(role, domain) for role, domain in rows]

"""What a directory source reports: plain records, no I/O, shared by sources and sync."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

Grant = tuple[str, str]  # (role, domain); domain is an upstream name or "*"
SourceName = Literal["file", "ldap", "scim", "admin"]
DirectoryStatus = Literal["active", "disabled", "left"]


class DirectoryUnavailable(Exception):
    """The directory could not be read (down, refused the bind, timed out)."""


@dataclass(frozen=True, slots=True)
class DirectoryPerson:
    """One person as the directory sees them now."""

    subject: str
    display_name: str | None = None
    email: str | None = None
    employee_id: str | None = None
    department: str | None = None
    manager: str | None = None
    status: DirectoryStatus = "active"
    roles: frozenset[Grant] = frozenset()


@dataclass(frozen=True, slots=True)
class DirectorySnapshot:
    """Everyone a source lists, keyed by subject."""

    source: SourceName
    people: dict[str, DirectoryPerson] = field(default_factory=dict)


class DirectorySource(Protocol):
    """A place people and their groups come from (file or LDAP)."""

    name: SourceName

    def snapshot(self) -> DirectorySnapshot:
        """Read everyone now; raise ``DirectoryUnavailable`` if the directory cannot be read."""
        ...

    def changes_marker(self) -> str | None:
        """A value that changes when any group changes (None: no cheap change detection)."""
        ...

    def department_roles(self, department: str | None) -> frozenset[Grant]:
        """The roles a department brings (used by HR ``transferred`` events)."""
        ...

"""A directory kept in one YAML file, for small shops and the demo.

```yaml
role_rules: [{group: crm-sales, role: sales, domain: "*"}]   # added to settings' rules
department_roles: {sales: [sales]}                             # merged over settings'
groups:
  crm-sales: {members: [sales02], groups: [crm-sales-emea]}   # groups = nested groups
people:
  - {subject: sales01, name: 王芳, mail: …, employee_id: …, department: sales,
     manager: …, groups: [crm-sales], status: active}          # active | disabled | left
```
A person's roles are those of their groups (direct or nested) plus their department's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.directory.model import (
    DirectoryPerson,
    DirectorySnapshot,
    DirectoryUnavailable,
    Grant,
    SourceName,
)
from gateway.directory.rules import Group, groups_by_member, roles_for, transitive_members
from gateway.directory.settings import DirectorySettings, RoleRule
from gateway.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FilePerson(_Strict):
    subject: str = Field(min_length=1)
    name: str | None = None
    mail: str | None = None
    employee_id: str | None = None
    department: str | None = None
    manager: str | None = None
    groups: list[str] = Field(default_factory=list)
    status: Literal["active", "disabled", "left"] = "active"


class FileGroup(_Strict):
    members: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)


class FileDirectory(_Strict):
    role_rules: list[RoleRule] = Field(default_factory=list)
    department_roles: dict[str, list[str]] = Field(default_factory=dict)
    groups: dict[str, FileGroup] = Field(default_factory=dict)
    people: list[FilePerson] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> FileDirectory:
        subjects = [p.subject for p in self.people]
        dupes = sorted({s for s in subjects if subjects.count(s) > 1})
        if dupes:
            raise ValueError(f"people listed twice: {', '.join(dupes)}")
        unknown = {g for p in self.people for g in p.groups} | {
            n for g in self.groups.values() for n in g.groups
        }
        unknown -= set(self.groups)
        if unknown:
            raise ValueError(
                f"unknown groups referenced: {', '.join(sorted(unknown))}; "
                "define them under groups:"
            )
        return self


def read_directory_file(path: Path) -> FileDirectory:
    """Parse and validate the file; ``ConfigError`` names the problem and where."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise DirectoryUnavailable(f"directory file {path} not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return FileDirectory.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"{path}: invalid directory file: {problems}") from None


class FileSource:
    """``DirectorySource`` reading a YAML file each time (it is small and may be edited)."""

    name: SourceName = "file"

    def __init__(self, path: str | Path, settings: DirectorySettings) -> None:
        self._path = Path(path)
        self._settings = settings

    def snapshot(self) -> DirectorySnapshot:
        directory = read_directory_file(self._path)
        rules = [*self._settings.role_rules, *directory.role_rules]
        departments = self._department_map(directory)
        direct: dict[str, set[str]] = {
            name: {f"person:{m}" for m in g.members} | {f"group:{n}" for n in g.groups}
            for name, g in directory.groups.items()
        }
        for person in directory.people:
            for name in person.groups:
                direct[name].add(f"person:{person.subject}")
        nested = transitive_members({f"group:{k}": v for k, v in direct.items()})
        member_groups = groups_by_member(nested)
        people = {}
        for p in directory.people:
            groups = [
                Group(name=g.removeprefix("group:"))
                for g in member_groups.get(f"person:{p.subject}", ())
            ]
            roles = roles_for(groups, rules) | departments.get(p.department or "", frozenset())
            people[p.subject] = DirectoryPerson(
                subject=p.subject,
                display_name=p.name,
                email=p.mail,
                employee_id=p.employee_id,
                department=p.department,
                manager=p.manager,
                status=p.status,
                roles=roles,
            )
        return DirectorySnapshot(source="file", people=people)

    def changes_marker(self) -> str | None:
        try:
            stat = self._path.stat()
        except OSError:
            return None
        return f"{stat.st_mtime_ns}:{stat.st_size}"

    def department_roles(self, department: str | None) -> frozenset[Grant]:
        departments = self._department_map(read_directory_file(self._path))
        return departments.get(department or "", frozenset())

    def _department_map(self, directory: FileDirectory) -> dict[str, frozenset[Grant]]:
        merged = {**self._settings.department_roles, **directory.department_roles}
        return {dept: frozenset((role, "*") for role in roles) for dept, roles in merged.items()}

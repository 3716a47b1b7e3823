"""Which directory source the settings ask for, and the department → roles mapping."""

from __future__ import annotations

from gateway.directory.file import FileSource
from gateway.directory.ldap import LdapSource
from gateway.directory.model import DirectorySource, Grant
from gateway.directory.settings import DirectorySettings
from gateway.errors import ConfigError


def make_source(settings: DirectorySettings) -> DirectorySource:
    """The configured source; ``ConfigError`` when ``directory.source`` is ``none``."""
    if settings.source == "file" and settings.file:
        return FileSource(settings.file, settings)
    if settings.source == "ldap" and settings.ldap is not None:
        return LdapSource(settings.ldap, settings.role_rules, settings.department_roles)
    raise ConfigError(
        "directory.source is 'none': set it to 'file' (with directory.file) or 'ldap' "
        "(with a directory.ldap section) to sync people"
    )


def department_roles(settings: DirectorySettings, department: str | None) -> frozenset[Grant]:
    """Roles a department brings: the file directory's mapping, else the settings' one."""
    if settings.source == "file" and settings.file:
        return FileSource(settings.file, settings).department_roles(department)
    roles = settings.department_roles.get(department or "", [])
    return frozenset((role, "*") for role in roles)

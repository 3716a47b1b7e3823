"""LDAP / Active Directory source (ldap3): people, nested groups and account status.

Reading is split in two: a ``Searcher`` (one method: paged search → ``Entry`` list; the
real one is ldap3 over the network, tests may plug in recorded entries) and pure functions
that turn entries into people. Attribute values are read raw and decoded here, because
ldap3's formatters return some values (OpenLDAP's permanent lock ``000001010000Z``) as
bytes and others as datetimes depending on the schema it happened to load.
"""

from __future__ import annotations

import hashlib
import math
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import structlog

# ldap3 ships no type information (and no stubs exist for 2.9)
from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from gateway.directory.model import (
    DirectoryPerson,
    DirectorySnapshot,
    DirectoryStatus,
    DirectoryUnavailable,
    Grant,
    SourceName,
)
from gateway.directory.rules import Group, normalise_dn, roles_for, transitive_members
from gateway.directory.settings import LdapSettings, RoleRule

log = structlog.get_logger(__name__)

IN_CHAIN = "1.2.840.113556.1.4.1941"  # AD: LDAP_MATCHING_RULE_IN_CHAIN
AD_ACCOUNTDISABLE = 0x2
AD_NEVER = {0, 0x7FFFFFFFFFFFFFFF}
AD_EPOCH_OFFSET_S = 11_644_473_600  # 1601-01-01 → 1970-01-01
PPOLICY_PERMANENT = "000001010000Z"


@dataclass(frozen=True, slots=True)
class Entry:
    """One search result: its DN and raw values by lower-cased attribute name."""

    dn: str
    attrs: dict[str, list[bytes]]

    def values(self, name: str) -> list[str]:
        return [v.decode("utf-8", "replace") for v in self.attrs.get(name.lower(), [])]

    def first(self, name: str) -> str | None:
        values = self.values(name)
        return values[0] if values else None


class Searcher(Protocol):
    def search(self, base: str, ldap_filter: str, attributes: Sequence[str]) -> list[Entry]: ...

    def close(self) -> None: ...


class Ldap3Searcher:
    """Paged searches over one bound ldap3 connection; LDAP errors → ``DirectoryUnavailable``."""

    def __init__(self, settings: LdapSettings) -> None:
        self._page_size = settings.page_size
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=settings.ca_file)
        server = Server(settings.url, get_info=NONE, tls=tls, connect_timeout=settings.timeout_s)
        self._conn = Connection(
            server,
            user=settings.bind_dn,
            password=settings.password(),
            receive_timeout=math.ceil(settings.timeout_s),  # ldap3 packs it as an int
            raise_exceptions=True,
            read_only=True,
        )
        try:
            self._conn.open()
            if settings.start_tls:
                self._conn.start_tls()
            self._conn.bind()
        except LDAPException as exc:
            self.close()
            raise DirectoryUnavailable(f"cannot bind to {settings.url}: {_describe(exc)}") from None

    def search(self, base: str, ldap_filter: str, attributes: Sequence[str]) -> list[Entry]:
        try:
            results = self._conn.extend.standard.paged_search(
                base,
                ldap_filter,
                SUBTREE,
                attributes=list(attributes),
                paged_size=self._page_size,
                generator=False,
            )
        except LDAPException as exc:
            raise DirectoryUnavailable(
                f"search {ldap_filter} under {base}: {_describe(exc)}"
            ) from None
        return [
            Entry(r["dn"], {k.lower(): list(v) for k, v in r["raw_attributes"].items()})
            for r in results
            if r.get("type") == "searchResEntry"
        ]

    def close(self) -> None:
        try:
            self._conn.unbind()
        except LDAPException:
            log.debug("ldap_unbind_failed")
        finally:
            sock = getattr(self._conn, "socket", None)
            if sock is not None:  # ldap3 leaves the socket of a failed connect open
                sock.close()


def _describe(exc: LDAPException) -> str:
    return f"{type(exc).__name__}: {exc}"


# -- account status (pure) -------------------------------------------------------------


def ad_disabled(entry: Entry, now: float) -> bool:
    """AD: ``userAccountControl`` ACCOUNTDISABLE, or ``accountExpires`` has passed."""
    uac = entry.first("userAccountControl")
    if uac and int(uac) & AD_ACCOUNTDISABLE:
        return True
    expires = entry.first("accountExpires")
    if not expires:
        return False
    ticks = int(expires)
    return ticks not in AD_NEVER and ticks / 10_000_000 - AD_EPOCH_OFFSET_S <= now


def ppolicy_locked(entry: Entry, now: float, lockout_duration_s: int) -> bool:
    """OpenLDAP ppolicy: ``pwdAccountLockedTime`` set (permanent, or within the duration)."""
    locked = entry.first("pwdAccountLockedTime")
    if not locked:
        return False
    if locked == PPOLICY_PERMANENT or lockout_duration_s == 0:
        return True
    locked_at = datetime.strptime(locked[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp()
    return now < locked_at + lockout_duration_s


def entry_status(entry: Entry, settings: LdapSettings, now: float) -> DirectoryStatus:
    if settings.dialect == "ad" and ad_disabled(entry, now):
        return "disabled"
    if settings.dialect == "openldap" and ppolicy_locked(entry, now, settings.lockout_duration_s):
        return "disabled"
    if settings.status_attribute:
        value = (entry.first(settings.status_attribute) or "").lower()
        if value in {v.lower() for v in settings.disabled_values}:
            return "disabled"
    return "active"


def status_attributes(settings: LdapSettings) -> list[str]:
    names = (
        ["userAccountControl", "accountExpires"]
        if settings.dialect == "ad"
        else ["pwdAccountLockedTime"]
    )
    return [*names, *([settings.status_attribute] if settings.status_attribute else [])]


# -- group membership --------------------------------------------------------------------


def group_name(dn: str) -> str:
    """The value of a DN's first RDN: ``cn=crm-sales,ou=groups,…`` → ``crm-sales``."""
    return dn.split(",", 1)[0].partition("=")[2].strip()


def in_chain_filter(user_filter: str, group_dn: str) -> str:
    """AD: users that are members of ``group_dn`` directly or through nested groups."""
    return f"(&{user_filter}(memberOf:{IN_CHAIN}:={escape_filter_chars(group_dn)}))"


class LdapSource:
    """``DirectorySource`` over LDAP; each ``snapshot`` opens, reads and closes a connection."""

    name: SourceName = "ldap"

    def __init__(
        self,
        settings: LdapSettings,
        rules: Iterable[RoleRule],
        department_map: dict[str, list[str]] | None = None,
        *,
        connect: Callable[[], Searcher] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._rules = list(rules)
        self._departments = department_map or {}
        self._connect = connect or (lambda: Ldap3Searcher(settings))
        self._clock = clock

    def snapshot(self) -> DirectorySnapshot:
        s = self._settings
        a = s.attributes
        person_attrs = [a.login, a.mail, a.employee_id, a.department, a.manager, a.display_name]
        extra = ["memberOf"] if s.membership == "memberof" else []
        searcher = self._connect()
        try:
            users = searcher.search(
                s.user_base, s.user_filter, [*person_attrs, *extra, *status_attributes(s)]
            )
            memberships = self._memberships(searcher, users)
        finally:
            searcher.close()
        now = self._clock()
        people: dict[str, DirectoryPerson] = {}
        for user in users:
            subject = user.first(a.login)
            if not subject:
                log.warning("ldap_entry_without_login", dn=user.dn, attribute=a.login)
                continue
            people[subject] = DirectoryPerson(
                subject=subject,
                display_name=user.first(a.display_name),
                email=user.first(a.mail),
                employee_id=user.first(a.employee_id),
                department=user.first(a.department),
                manager=user.first(a.manager),
                status=entry_status(user, s, now),
                roles=roles_for(memberships.get(normalise_dn(user.dn), ()), self._rules),
            )
        return DirectorySnapshot(source="ldap", people=people)

    def _memberships(self, searcher: Searcher, users: list[Entry]) -> dict[str, list[Group]]:
        """User DN (normalised) → every group it belongs to, nested ones included."""
        s = self._settings
        if s.membership == "memberof":
            return {
                normalise_dn(u.dn): [Group(group_name(g), g) for g in u.values("memberOf")]
                for u in users
            }
        groups = searcher.search(s.group_base, s.group_filter, ["cn", "member", "uniqueMember"])
        named = {normalise_dn(g.dn): Group(g.first("cn") or group_name(g.dn), g.dn) for g in groups}
        if s.membership == "in_chain":
            return self._in_chain(searcher, named)
        direct = {
            normalise_dn(g.dn): {
                normalise_dn(m) for m in g.values("member") + g.values("uniqueMember")
            }
            for g in groups
        }
        result: dict[str, list[Group]] = {}
        for group_dn, members in transitive_members(direct).items():
            for member in members:
                result.setdefault(member, []).append(named[group_dn])
        return result

    def _in_chain(self, searcher: Searcher, groups: dict[str, Group]) -> dict[str, list[Group]]:
        # One in-chain query per group some rule maps; the server walks the nesting.
        mapped = [g for g in groups.values() if roles_for([g], self._rules)]
        result: dict[str, list[Group]] = {}
        for group in mapped:
            assert group.dn is not None
            members = searcher.search(
                self._settings.user_base,
                in_chain_filter(self._settings.user_filter, group.dn),
                ["1.1"],  # no attributes: only the DNs
            )
            for member in members:
                result.setdefault(normalise_dn(member.dn), []).append(group)
        return result

    def changes_marker(self) -> str | None:
        """A digest of every group's last change: a mover shows up on the group entry."""
        s = self._settings
        # entryCSN (OpenLDAP) has sub-second resolution; modifyTimestamp only seconds
        stamps = ["uSNChanged"] if s.dialect == "ad" else ["modifyTimestamp", "entryCSN"]
        searcher = self._connect()
        try:
            groups = searcher.search(s.group_base, s.group_filter, stamps)
        finally:
            searcher.close()
        seen = sorted(
            normalise_dn(g.dn) + "=" + ",".join(v for a in stamps for v in g.values(a))
            for g in groups
        )
        return hashlib.sha256("\n".join(seen).encode()).hexdigest()

    def department_roles(self, department: str | None) -> frozenset[Grant]:
        roles = self._departments.get(department or "", [])
        return frozenset((role, "*") for role in roles)

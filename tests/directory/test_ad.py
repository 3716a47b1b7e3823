"""Active Directory semantics on recorded entries (no AD here; MOCK_SYNC rejects in-chain
filters): userAccountControl, accountExpires and LDAP_MATCHING_RULE_IN_CHAIN membership."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from gateway.directory.ldap import (
    IN_CHAIN,
    Entry,
    LdapSource,
    ad_disabled,
    entry_status,
    in_chain_filter,
)
from gateway.directory.settings import LdapSettings, RoleRule

BASE = "DC=corp,DC=example,DC=com"
USERS = f"OU=Staff,{BASE}"
GROUPS = f"OU=Groups,{BASE}"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC).timestamp()


def filetime(when: datetime) -> str:
    return str(int((when.timestamp() + 11_644_473_600) * 10_000_000))


def user(sam: str, uac: int = 512, expires: str = "9223372036854775807") -> Entry:
    return Entry(
        f"CN={sam},{USERS}",
        {
            "samaccountname": [sam.encode()],
            "useraccountcontrol": [str(uac).encode()],
            "accountexpires": [expires.encode()],
            "department": [b"Sales"],
        },
    )


@pytest.mark.parametrize(
    ("entry", "disabled"),
    [
        (user("a", 512), False),  # NORMAL_ACCOUNT
        (user("b", 514), True),  # NORMAL_ACCOUNT | ACCOUNTDISABLE
        (user("c", 66050), True),  # ... | DONT_EXPIRE_PASSWORD | ACCOUNTDISABLE
        (user("d", 66048), False),  # DONT_EXPIRE_PASSWORD only
        (user("e", expires="0"), False),  # 0 = never expires
        (user("f", expires="9223372036854775807"), False),  # 0x7FFF… = never
        (
            user("g", expires=filetime(datetime(2026, 11, 25, tzinfo=UTC))),
            True,
        ),  # expired yesterday
        (user("h", expires=filetime(datetime(2027, 1, 1, tzinfo=UTC))), False),  # expires later
    ],
)
def test_ad_account_status(entry: Entry, disabled: bool) -> None:
    assert ad_disabled(entry, NOW) is disabled


class RecordedDirectory:
    """Answers searches from recorded entries and remembers the filters it was asked."""

    def __init__(
        self, users: list[Entry], groups: list[Entry], in_chain: dict[str, list[str]]
    ) -> None:
        self.users, self.groups, self.in_chain = users, groups, in_chain
        self.filters: list[str] = []

    def search(self, base: str, ldap_filter: str, attributes: Sequence[str]) -> list[Entry]:
        self.filters.append(ldap_filter)
        if base == GROUPS:
            return self.groups
        for group_dn, members in self.in_chain.items():
            if ldap_filter == in_chain_filter("(objectClass=user)", group_dn):
                return [Entry(m, {}) for m in members]
        return self.users

    def close(self) -> None:
        pass


def test_in_chain_membership_maps_nested_groups_and_status() -> None:
    sales = f"CN=Sales (EMEA),{GROUPS}"  # parentheses must be escaped in the filter
    sales_berlin = f"CN=Sales Berlin,{GROUPS}"  # nested in Sales (EMEA); AD resolves it
    recorded = RecordedDirectory(
        users=[user("anna"), user("ben"), user("carl", 514), user("dora")],
        groups=[
            Entry(sales, {"cn": [b"Sales (EMEA)"], "member": [sales_berlin.encode()]}),
            Entry(sales_berlin, {"cn": [b"Sales Berlin"], "member": [f"CN=ben,{USERS}".encode()]}),
            Entry(f"CN=Canteen,{GROUPS}", {"cn": [b"Canteen"]}),
        ],
        in_chain={
            sales: [f"CN=anna,{USERS}", f"cn=ben,ou=staff,{BASE.lower()}", f"CN=carl,{USERS}"]
        },
    )
    settings = LdapSettings(
        url="ldaps://dc1.corp.example.com",
        dialect="ad",
        user_base=USERS,
        user_filter="(objectClass=user)",
        group_base=GROUPS,
        group_filter="(objectClass=group)",
        attributes={"login": "sAMAccountName", "department": "department"},  # type: ignore[arg-type]
    )
    source = LdapSource(
        settings,
        [RoleRule(group_dn=sales, role="sales")],
        connect=lambda: recorded,
        clock=lambda: NOW,
    )

    people = source.snapshot().people

    assert people["anna"].roles == people["ben"].roles == frozenset({("sales", "*")})
    assert people["dora"].roles == frozenset()
    assert people["carl"].status == "disabled"
    assert people["anna"].department == "Sales"
    in_chain = [f for f in recorded.filters if IN_CHAIN in f]
    assert in_chain == [
        f"(&(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:=CN=Sales \\28EMEA\\29,{GROUPS}))"
    ]


def test_ad_change_marker_follows_usn_changed() -> None:
    group = Entry(f"CN=Sales,{GROUPS}", {"usnchanged": [b"1000"]})
    recorded = RecordedDirectory([], [group], {})
    settings = LdapSettings(url="ldap://dc1", dialect="ad", user_base=USERS, group_base=GROUPS)
    source = LdapSource(settings, [], connect=lambda: recorded, clock=time.time)
    before = source.changes_marker()
    recorded.groups = [Entry(group.dn, {"usnchanged": [b"1001"]})]
    assert source.changes_marker() != before


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (b"Terminated", "disabled"),
        (b"ON LEAVE", "disabled"),
        (b"Active", "active"),
        (None, "active"),
    ],
)
def test_status_attribute_of_other_directories(value: bytes | None, status: str) -> None:
    settings = LdapSettings(
        url="ldap://dir1",
        user_base=USERS,
        group_base=GROUPS,
        status_attribute="employeeStatus",
        disabled_values=["terminated", "on leave"],
    )
    entry = Entry(f"uid=x,{USERS}", {"employeestatus": [value]} if value else {})
    assert entry_status(entry, settings, NOW) == status

"""Directory sync against a real OpenLDAP: joiners, movers, leavers, locks and refusals."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
import structlog.testing
from ldap3 import Connection, Server
from ldap3.core.exceptions import LDAPBindError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gateway.directory.ldap import LdapSource
from gateway.directory.model import DirectoryUnavailable
from gateway.directory.settings import DirectorySettings
from gateway.directory.source import make_source
from gateway.directory.status import PeopleStatus, RoleStore
from gateway.directory.store import RoleChange, get_person, list_people
from gateway.directory.sync import SyncRunner
from tests.directory.conftest import LdapTree
from tests.directory.slapd import SUFFIX

pytestmark = pytest.mark.ldap

SALES = ("sales", "*")


def runner(
    settings: DirectorySettings,
    engine: Engine,
    people: PeopleStatus,
    alerts: list[str] | None = None,
) -> SyncRunner:
    sink = alerts if alerts is not None else []
    return SyncRunner(
        settings, engine, people, make_source(settings), on_alert=lambda rid, msg: sink.append(rid)
    )


def grants_of(engine: Engine, subject: str) -> set[tuple[str, str, str]]:
    return {g for g in RoleStore(engine).grants() if g[0] == subject}


@pytest.mark.parametrize("nested", ["expand", "memberof"])
async def test_first_sync_maps_nested_groups_to_roles(
    ldap_tree: LdapTree, engine: Engine, people: PeopleStatus, nested: str
) -> None:
    settings = ldap_tree.settings(ldap={"nested_groups": nested})
    diff = await runner(settings, engine, people).run_once()

    assert len(diff.joiners) == 12  # read in pages of 5
    grants = set(RoleStore(engine).grants())
    assert ("u01", "sales", "*") in grants  # direct member of crm-sales
    assert ("u04", "sales", "*") in grants  # through crm-sales-north, nested in crm-sales
    assert ("u07", "finance", "erp") in grants  # rule by DN, domain erp
    assert ("u09", "officer", "*") in grants  # rule by glob security-*
    assert not grants_of(engine, "u10")  # staff maps to no role
    person = get_person(engine, "u01")
    assert person is not None and person.department == "sales" and person.display_name == "User u01"


async def test_joiner_gets_roles_on_next_sync(
    ldap_tree: LdapTree, engine: Engine, people: PeopleStatus
) -> None:
    sync = runner(ldap_tree.settings(), engine, people)
    await sync.run_once()
    ldap_tree.add_user("u13", "sales")
    ldap_tree.add_member("crm-sales-north", ldap_tree.user_dn("u13"))

    diff = await sync.run_once()

    assert [p.subject for p in diff.joiners] == ["u13"]
    assert grants_of(engine, "u13") == {("u13", "sales", "*")}


async def test_mover_out_of_nested_group_is_caught_by_group_change_detection(
    ldap_tree: LdapTree, engine: Engine, people: PeopleStatus
) -> None:
    # A full sync only once an hour: only change detection can catch the move in time.
    settings = ldap_tree.settings(interval_s=3600, change_poll_s=0.5)
    task = asyncio.create_task(runner(settings, engine, people).run_forever())
    try:
        await _until(lambda: grants_of(engine, "u03") == {("u03", "sales", "*")})
        ldap_tree.remove_member("crm-sales-north", ldap_tree.user_dn("u03"))
        await _until(lambda: not grants_of(engine, "u03"))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    with Session(engine) as session:
        change = session.scalars(
            select(RoleChange).where(RoleChange.subject == "u03", RoleChange.kind == "revoke")
        ).one()
    assert (change.role, change.cause.split(":")[0]) == ("sales", "sync")
    assert grants_of(engine, "u02") == {("u02", "sales", "*")}  # the others keep it


async def test_leaver_deleted_from_directory_is_revoked_and_live_token_refused(
    ldap_tree: LdapTree, engine: Engine, people: PeopleStatus
) -> None:
    sync = runner(ldap_tree.settings(), engine, people)
    await sync.run_once()
    token_issued_at = time.time() - 60  # a JWT from a minute ago, valid for another hour
    assert people.refusal("u05", token_issued_at) is None

    ldap_tree.delete_user("u05")
    diff = await sync.run_once()

    assert diff.leavers == ("u05",)
    assert people.refusal("u05", token_issued_at) == "person_revoked"
    assert not grants_of(engine, "u05")

    # Back in the directory (rehired): new tokens work, the old one stays refused.
    ldap_tree.add_user("u05", "sales")
    diff = await sync.run_once()
    assert diff.re_enabled == ("u05",)
    assert people.refusal("u05", token_issued_at) == "token_revoked"
    assert people.refusal("u05", time.time() + 1) is None


async def test_permanently_locked_account_is_disabled(slapd, engine: Engine) -> None:
    settings = DirectorySettings.model_validate(
        {
            "source": "ldap",
            "ldap": {
                "url": slapd.url,
                "user_base": f"ou=locked,{SUFFIX}",
                "group_base": f"ou=locked,{SUFFIX}",
            },
        }
    )
    assert settings.ldap is not None
    snapshot = LdapSource(settings.ldap, []).snapshot()  # anonymous bind
    assert snapshot.people["frozen"].status == "disabled"


async def test_timed_ppolicy_lock_disables_until_the_lock_expires(
    ldap_tree: LdapTree, engine: Engine, people: PeopleStatus
) -> None:
    await runner(ldap_tree.settings(), engine, people).run_once()
    for _ in range(2):  # pwdMaxFailure is 2
        with pytest.raises(LDAPBindError):
            Connection(Server(ldap_tree.url), ldap_tree.user_dn("u11"), "wrong", auto_bind=True)

    settings = ldap_tree.settings(ldap={"lockout_duration_s": 600})
    assert settings.ldap is not None
    now_source = LdapSource(settings.ldap, settings.role_rules)
    later_source = LdapSource(settings.ldap, settings.role_rules, clock=lambda: time.time() + 601)
    assert now_source.snapshot().people["u11"].status == "disabled"
    assert later_source.snapshot().people["u11"].status == "active"

    diff = await runner(settings, engine, people).run_once()
    assert diff.disabled == ("u11",)
    assert people.refusal("u11", None) == "person_revoked"


@pytest.mark.parametrize(
    "ldap",
    [
        {"user_filter": "(objectClass=posixAccount)"},  # a filter that matches nobody
        {"user_base": "GROUPS"},  # a base with no people in it: an empty directory
    ],
    ids=["broken-filter", "empty-directory"],
)
async def test_implausible_sync_is_refused_and_changes_nothing(
    ldap_tree: LdapTree, engine: Engine, people: PeopleStatus, ldap: dict[str, str]
) -> None:
    await runner(ldap_tree.settings(), engine, people).run_once()
    before = list_people(engine)
    alerts: list[str] = []
    broken = ldap_tree.settings(
        ldap={k: ldap_tree.groups if v == "GROUPS" else v for k, v in ldap.items()}
    )

    diff = await runner(broken, engine, people, alerts).run_once()

    assert diff.refused and "would revoke 12 of 12" in diff.refused
    assert list_people(engine) == before
    assert all(people.refusal(p.subject, None) is None for p in before)
    assert alerts == ["directory_sync_refused"]
    with Session(engine) as session:
        assert session.scalars(
            select(RoleChange.kind).where(RoleChange.kind == "sync_refused")
        ).all() == ["sync_refused"]


async def test_sync_that_would_empty_a_role_is_refused(
    ldap_tree: LdapTree, engine: Engine, people: PeopleStatus
) -> None:
    sync = runner(ldap_tree.settings(), engine, people)
    await sync.run_once()
    ldap_tree.conn.delete(ldap_tree.group_dn("security-officers"))

    diff = await sync.run_once()

    assert diff.refused and "officer@*" in diff.refused
    assert grants_of(engine, "u09") == {("u09", "officer", "*")}


async def test_directory_down_keeps_roles_marks_stale_and_alerts_once(
    ldap_tree: LdapTree, engine: Engine, people: PeopleStatus
) -> None:
    await runner(ldap_tree.settings(), engine, people).run_once()
    alerts: list[str] = []
    down = runner(
        ldap_tree.settings(ldap={"url": "ldap://127.0.0.1:1", "timeout_s": 1}),
        engine,
        people,
        alerts,
    )

    for _ in range(2):
        with pytest.raises(DirectoryUnavailable):
            await down.run_once()

    assert alerts == ["directory_unreachable"]
    everyone = list_people(engine)
    assert all(p.stale and p.status == "active" for p in everyone)
    assert grants_of(engine, "u01") == {("u01", "sales", "*")}
    assert people.refusal("u01", None) is None


async def _until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_wrong_bind_password_is_an_outage_and_never_logged(
    ldap_tree: LdapTree, engine: Engine, people: PeopleStatus, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "correct-horse-battery-staple"
    monkeypatch.setenv("WARDGATE_TEST_LDAP_PASSWORD", wrong)
    alerts: list[str] = []
    with structlog.testing.capture_logs() as logs, pytest.raises(DirectoryUnavailable) as outage:
        await runner(ldap_tree.settings(), engine, people, alerts).run_once()

    assert "invalidCredentials" in str(outage.value) or "InvalidCredentials" in str(outage.value)
    assert wrong not in repr(logs) and wrong not in str(outage.value)
    assert alerts == ["directory_unreachable"]

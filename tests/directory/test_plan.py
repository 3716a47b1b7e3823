"""plan_sync is pure: every joiner/mover/leaver rule and every safety refusal, directly."""

from __future__ import annotations

import pytest

from gateway.directory.model import DirectoryPerson, DirectorySnapshot
from gateway.directory.sync import CurrentPerson, Mover, plan_sync

SALES = ("sales", "*")
FINANCE = ("finance", "erp")


def seen(subject: str, *roles: tuple[str, str], status: str = "active") -> DirectoryPerson:
    return DirectoryPerson(subject=subject, roles=frozenset(roles), status=status)  # type: ignore[arg-type]


def held(
    subject: str,
    *roles: tuple[str, str],
    status: str = "active",
    source: str = "ldap",
    cause: str | None = None,
) -> CurrentPerson:
    return CurrentPerson(subject, status, source, frozenset(roles), cause)


def office(n: int = 20) -> dict[str, CurrentPerson]:
    return {f"p{i:02}": held(f"p{i:02}", SALES) for i in range(n)}


def snapshot(*people: DirectoryPerson) -> DirectorySnapshot:
    return DirectorySnapshot(source="ldap", people={p.subject: p for p in people})


def same_office(n: int = 20) -> list[DirectoryPerson]:
    return [seen(f"p{i:02}", SALES) for i in range(n)]


def test_nothing_changed_is_an_empty_diff() -> None:
    diff = plan_sync(snapshot(*same_office()), office())
    assert diff.empty and diff.refused is None


def test_joiner_mover_leaver_disabled() -> None:
    people = same_office()
    people[0] = seen("p00", FINANCE, SALES)  # mover: gains finance
    people[1] = seen("p01", status="disabled")
    del people[2]  # leaver
    diff = plan_sync(snapshot(*people, seen("new", SALES)), office())

    assert [p.subject for p in diff.joiners] == ["new"]
    assert diff.movers == (Mover("p00", frozenset({FINANCE}), frozenset()),)
    assert diff.leavers == ("p02",)
    assert diff.disabled == ("p01",)
    assert diff.refused is None


def test_only_people_of_this_source_can_leave() -> None:
    current = {
        **office(),
        "scim-user": held("scim-user", source="scim"),
        "boss": held("boss", source="admin"),
    }
    assert plan_sync(snapshot(*same_office()), current).leavers == ()


def test_sync_re_enables_only_what_a_sync_disabled() -> None:
    current = {
        **office(),
        "was-locked": held("was-locked", status="disabled", cause="sync:abc"),
        "terminated": held("terminated", status="left", cause="hr:ev-1"),
        "deprovisioned": held("deprovisioned", status="left", cause="scim"),
        "suspended": held("suspended", SALES, status="suspended", cause="admin:officer01"),
    }
    back = [seen(s, SALES) for s in ("was-locked", "terminated", "deprovisioned", "suspended")]
    diff = plan_sync(snapshot(*same_office(), *back), current)

    assert diff.re_enabled == ("was-locked",)
    assert Mover("was-locked", frozenset({SALES}), frozenset()) in diff.movers
    assert "terminated" not in {m.subject for m in diff.movers}


@pytest.mark.parametrize(
    ("revoked", "refused"),
    [(2, False), (3, True)],  # 10 % of 20 active people is 2
)
def test_revoking_more_than_the_share_is_refused(revoked: int, refused: bool) -> None:
    diff = plan_sync(snapshot(*same_office()[revoked:]), office())
    assert bool(diff.refused) is refused


def test_disabling_counts_like_leaving() -> None:
    people = [
        seen(p.subject, status="disabled") if i < 3 else p for i, p in enumerate(same_office())
    ]
    assert plan_sync(snapshot(*people), office()).refused


def test_an_empty_directory_is_refused() -> None:
    diff = plan_sync(snapshot(), office())
    assert diff.refused and "would revoke 20 of 20" in diff.refused


def test_first_sync_into_an_empty_database_is_allowed() -> None:
    assert plan_sync(snapshot(*same_office()), {}).refused is None


def test_a_sync_that_empties_a_role_is_refused_even_by_moves() -> None:
    current = {**office(), "cfo": held("cfo", FINANCE)}
    diff = plan_sync(snapshot(*same_office(), seen("cfo")), current)  # cfo loses finance
    assert diff.refused and "finance@erp" in diff.refused


def test_a_role_moving_to_someone_else_is_not_emptying() -> None:
    current = {**office(), "cfo": held("cfo", FINANCE)}
    diff = plan_sync(snapshot(*same_office()[1:], seen("p00", FINANCE), seen("cfo")), current)
    assert diff.refused is None and len(diff.movers) == 2

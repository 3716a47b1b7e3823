"""PeopleStatus: the per-request refusal map, officers' actions, and fan-out between instances."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Engine

from audit.store import make_engine
from gateway.directory.status import PeopleStatus, RoleStore
from gateway.directory.store import get_person, init_directory_db
from gateway.errors import BadRequest


async def test_unknown_subject_is_not_refused_here_and_has_no_roles(
    people: PeopleStatus, engine: Engine
) -> None:
    # Authorization denies a subject without grants; this map only knows revocations.
    assert people.refusal("stranger", None) is None
    assert RoleStore(engine).grants() == []


async def test_suspend_and_reinstate(people: PeopleStatus, engine: Engine) -> None:
    roles = RoleStore(engine)
    roles.set_roles("ana", {("sales", "*")}, cause="admin:test")
    await people.refresh()

    await people.suspend("ana", by="officer01", reason="bulk export")
    assert people.refusal("ana", time.time()) == "person_suspended"
    assert roles.grants() == []  # suspended people hold no live grants

    await people.reinstate("ana", by="officer01", reason="explained")
    assert people.refusal("ana", time.time() - 3600) is None  # tokens work again after a suspension
    assert roles.grants() == [("ana", "sales", "*")]


async def test_reinstate_cannot_undo_a_revocation(people: PeopleStatus) -> None:
    await people.revoke("bo", reason="left", cause="hr:1")
    with pytest.raises(BadRequest) as refused:
        await people.reinstate("bo", by="officer01", reason="oops")
    assert refused.value.reason_id == "person_not_suspended"
    await people.suspend("bo", by="officer01", reason="again")  # must not turn left into suspended
    assert people.refusal("bo", None) == "person_revoked"


async def test_departing(people: PeopleStatus, engine: Engine) -> None:
    assert not people.is_departing("cy")
    await people.mark_departing("cy", last_day="2026-12-31", by="hr")
    assert people.is_departing("cy") and people.refusal("cy", None) is None
    with pytest.raises(BadRequest):
        await people.mark_departing("cy", last_day="31/12/2026", by="hr")
    await people.revoke("cy", reason="left", cause="hr:2")
    assert not people.is_departing("cy")
    person = get_person(engine, "cy")
    assert person is not None and person.status == "left"


async def test_role_version_moves_with_grants_and_statuses(
    people: PeopleStatus, engine: Engine
) -> None:
    roles = RoleStore(engine)
    status = PeopleStatus(engine, None, roles=roles)
    await status.refresh()
    start = roles.version

    roles.set_roles("di", {("finance", "erp")}, cause="admin:test")
    after_grant = roles.version
    await status.revoke("di", reason="left", cause="hr:3")
    after_revoke = roles.version
    await status.refresh()

    assert start < after_grant < after_revoke == roles.version


async def test_revocation_disables_api_keys_through_the_callback(engine: Engine) -> None:
    disabled: list[str] = []

    async def disable_keys(subject: str) -> None:
        disabled.append(subject)

    status = PeopleStatus(engine, None, on_revoke=disable_keys)
    await status.suspend("ed", by="officer01", reason="check")  # suspension keeps the keys
    await status.revoke("ed", reason="left", cause="hr:4")
    await status.revoke("ed", reason="left", cause="hr:5")  # already gone: nothing more to do
    assert disabled == ["ed"]


@pytest.fixture
async def two_instances(pg_url: str) -> AsyncIterator[tuple[PeopleStatus, PeopleStatus]]:
    engines = [make_engine(pg_url), make_engine(pg_url)]
    init_directory_db(engines[0])
    a = PeopleStatus(engines[0], "redis://127.0.0.1:6379/0")
    b = PeopleStatus(engines[1], "redis://127.0.0.1:6379/0", refresh_s=5.0)  # Redis must carry it
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()
        for eng in engines:
            eng.dispose()


@pytest.mark.postgres
@pytest.mark.redis
async def test_revocation_reaches_another_instance_within_a_second(
    two_instances: tuple[PeopleStatus, PeopleStatus],
) -> None:
    a, b = two_instances
    issued_at = time.time() - 5
    await a.mark_departing("fay", last_day=None, by="hr")
    await _seen(lambda: b.is_departing("fay"))

    started = time.monotonic()
    await a.revoke("fay", reason="left", cause="hr:6")
    assert a.refusal("fay", issued_at) == "person_revoked"  # at once where it was made
    await _seen(lambda: b.refusal("fay", issued_at) == "person_revoked")
    assert time.monotonic() - started < 1.0


@pytest.mark.postgres
async def test_polling_alone_propagates_without_redis(pg_url: str) -> None:
    engine = make_engine(pg_url)
    init_directory_db(engine)
    a, b = PeopleStatus(engine, None), PeopleStatus(engine, None)
    await a.start()
    await b.start()
    try:
        await a.suspend("gus", by="officer01", reason="check")
        await _seen(lambda: b.refusal("gus", None) == "person_suspended")
    finally:
        await a.close()
        await b.close()
        engine.dispose()


async def _seen(condition, timeout: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not seen by the other instance within 1 s"
        await asyncio.sleep(0.005)

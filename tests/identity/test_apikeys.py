"""API keys: created once, verified from memory, revoked everywhere within about a second."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from gateway.apikeys import KEY_LENGTH, ApiKey, ApiKeyStore, split_key
from gateway.errors import BadRequest, NotFound, Unauthenticated
from gateway.identity import Identifier

from .conftest import Access


async def refused_key(identifier: Identifier, *, header: str | None = None, key: str | None = None):
    with pytest.raises(Unauthenticated) as info:
        await identifier.identify(header, key)
    return info.value.reason_id


def test_created_key_is_shown_once_and_only_its_hash_stored(
    store: ApiKeyStore, engine: Engine
) -> None:
    key = store.create("order sync", "svc-sync", ["crm-sync", "erp-read"], created_by="admin")
    assert len(key) == KEY_LENGTH and key.startswith("wgk_")
    key_id, secret = split_key(key)  # type: ignore[misc]
    with engine.connect() as conn:
        row = conn.execute(select(ApiKey.__table__).where(ApiKey.id == key_id)).one()
    assert secret not in str(tuple(row))
    assert row.roles == ["crm-sync", "erp-read"]
    listed = store.list()
    assert [r.id for r in listed] == [key_id]
    assert secret not in repr(listed)


async def test_key_identifies_service_account(identifier: Identifier, store: ApiKeyStore) -> None:
    key = store.create("bi extract", "svc-bi", ["bi"], created_by="admin")
    for header, api_key in ((None, key), (f"ApiKey {key}", None), (f"apikey {key}", None)):
        principal = await identifier.identify(header, api_key)
        assert principal.subject == "svc-bi"
        assert principal.auth_method == "api-key"
        assert principal.granted_roles == frozenset({"bi"})
        assert principal.credential_id == key[4:16]
        assert principal.issued_at is not None and abs(principal.issued_at - time.time()) < 5


async def test_wrong_or_malformed_keys(identifier: Identifier, store: ApiKeyStore) -> None:
    key = store.create("bot", "svc-bot", ["rpa"], created_by="admin")
    key_id = key[4:16]
    other_secret = store.create("other", "svc-other", ["rpa"], created_by="admin")[17:]
    attempts = [
        key[:-1] + ("A" if key[-1] != "A" else "B"),  # one character of the secret changed
        f"wgk_{key_id}_{other_secret}",  # a real secret of another key
        key[:-1],  # truncated
        key + "A",  # extended
        "wgk_" + "x" * 12 + "_" + key[17:],  # unknown id
        key.replace("wgk_", "WGK_"),
        key[:16] + "-" + key[17:],  # separator
        "wgk_" + key_id + "_" + "!" * 43,
        "",
        " ",
        "wgk_",
        "x" * 100_000,
    ]
    for attempt in attempts:
        if not attempt.strip():
            continue  # an empty header is no credential at all (tested elsewhere)
        assert await refused_key(identifier, key=attempt) == "api_key_invalid", attempt
        assert await refused_key(identifier, header=f"ApiKey {attempt}") == "api_key_invalid"


def test_id_containing_underscore_parses() -> None:
    assert split_key("wgk_ab_cd_ef-gh__" + "s" * 43) == ("ab_cd_ef-gh_", "s" * 43)
    assert split_key("wgk_abcdefghijkl-" + "s" * 43) is None


async def test_revoked_key_refused_at_once(identifier: Identifier, store: ApiKeyStore) -> None:
    key = store.create("bot", "svc-bot", ["rpa"], created_by="admin")
    await identifier.identify(None, key)
    assert store.revoke(key[4:16], "leaked in a ticket") is True
    assert await refused_key(identifier, key=key) == "api_key_revoked"
    # Revoked and a wrong secret: say "invalid", do not confirm the id exists.
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert await refused_key(identifier, key=wrong) == "api_key_invalid"
    assert store.revoke(key[4:16], "again") is False  # already revoked: nothing changes
    record = store.lookup(key[4:16])
    assert record is not None and record.revoked_reason == "leaked in a ticket"


async def test_revocation_from_another_instance_visible_within_a_second(
    engine: Engine, access: Access, http
) -> None:
    serving, admin = ApiKeyStore(engine), ApiKeyStore(engine)
    key = admin.create("bot", "svc-bot", ["rpa"], created_by="admin")
    await serving.start()
    try:
        identifier = Identifier([], serving, access, http)
        await identifier.identify(None, key)
        admin.revoke(key[4:16], "rotated")
        started = time.monotonic()
        while time.monotonic() - started < 3:
            try:
                await identifier.identify(None, key)
            except Unauthenticated as exc:
                assert exc.reason_id == "api_key_revoked"
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("revocation not seen within 3 s")
        assert time.monotonic() - started < 1.5
    finally:
        await serving.close()


async def test_new_key_from_another_instance_usable_after_reload(
    engine: Engine, access: Access, http
) -> None:
    serving, admin = ApiKeyStore(engine, reload_interval_s=0.05), ApiKeyStore(engine)
    await serving.start()
    try:
        identifier = Identifier([], serving, access, http)
        key = admin.create("bot", "svc-bot", ["rpa"], created_by="admin")
        assert await refused_key(identifier, key=key) == "api_key_invalid"
        deadline = time.monotonic() + 2
        while serving.lookup(key[4:16]) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert (await identifier.identify(None, key)).subject == "svc-bot"
    finally:
        await serving.close()
    record = admin.list()[0]
    assert record.last_used_at is not None  # written by close() at the latest
    assert (datetime.now(UTC) - record.last_used_at).total_seconds() < 5


async def test_disable_for_subject(identifier: Identifier, store: ApiKeyStore) -> None:
    keys = [store.create(f"k{i}", "leaver", ["rpa"], created_by="admin") for i in range(3)]
    keeper = store.create("stay", "stayer", ["rpa"], created_by="admin")
    store.revoke(keys[0][4:16], "earlier")
    revoked = store.disable_for_subject("leaver")
    assert sorted(revoked) == sorted(k[4:16] for k in keys[1:])
    for key in keys:
        assert await refused_key(identifier, key=key) == "api_key_revoked"
    assert (await identifier.identify(None, keeper)).subject == "stayer"
    assert store.disable_for_subject("leaver") == []


async def test_access_refusal_applies_to_api_keys(
    identifier: Identifier, store: ApiKeyStore, access: Access
) -> None:
    key = store.create("bot", "svc-bot", ["rpa"], created_by="admin")
    access.refused["svc-bot"] = "token_revoked"  # the subject's credentials were reset
    assert await refused_key(identifier, key=key) == "token_revoked"
    access.refused["svc-bot"] = "person_suspended"
    assert await refused_key(identifier, key=key) == "person_suspended"


@pytest.mark.parametrize(
    ("name", "subject", "roles"),
    [
        ("", "s", ["r"]),
        ("n", " ", ["r"]),
        ("n", "s", []),
        ("n", "s", ["ok", ""]),
        ("x" * 201, "s", ["r"]),
    ],
)
def test_create_rejects_bad_input_and_changes_nothing(
    store: ApiKeyStore, name: str, subject: str, roles: list[str]
) -> None:
    with pytest.raises(BadRequest) as info:
        store.create(name, subject, roles, created_by="admin")
    assert info.value.reason_id == "api_key_bad_input"
    assert store.list() == []


def test_revoke_unknown_key(store: ApiKeyStore) -> None:
    with pytest.raises(NotFound) as info:
        store.revoke("nosuchkey123", "because")
    assert info.value.reason_id == "api_key_not_found"

"""API keys on the real PostgreSQL: create, verify, revoke across two store instances."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from audit.store import Base, make_engine
from gateway.apikeys import ApiKey, ApiKeyStore
from gateway.errors import Unauthenticated
from gateway.identity import Identifier
from tests.support.postgres import schema_url, temporary_schema

from .conftest import Access

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """An engine whose tables live in a schema of their own, dropped afterwards."""
    with temporary_schema("identity") as schema:
        engine = make_engine(schema_url(schema))
        Base.metadata.create_all(engine, tables=[ApiKey.__table__])  # type: ignore[list-item]
        try:
            yield engine
        finally:
            engine.dispose()


async def test_keys_on_postgres(pg_engine: Engine, access: Access, http) -> None:
    serving, admin = ApiKeyStore(pg_engine), ApiKeyStore(pg_engine)
    key = admin.create("order sync", "svc-sync", ["crm-sync"], created_by="admin")
    await serving.start()
    try:
        identifier = Identifier([], serving, access, http)
        principal = await identifier.identify(None, key)
        assert (principal.subject, principal.granted_roles) == ("svc-sync", frozenset({"crm-sync"}))
        assert principal.issued_at is not None and abs(principal.issued_at - time.time()) < 5
        admin.revoke(key[4:16], "rotated")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                await identifier.identify(None, key)
            except Unauthenticated as exc:
                assert exc.reason_id == "api_key_revoked"
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("revocation on PostgreSQL not seen within 3 s")
    finally:
        await serving.close()
    [record] = admin.list()
    assert record.revoked_reason == "rotated"
    assert record.created_at.tzinfo is not None
    assert record.last_used_at is not None

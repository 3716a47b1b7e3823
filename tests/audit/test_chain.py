"""The chain's encoding is a format: pinned by a known hash. Keys load or fail clearly."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, select

from audit.chain import (
    GENESIS_HASH,
    canonical,
    event_fields,
    link,
    load_signer,
    parse_public_key,
)
from audit.models import checkpoints_table
from audit.settings import AuditSettings
from audit.writer import AuditWriter
from gateway.errors import ConfigError
from tests.audit.conftest import SEED_HEX, make_event

# The canonical encoding is a storage format: changing it breaks every stored chain, so
# the exact bytes are spelled out here (sorted keys, no spaces, RFC 3339 UTC microseconds).
CANONICAL = (
    b'{"auth_method":"jwt","chain_id":"gw1/x","client_addr":"10.0.0.5","decision":"allow",'
    b'"entity":"customer","fields_masked":["cost_price"],'
    b'"id":"0190f3a0-0000-7000-8000-000000000001","latency_ms":12.5,'
    b'"matched_rule":"p, sales, crm, customer, GET","method":"GET","path":"/crm/customers/1",'
    b'"pii_hits":{"email":1},"prev_hash":"' + b"0" * 64 + b'","reason_id":"allowed",'
    b'"records":1,"request_bytes":0,"request_id":"req-1","response_bytes":2048,'
    b'"roles":["sales"],"seq":1,"status":200,"subject":"user1@corp.example",'
    b'"time":"2026-01-01T00:00:01.000000Z","upstream":"crm","user_agent":"sync-bot/1.0"}'
)


def test_the_canonical_encoding_and_hash_are_stable() -> None:
    fields = event_fields(make_event(1, id="0190f3a0-0000-7000-8000-000000000001"), "gw1/x")
    assert canonical(GENESIS_HASH, 1, fields) == CANONICAL
    assert link(GENESIS_HASH, 1, fields) == hashlib.sha256(CANONICAL).hexdigest()


def test_every_hashed_field_changes_the_hash() -> None:
    fields = event_fields(make_event(1), "gw1/x")
    base = link(GENESIS_HASH, 1, fields)
    for name, value in fields.items():
        if isinstance(value, datetime):
            other: object = value + timedelta(microseconds=1)
        elif isinstance(value, int | float):
            other = value + 1
        else:
            other = "x" if isinstance(value, str) else None
        assert link(GENESIS_HASH, 1, {**fields, name: other}) != base, name
    assert link(GENESIS_HASH, 2, fields) != base
    assert link("1" * 64, 1, fields) != base


def pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_signing_key_from_env_hex_or_pem_file(tmp_path: Path) -> None:
    settings = AuditSettings(signing_key_env="WG_KEY")
    assert load_signer(settings, {}) is None  # none configured: unsigned checkpoints
    from_hex = load_signer(settings, {"WG_KEY": SEED_HEX})
    key_file = tmp_path / "audit.pem"
    key_file.write_text(pem(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(SEED_HEX))))
    from_file = load_signer(
        AuditSettings(signing_key_env="WG_KEY", signing_key_file=str(key_file)), {}
    )
    assert from_hex is not None and from_file is not None
    assert from_hex.key_id == from_file.key_id and SEED_HEX not in repr(from_hex)
    public_pem = (
        from_hex.private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert parse_public_key(public_pem, "test").public_bytes_raw() == (
        from_hex.private_key.public_key().public_bytes_raw()
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "64 hex digits"),
        ("zz" * 32, "64 hex digits"),
        ("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----", "not a readable"),
    ],
)
def test_a_bad_signing_key_is_refused_naming_where_it_came_from(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_signer(AuditSettings(signing_key_env="WG_KEY"), {"WG_KEY": value})
    assert "WG_KEY" in info.value.detail and value not in info.value.detail


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    settings = AuditSettings(signing_key_env="WG_KEY", signing_key_file=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="signing_key_file"):
        load_signer(settings, {})


async def test_checkpoints_also_come_every_interval(
    engine: Engine, settings: AuditSettings
) -> None:
    timed = settings.model_copy(
        update={
            "checkpoint_every": 1_000_000,
            "checkpoint_interval_s": 0.02,
            "durability": "strict",
        }
    )
    writer = AuditWriter(timed, engine)
    await writer.start()
    for i in range(3):
        await writer.record(make_event(i))
        await asyncio.sleep(0.03)
    await writer.record(make_event(3))  # committed with its predecessor's checkpoint pending
    with engine.connect() as conn:
        during = list(conn.execute(select(checkpoints_table.c.seq)).scalars())
    await writer.close()
    assert len(during) >= 3

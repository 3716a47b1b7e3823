"""The operator commands: verify, export, prune, db upgrade; clear errors, no tracebacks."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import typer
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect, update
from typer.testing import CliRunner

from audit.chain import Signer
from audit.cli import audit_app, db_app
from audit.models import events_table
from audit.settings import AuditSettings
from audit.store import make_engine
from audit.writer import AuditWriter
from tests.audit.conftest import AUDIT_TABLES, SEED_HEX, make_event
from tests.audit.test_verify import PUBLIC, SIGNER

runner = CliRunner()
root = typer.Typer()
root.add_typer(audit_app, name="audit")  # mounted as the lead mounts them
root.add_typer(db_app, name="db")


def cli(*args: str, **env: str) -> tuple[int, str, str]:
    result = runner.invoke(root, list(args), env=env or None)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result.exit_code, result.stdout, result.stderr


async def fill(url: str, settings: AuditSettings, signer: Signer | None = None) -> str:
    """30 events from 2026-01-01 in one chain, checkpointed every 10."""
    engine = make_engine(url)
    every_10 = settings.model_copy(update={"checkpoint_every": 10})
    writer = AuditWriter(every_10, engine, signer=signer)
    await writer.start()
    for i in range(30):
        await writer.record(make_event(i))
    await writer.close()
    engine.dispose()
    return writer.chain_id


def test_upgrade_runs_the_real_migration_and_matches_the_models(db_url: str) -> None:
    code, out, _ = cli("db", "upgrade", "--db", db_url)
    assert code == 0, out
    code, out, _ = cli("db", "upgrade", "--db", db_url)  # idempotent at head
    assert code == 0
    engine = make_engine(db_url)
    mine = MetaData()
    for table in AUDIT_TABLES:
        table.to_metadata(mine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), mine)
        assert "alembic_version" in inspect(conn).get_table_names()
    engine.dispose()
    # other modules' tables show up as "remove_*" here; tests/schema compares everything
    assert [d for d in diff if not d[0].startswith("remove_")] == []


async def test_verify_and_export_on_a_migrated_store(
    db_url: str, settings: AuditSettings, tmp_path: Path
) -> None:
    assert cli("db", "upgrade", "--db", db_url)[0] == 0
    await fill(db_url, settings)
    code, out, _ = cli("audit", "verify", "--db", db_url)
    assert code == 0 and "OK: 30 events in 1 chains" in out

    target = tmp_path / "out.jsonl"
    code, _, err = cli(
        "audit",
        "export",
        "--format",
        "jsonl",
        "--db",
        db_url,
        "--output",
        str(target),
        "--since",
        "2026-01-01T00:00:20Z",
    )
    lines = [orjson.loads(line) for line in target.read_bytes().splitlines()]
    assert code == 0 and "exported 10 events" in err
    assert [line["request_id"] for line in lines] == [f"req-{i}" for i in range(20, 30)]
    code, out, _ = cli("audit", "export", "--format", "cef", "--db", db_url)
    assert code == 0 and out.count("CEF:0|Wardgate|") == 30


async def test_verify_names_the_first_broken_record_and_exits_1(
    sqlite_url: str, settings: AuditSettings
) -> None:
    assert cli("db", "upgrade", "--db", sqlite_url)[0] == 0
    chain = await fill(sqlite_url, settings)
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(update(events_table).where(events_table.c.seq == 12).values(records=10**6))
    engine.dispose()
    code, out, _ = cli("audit", "verify", "--db", sqlite_url)
    assert code == 1
    assert f"BROKEN row_altered: chain {chain}: row seq 12" in out


async def test_verify_checks_signatures_with_the_configured_key(
    sqlite_url: str, settings: AuditSettings, tmp_path: Path
) -> None:

    assert cli("db", "upgrade", "--db", sqlite_url)[0] == 0
    await fill(sqlite_url, settings)  # unsigned checkpoints
    code, out, err = cli("audit", "verify", "--db", sqlite_url)
    assert code == 0 and "signatures not checked" in err
    key_file = tmp_path / "key.hex"
    key_file.write_text(PUBLIC.public_bytes_raw().hex())
    code, out, _ = cli("audit", "verify", "--db", sqlite_url, "--public-key", str(key_file))
    assert code == 1 and "BROKEN unsigned" in out


async def test_prune_refuses_below_the_minimum_and_prunes_with_config(
    sqlite_url: str, settings: AuditSettings, tmp_path: Path
) -> None:
    assert cli("db", "upgrade", "--db", sqlite_url)[0] == 0
    await fill(sqlite_url, settings, SIGNER)
    code, _, err = cli("audit", "prune", "--older-than", "30d", "--db", sqlite_url)
    assert code == 2 and "refusing to prune events younger than 180 days" in err
    assert "Traceback" not in err
    config = tmp_path / "wardgate.yaml"
    config.write_text(
        f"database_url: {sqlite_url}\n"
        "upstreams: {crm: {base_url: 'http://127.0.0.1:9', prefix: /crm}}\n"
        "audit: {retention_min_days: 200, signing_key_env: WG_TEST_AUDIT_KEY}\n"
    )
    code, _, err = cli("audit", "prune", "--older-than", "190d", "--config", str(config))
    assert code == 2 and "200 days" in err
    code, out, _ = cli(
        "audit",
        "prune",
        "--older-than",
        "300d",
        "--config",
        str(config),
        WG_TEST_AUDIT_KEY=SEED_HEX,
    )
    assert code == 0 and "pruned 30 events" in out  # the fixtures are from 2026-01-01
    code, out, _ = cli("audit", "verify", "--config", str(config), WG_TEST_AUDIT_KEY=SEED_HEX)
    assert code == 0, out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["audit", "verify"], "pass --db URL or --config FILE"),
        (["audit", "verify", "--config", "/nonexistent.yaml"], "not found"),
        (["audit", "verify", "--db", "postgresql://root@127.0.0.1:1/test"], "database:"),
        (["audit", "prune", "--older-than", "half a year", "--db", "sqlite://"], "365d"),
        (
            ["audit", "export", "--format", "jsonl", "--since", "yesterday", "--db", "sqlite://"],
            "ISO 8601",
        ),
    ],
)
def test_operator_mistakes_print_one_line_and_exit_2(args: list[str], message: str) -> None:
    code, _, err = cli(*args)
    assert code == 2 and message in err and "Traceback" not in err

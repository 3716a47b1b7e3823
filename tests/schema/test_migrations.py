"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from audit.schema import MODEL_MODULES, upgrade
from audit.store import Base, make_engine


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/schema.db"
        return
    name = f"wg_schema_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("postgresql://root@127.0.0.1:5432/test", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://root@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect("postgresql://root@127.0.0.1:5432/test", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrations_create_every_table_of_every_model(db_url: str) -> None:
    assert MODEL_MODULES  # the models are imported, so Base.metadata is complete
    upgrade(db_url)
    upgrade(db_url)  # at head: nothing to do, no error
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations disagree; add a migration: {diff}"


def test_ensure_schema_adopts_a_store_built_without_migrations(db_url: str) -> None:
    """A database whose tables came from create_all is completed and stamped, not broken."""
    from audit.schema import ensure_schema
    from gateway.directory.store import init_directory_db

    engine = make_engine(db_url)
    init_directory_db(engine)  # only some tables, no alembic_version
    engine.dispose()
    ensure_schema(db_url)
    ensure_schema(db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()

"""The complete database schema: every module that defines tables, and how to build it.

``Base.metadata`` only knows the tables of modules that were imported, so Alembic and
``ensure_schema`` import this list first. Add a module here when it adds tables.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, text
from sqlalchemy.pool import NullPool

import audit.alerts  # alerts, alert_transitions
import audit.feedback  # detector_adjustments, detector_clears
import audit.holds  # alert_holds
import audit.models  # audit_events, audit_checkpoints, audit_anchors
import gateway.apikeys  # api_keys
import gateway.directory.store  # people, role_grants, role_changes, hr_events, directory_state
from audit.store import Base, make_engine, normalise_url

# Every module that registers tables on Base.metadata (importing it is what registers them).
MODEL_MODULES = (
    audit.models,
    audit.alerts,
    audit.feedback,
    audit.holds,
    gateway.apikeys,
    gateway.directory.store,
)

_HERE = Path(__file__).resolve().parent


# pg_advisory_lock key: "wardgate" as a number, so replicas starting together migrate one by one
_MIGRATION_LOCK = 0x77617264676174


def ensure_schema(url: str) -> None:
    """Bring the database to the newest migration before anything else touches it.

    Every process that opens the database calls this first (``serve``, the CLI), so the
    embedded SQLite default needs no setup step. On PostgreSQL an advisory lock makes
    replicas that start together take turns; the ones after the first find nothing to do.
    """
    url = normalise_url(url)
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            locked = url.startswith("postgresql")
            if locked:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
            try:
                _migrate(url, engine)
            finally:
                if locked:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
    finally:
        engine.dispose()


def _migrate(url: str, engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    if "alembic_version" in tables or not tables & set(Base.metadata.tables):
        upgrade(url)
        return
    # Tables made by create_all (unit tests, early tools) but never stamped: complete them
    # (create_all builds what the migrations build, tests/schema proves it) and stamp.
    Base.metadata.create_all(engine)
    command.stamp(alembic_config(url), "head")


def alembic_config(url: str) -> Config:
    """An Alembic config for ``url`` that works from any working directory."""
    config = Config(str(_HERE / "alembic.ini"))
    config.set_main_option("script_location", str(_HERE / "migrations"))
    # handed over as an attribute: a URL may hold '%', which the ini parser would mangle
    config.attributes["url"] = normalise_url(url)
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision`` (default: the newest)."""
    command.upgrade(alembic_config(url), revision)

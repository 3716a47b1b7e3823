"""The complete database schema: every module that defines tables, and how to build it.

``Base.metadata`` only knows the tables of modules that were imported, so Alembic and
``create_schema`` import this list first. Add a module here when it adds tables.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

import audit.alerts  # alerts, alert_transitions, detector_adjustments
import audit.models  # audit_events, audit_checkpoints, audit_anchors
import gateway.apikeys  # api_keys
import gateway.directory.store  # people, role_grants, role_changes, hr_events, directory_state
from audit.store import Base, normalise_url

# Every module that registers tables on Base.metadata (importing it is what registers them).
MODEL_MODULES = (audit.models, audit.alerts, gateway.apikeys, gateway.directory.store)

_HERE = Path(__file__).resolve().parent


def create_schema(engine: Engine) -> None:
    """Create every missing table directly (tests, the demo); production runs ``upgrade``."""
    Base.metadata.create_all(engine)


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

"""Alembic environment: the metadata of every Wardgate table, online migrations only."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

import audit.schema  # noqa: F401 - imports every models module, completing the metadata
from audit.models import UTCDateTime
from audit.store import Base, make_engine

config = context.config
url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
if not url:
    raise SystemExit("no database URL: run `wardgate db upgrade --db URL`")


def render_item(kind: str, obj: Any, autogen: AutogenContext) -> str | Literal[False]:
    """Autogenerate writes our UTC type as the plain column type it stores."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


engine = make_engine(url)
try:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()

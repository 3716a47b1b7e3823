"""A private PostgreSQL schema per test (or module), on the server every test machine runs."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from audit.store import make_engine

PG_URL = "postgresql://root@127.0.0.1:5432/test"


def schema_url(schema: str) -> str:
    """A URL whose connections use ``schema`` as their search path."""
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


@contextmanager
def temporary_schema(prefix: str) -> Iterator[str]:
    """Create ``<prefix>_<random>``, yield its name, drop it with everything in it."""
    schema = f"{prefix}_{secrets.token_hex(6)}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

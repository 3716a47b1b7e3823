"""``wardgate keys``: create, revoke and list API keys from the command line.

The database comes from ``--db URL`` or from the ``database_url`` of ``--config FILE``.
Every failure prints one line saying what to do and exits with code 2, never a traceback.
"""

from __future__ import annotations

import getpass
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from audit.schema import ensure_schema
from audit.store import make_engine, normalise_url
from gateway.apikeys import ApiKeyStore
from gateway.errors import WardgateError
from gateway.settings import load_settings

keys_app = typer.Typer(help="Create, revoke and list API keys for service accounts.")

DbOption = Annotated[
    str | None, typer.Option("--db", help="database URL, e.g. sqlite:///.wardgate/wardgate.db")
]
ConfigOption = Annotated[
    str | None, typer.Option("--config", help="wardgate.yaml whose database_url to use")
]


def _fail(message: str) -> NoReturn:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _store(db: str | None, config: str | None) -> ApiKeyStore:
    if db and config:
        _fail("pass either --db or --config, not both")
    try:
        url = db or (load_settings(config).database_url if config else None)
    except WardgateError as exc:
        _fail(exc.detail)
    if not url:
        _fail("no database given; pass --db URL or --config FILE")
    try:
        make_url(normalise_url(url))
    except (ArgumentError, ValueError, ImportError) as exc:
        _fail(f"cannot use database URL: {exc}")
    try:
        ensure_schema(url)  # a fresh database gets its tables, an old one its migrations
    except SQLAlchemyError as exc:
        _fail(f"cannot open the database: {_shown(exc)}")
    return ApiKeyStore(make_engine(url))


def _shown(exc: SQLAlchemyError) -> str:
    # The driver's first line says what went wrong; the rest may quote SQL or parameters.
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]


def _database_failed(exc: SQLAlchemyError) -> NoReturn:
    _fail(
        f"the database refused the operation ({_shown(exc)}); check the URL and that the "
        "schema is up to date (the api_keys table exists)"
    )


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="what the key is for, e.g. 'order sync'")],
    subject: Annotated[str, typer.Option("--subject", help="the service account it acts as")],
    role: Annotated[list[str], typer.Option("--role", help="a role to grant (repeatable)")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Create a key and print it once."""
    store = _store(db, config)
    try:
        key = store.create(name, subject, role, created_by=getpass.getuser())
    except WardgateError as exc:
        _fail(exc.detail)
    except SQLAlchemyError as exc:
        _database_failed(exc)
    console = Console()
    console.print(key, highlight=False, soft_wrap=True)
    Console(stderr=True).print(
        "[yellow]Store this key now (e.g. in your secret manager): it is shown only once and "
        "cannot be recovered.[/yellow]",
        highlight=False,
    )


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (see 'list')")],
    reason: Annotated[str, typer.Option("--reason", help="why, for the audit trail")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Revoke a key; gateways stop accepting it within about a second."""
    store = _store(db, config)
    try:
        changed = store.revoke(key_id, reason)
    except WardgateError as exc:
        _fail(exc.detail)
    except SQLAlchemyError as exc:
        _database_failed(exc)
    typer.echo(f"revoked {key_id}" if changed else f"{key_id} was already revoked; unchanged")


@keys_app.command("list")
def list_keys(db: DbOption = None, config: ConfigOption = None) -> None:
    """List keys (never their secrets)."""
    store = _store(db, config)
    try:
        records = store.list()
    except SQLAlchemyError as exc:
        _database_failed(exc)
    table = Table("id", "name", "subject", "roles", "created", "by", "status", "last used")
    for r in records:
        status = (
            f"revoked {r.revoked_at:%Y-%m-%d}: {r.revoked_reason}" if r.revoked_at else "active"
        )
        table.add_row(
            r.id,
            r.name,
            r.subject,
            ", ".join(sorted(r.roles)),
            f"{r.created_at:%Y-%m-%d %H:%M}",
            r.created_by,
            status,
            f"{r.last_used_at:%Y-%m-%d %H:%M}" if r.last_used_at else "never",
        )
    Console(width=200).print(table)

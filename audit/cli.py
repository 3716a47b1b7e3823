"""``wardgate audit …`` (verify, export, prune) and ``wardgate db upgrade``.

The database comes from ``--db URL`` or from ``database_url`` in ``--config FILE``.
Operator mistakes and unreachable databases print one line and exit 2, never a traceback;
a failed verification exits 1 naming the first broken record of each chain.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, BinaryIO, TypeVar

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from audit.chain import load_signer, parse_public_key
from audit.export import cef_line, iter_events, jsonl_line
from audit.models import as_utc, events_table
from audit.prune import prune
from audit.schema import upgrade
from audit.settings import AuditSettings
from audit.store import make_engine
from audit.verify import verify
from gateway.errors import ConfigError, WardgateError
from gateway.settings import load_settings

audit_app = typer.Typer(help="The audit trail: verify, export, prune.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
err = Console(stderr=True)

DbOption = Annotated[
    str | None, typer.Option("--db", help="database URL (else database_url from --config)")
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="wardgate.yaml with database_url and audit:")
]
T = TypeVar("T")


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    cef = "cef"


@contextmanager
def _operator_errors() -> Iterator[None]:
    """Turn expected failures into one line on stderr and exit code 2."""
    try:
        yield
    except WardgateError as exc:
        err.print(f"error: {exc.detail}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        err.print(f"error: database: {first}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    except OSError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None


def _resolve(db: str | None, config: Path | None) -> tuple[str, AuditSettings]:
    settings = load_settings(config) if config is not None else None
    audit = settings.audit if settings is not None else AuditSettings.model_validate({})
    url = db or (settings.database_url if settings is not None else None)
    if not url:
        raise ConfigError("no database given: pass --db URL or --config FILE")
    return url, audit


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def _with_engine(url: str, work: Callable[[Engine], T]) -> T:
    engine = make_engine(url)
    try:
        return work(engine)
    finally:
        engine.dispose()


@audit_app.command("verify")
def verify_command(
    db: DbOption = None,
    config: ConfigOption = None,
    public_key: Annotated[
        Path | None,
        typer.Option(help="Ed25519 public key (PEM or hex); default: the configured signing key"),
    ] = None,
) -> None:
    """Check every hash chain and checkpoint; name the first broken record per chain."""
    with _operator_errors():
        url, audit = _resolve(db, config)
        key: Ed25519PublicKey | None
        if public_key is not None:
            key = parse_public_key(public_key.read_text(), str(public_key))
        else:
            signer = load_signer(audit)
            key = signer.private_key.public_key() if signer else None
        with _progress() as bar:
            task = bar.add_task("verifying", total=None)
            report = _with_engine(
                url,
                lambda e: verify(
                    e, public_key=key, progress=lambda d, t: bar.update(task, completed=d, total=t)
                ),
            )
    for note in report.notes():
        err.print(f"note: {note}", markup=False, highlight=False)
    if not report.ok:
        for problem in report.problems:
            typer.echo(f"BROKEN {problem.kind}: {problem}")
        raise typer.Exit(1)
    typer.echo(f"OK: {report.rows} events in {len(report.chains)} chains verified")


@audit_app.command("export")
def export_command(
    format: Annotated[ExportFormat, typer.Option("--format", help="jsonl or cef")],
    since: Annotated[str | None, typer.Option(help="ISO 8601: only events at or after")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    output: Annotated[Path | None, typer.Option(help="file to write (default stdout)")] = None,
) -> None:
    """Stream events, oldest first, as JSON lines or CEF."""
    with _operator_errors():
        url, _ = _resolve(db, config)
        start = _parse_time(since) if since else None
        target = output.open("wb") if output is not None else sys.stdout.buffer
        try:
            count = _with_engine(url, lambda e: _export(e, format, start, target))
        finally:
            if output is not None:
                target.close()
    err.print(f"exported {count} events", highlight=False)


def _export(engine: Engine, fmt: ExportFormat, since: datetime | None, out: BinaryIO) -> int:
    query = select(func.count()).select_from(events_table)
    if since is not None:
        query = query.where(events_table.c.time >= since)
    with engine.connect() as conn:
        total = conn.execute(query).scalar_one()
    written = 0
    with _progress() as bar:
        task = bar.add_task("exporting", total=total)
        for event in iter_events(engine, since=since):
            out.write(
                jsonl_line(event) if fmt is ExportFormat.jsonl else cef_line(event).encode() + b"\n"
            )
            written += 1
            if written % 1000 == 0:
                bar.update(task, completed=written)
    out.flush()
    return written


@audit_app.command("prune")
def prune_command(
    older_than: Annotated[str, typer.Option(help="age in days, e.g. 365d")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Delete events older than the given age (never under audit.retention_min_days).

    The store is verified first: pruning never anchors a chain that is already broken.
    """
    with _operator_errors():
        url, audit = _resolve(db, config)
        age = _parse_days(older_than)
        signer = load_signer(audit)
        public = signer.private_key.public_key() if signer else None

        def run(engine: Engine) -> str:
            report = verify(engine, public_key=public)
            if not report.ok:
                raise WardgateError(
                    f"refusing to prune a store that does not verify: {report.problems[0]}; "
                    "investigate with `wardgate audit verify` first"
                )
            pruned = prune(engine, age, audit.retention_min_days, signer=signer)
            return f"pruned {pruned.total} events older than {pruned.cutoff.isoformat()}"

        typer.echo(_with_engine(url, run))


@db_app.command("upgrade")
def upgrade_command(db: DbOption = None, config: ConfigOption = None) -> None:
    """Migrate the database schema to the newest version."""
    with _operator_errors():
        url, _ = _resolve(db, config)
        upgrade(url)
    typer.echo("database schema is up to date")


def _parse_time(text: str) -> datetime:
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise ConfigError(f"--since {text!r}: use ISO 8601, e.g. 2026-11-01T00:00:00Z") from None


def _parse_days(text: str) -> timedelta:
    match = re.fullmatch(r"(\d{1,5})d", text.strip())
    if match is None:
        raise ConfigError(f"--older-than {text!r}: give a number of days, e.g. 365d")
    return timedelta(days=int(match[1]))

"""``wardgate sync | people | revoke``: directory commands for operators.

The lead mounts ``sync_app`` on the ``wardgate`` command (``app.add_typer(sync_app)``).
Every failure prints one line saying what to do and exits with status 2.
"""

from __future__ import annotations

import asyncio
import getpass
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from audit.schema import ensure_schema
from audit.store import make_engine
from gateway.directory.model import DirectoryUnavailable
from gateway.directory.source import make_source
from gateway.directory.status import PeopleStatus
from gateway.directory.store import list_people
from gateway.directory.sync import SyncDiff, SyncRunner
from gateway.errors import WardgateError
from gateway.settings import Settings, load_settings

sync_app = typer.Typer(no_args_is_help=True, help="Directory sync and offboarding.")
console = Console()
errors = Console(stderr=True)
T = TypeVar("T")

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", help="settings file", envvar="WARDGATE_CONFIG"),
]


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(2)


def _open(config: Path) -> tuple[Settings, Engine, PeopleStatus]:
    settings = load_settings(config)
    ensure_schema(settings.database_url)
    engine = make_engine(settings.database_url)
    return settings, engine, PeopleStatus(engine, settings.redis_url)


def _run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(work())
    except (WardgateError, DirectoryUnavailable) as exc:
        raise _fail(getattr(exc, "detail", None) or str(exc)) from None


@sync_app.command("sync")
def sync_command(
    config: ConfigOption = Path("wardgate.yaml"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show the diff, change nothing")
    ] = False,
    loop: Annotated[
        bool, typer.Option("--loop", help="keep syncing (interval_s, group change polling)")
    ] = False,
) -> None:
    """Run one directory sync and print joiners, movers, leavers."""

    async def work() -> SyncDiff | None:
        settings, engine, people = _open(config)
        runner = SyncRunner(settings.directory, engine, people, make_source(settings.directory))
        if loop:
            await people.start()
            try:
                await runner.run_forever()
            finally:
                await people.close()
            return None
        return await runner.run_once(dry_run=dry_run)

    diff = _run(work)
    if diff is None:
        return
    console.print(diff_table(diff, dry_run))
    if diff.refused:
        raise _fail(f"sync refused, nothing changed: {diff.refused}")


def diff_table(diff: SyncDiff, dry_run: bool = False) -> Table:
    """The diff as a table: one row per person and change."""
    verb = "would change" if dry_run or diff.refused else "changed"
    table = Table(title=f"sync {diff.run_id} ({diff.source}): {verb}")
    for column in ("change", "subject", "detail"):
        table.add_column(column)
    for person in diff.joiners:
        table.add_row("joiner", person.subject, _roles(person.roles))
    for mover in diff.movers:
        table.add_row("mover", mover.subject, f"+{_roles(mover.added)} -{_roles(mover.removed)}")
    for subject in diff.leavers:
        table.add_row("leaver", subject, "gone from the directory: revoked")
    for subject in diff.disabled:
        table.add_row("disabled", subject, "disabled or locked: revoked")
    for subject in diff.re_enabled:
        table.add_row("re-enabled", subject, "enabled again (old tokens stay refused)")
    if diff.empty:
        table.add_row("-", "-", "no changes")
    return table


def _roles(roles: frozenset[tuple[str, str]]) -> str:
    return ", ".join(f"{role}@{domain}" for role, domain in sorted(roles)) or "none"


@sync_app.command("people")
def people_command(config: ConfigOption = Path("wardgate.yaml")) -> None:
    """List people with status, roles, source and when the directory last saw them."""
    try:
        _, engine, _ = _open(config)
    except WardgateError as exc:
        raise _fail(exc.detail) from None
    table = Table(title="people")
    for column in ("subject", "name", "status", "roles", "source", "last seen", "stale"):
        table.add_column(column)
    for p in list_people(engine):
        status = p.status + (" (departing)" if p.departing else "")
        seen = (
            p.last_seen_in_directory.strftime("%Y-%m-%d %H:%M") if p.last_seen_in_directory else "-"
        )
        table.add_row(
            p.subject,
            p.display_name or "",
            status,
            _roles(frozenset(p.roles)),
            p.source,
            seen,
            "yes" if p.stale else "",
        )
    console.print(table)


@sync_app.command("revoke")
def revoke_command(
    person: Annotated[str, typer.Argument(help="subject to revoke")],
    reason: Annotated[str, typer.Option("--reason", help="why (recorded with the change)")],
    config: ConfigOption = Path("wardgate.yaml"),
) -> None:
    """Revoke a person now: tokens refused, roles and API keys gone."""
    if not reason.strip():
        raise _fail("--reason must say why; it is recorded with the revocation")
    operator = os.environ.get("SUDO_USER") or getpass.getuser()

    async def work() -> None:
        _, _, people = _open(config)
        await people.revoke(person, reason=reason, cause=f"admin:{operator}")

    _run(work)
    console.print(f"revoked {person}: {reason}", highlight=False)

"""``wardgate sync | people | revoke`` through typer's runner, on a real SQLite file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from audit.store import make_engine
from gateway.directory.cli import sync_app
from gateway.directory.store import get_person, list_people
from tests.directory.conftest import DEMO_DIRECTORY

cli = typer.Typer()
cli.add_typer(sync_app)  # mounted the way the lead mounts it on `wardgate`
runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    directory = tmp_path / "directory.yaml"
    shutil.copy(DEMO_DIRECTORY, directory)
    path = tmp_path / "wardgate.yaml"
    path.write_text(
        f"""
upstreams: {{crm: {{base_url: "http://127.0.0.1:9", prefix: /crm}}}}
database_url: sqlite:///{tmp_path / "w.db"}
directory: {{source: file, file: {directory}}}
""",
        encoding="utf-8",
    )
    return path


def db(config: Path):
    return make_engine(f"sqlite:///{config.parent / 'w.db'}")


def test_dry_run_shows_the_diff_and_changes_nothing(config: Path) -> None:
    result = runner.invoke(cli, ["sync", "--dry-run", "--config", str(config)])

    assert result.exit_code == 0, result.output
    assert (
        "would change" in result.output and "joiner" in result.output and "sales01" in result.output
    )
    assert list_people(db(config)) == []


def test_sync_people_revoke(config: Path) -> None:
    synced = runner.invoke(cli, ["sync", "--config", str(config)])
    listed = runner.invoke(cli, ["people", "--config", str(config)])
    revoked = runner.invoke(
        cli, ["revoke", "sales02", "--reason", "left today", "--config", str(config)]
    )

    assert synced.exit_code == 0 and "changed" in synced.output
    assert listed.exit_code == 0 and "王芳" in listed.output and "disabled" in listed.output
    assert revoked.exit_code == 0
    person = get_person(db(config), "sales02")
    assert person is not None and person.status == "left" and person.roles == []


def test_refused_sync_exits_2_and_changes_nothing(config: Path) -> None:
    runner.invoke(cli, ["sync", "--config", str(config)])
    directory = config.parent / "directory.yaml"
    directory.write_text("people: []\n", encoding="utf-8")  # someone emptied the file

    result = runner.invoke(cli, ["sync", "--config", str(config)])

    assert result.exit_code == 2 and "sync refused" in result.output
    assert all(p.status != "left" for p in list_people(db(config)))


@pytest.mark.parametrize(
    "args",
    [
        ["sync", "--config", "/nonexistent/wardgate.yaml"],
        ["revoke", "sales01", "--reason", " ", "--config", "CONFIG"],
    ],
    ids=["missing-config", "blank-reason"],
)
def test_errors_exit_2_with_a_message(config: Path, args: list[str]) -> None:
    result = runner.invoke(cli, [str(config) if a == "CONFIG" else a for a in args])
    assert result.exit_code == 2 and "error:" in result.output

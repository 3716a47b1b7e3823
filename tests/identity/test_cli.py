"""``wardgate keys`` through typer's CliRunner against a real SQLite file."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from gateway.apikeys import ApiKeyStore, split_key
from gateway.apikeys_cli import keys_app

runner = CliRunner()


@pytest.fixture
def db_url(engine: Engine) -> str:
    return str(engine.url)


def run(*args: str):
    return runner.invoke(keys_app, list(args))


def test_create_list_revoke(db_url: str, engine: Engine) -> None:
    created = run("create", "order sync", "--subject", "svc-sync", "--role", "crm-sync",
                  "--role", "erp-read", "--db", db_url)  # fmt: skip
    assert created.exit_code == 0, created.output
    # stdout holds the key on a line of its own (log lines go wherever logging is configured)
    [key] = [line for line in created.stdout.splitlines() if line.startswith("wgk_")]
    parts = split_key(key)
    assert parts is not None
    key_id, secret = parts
    assert "shown only once" in created.stderr
    record = ApiKeyStore(engine).list()[0]
    assert record.roles == frozenset({"crm-sync", "erp-read"})

    listed = run("list", "--db", db_url)
    assert listed.exit_code == 0, listed.output
    assert key_id in listed.stdout and "svc-sync" in listed.stdout and "active" in listed.stdout
    assert secret not in listed.output

    revoked = run("revoke", key_id, "--reason", "rotated", "--db", db_url)
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked {key_id}" in revoked.stdout
    assert "revoked" in run("list", "--db", db_url).stdout
    again = run("revoke", key_id, "--reason", "twice", "--db", db_url)
    assert again.exit_code == 0 and "already revoked" in again.stdout


def test_database_from_config_file(db_url: str, tmp_path: Path) -> None:
    config = tmp_path / "wardgate.yaml"
    upstream = "{base_url: 'http://127.0.0.1:1', prefix: /crm}"
    config.write_text(f"database_url: {db_url}\nupstreams:\n  crm: {upstream}\n")
    created = run("create", "bot", "--subject", "svc-bot", "--role", "rpa", "--config", str(config))
    assert created.exit_code == 0, created.output
    assert "svc-bot" in run("list", "--config", str(config)).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["revoke", "nosuchkey123", "--reason", "x"], "no API key with id"),
        (["create", "bot", "--subject", "  ", "--role", "rpa"], "subject must be"),
        (["create", "bot", "--subject", "s", "--role", ""], "role must be"),
    ],
)
def test_bad_input_exits_2_with_a_message(db_url: str, args: list[str], message: str) -> None:
    result = run(*args, "--db", db_url)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_role_is_required(db_url: str) -> None:
    result = run("create", "bot", "--subject", "s", "--db", db_url)
    assert result.exit_code == 2
    assert "--role" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["list"],  # neither --db nor --config
        ["list", "--db", "not a url"],
        ["list", "--db", "sqlite:///{tmp}/missing-dir/x.db"],
        ["list", "--config", "{tmp}/nope.yaml"],
        ["list", "--db", "sqlite:///{tmp}/a.db", "--config", "{tmp}/b.yaml"],
        ["list", "--db", "postgresql://root:hunter2@127.0.0.1:1/test"],
    ],
)
def test_unusable_database_exits_2(tmp_path: Path, args: list[str]) -> None:
    result = run(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error:")
    assert "Traceback" not in result.output
    assert "hunter2" not in result.output


def test_a_key_id_never_starts_with_a_dash_so_revoke_can_name_it(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1 id in 64 would start with '-' and read as an option: `keys revoke -xyz` fails.
    drawn = iter(["-startsdash0", "plainid00001"])
    real = secrets.token_urlsafe
    monkeypatch.setattr(
        "gateway.apikeys.secrets.token_urlsafe", lambda n: next(drawn) if n == 9 else real(n)
    )
    created = run("create", "bot", "--subject", "svc-bot", "--role", "crm-sync", "--db", db_url)
    assert created.exit_code == 0, created.output
    [key] = [line for line in created.stdout.splitlines() if line.startswith("wgk_")]
    key_id, _ = split_key(key)  # type: ignore[misc]
    assert key_id == "plainid00001"
    revoked = run("revoke", key_id, "--reason", "rotated", "--db", db_url)
    assert revoked.exit_code == 0, revoked.output

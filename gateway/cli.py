"""The ``wardgate`` command.

wardgate serve --config FILE       run the gateway (proxy :8080, admin 127.0.0.1:8081)
wardgate demo                      everything on one machine, no setup
wardgate policy test               run the policy tests in policies/tests/
wardgate keys …                    API keys for service accounts
wardgate db upgrade                apply database migrations
wardgate audit verify|export|prune the evidence
wardgate sync / people / revoke    directory sync and offboarding
wardgate detect replay FILE        backtest export detection on past events
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from audit.cli import audit_app, db_app
from audit.detect_cli import detect_app
from gateway.apikeys_cli import keys_app
from gateway.directory.cli import sync_app
from gateway.errors import ConfigError
from gateway.logs import configure_logging
from gateway.policytest import run_policy_tests
from gateway.settings import load_settings

app = typer.Typer(
    name="wardgate",
    help="Access-control and data-leak guard for ERP/CRM integrations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
policy_app = typer.Typer(help="Policy as code: test the rules before they ship.")
app.add_typer(policy_app, name="policy")
app.add_typer(keys_app, name="keys", help="API keys for service accounts (bots, RPA, sync jobs).")
app.add_typer(db_app, name="db", help="Database schema migrations.")
app.add_typer(audit_app, name="audit", help="Verify, export and prune the audit trail.")
app.add_typer(detect_app, name="detect", help="Export detection: backtest on past events.")
app.add_typer(sync_app)  # sync, people, revoke: top-level commands


@app.callback()
def _quiet_logs() -> None:
    """Commands log warnings to stderr; ``serve`` and ``demo`` reconfigure for themselves."""
    configure_logging("console", "warning")


ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="settings file (YAML)", exists=False)
]


def _fail(message: str) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(2)


@app.command()
def serve(config: ConfigOption = Path("wardgate.yaml")) -> None:
    """Run the gateway: the proxy and the admin listener."""
    from gateway.app import run

    try:
        settings = load_settings(config)
    except ConfigError as err:
        raise _fail(str(err)) from None
    configure_logging(settings.log.format, settings.log.level)
    try:
        run(settings)
    except ConfigError as err:
        raise _fail(str(err)) from None


@app.command()
def demo(
    state_dir: Annotated[Path, typer.Option(help="where the demo keeps its state")] = Path(
        ".wardgate"
    ),
    proxy_port: int = 8080,
    admin_port: int = 8081,
) -> None:
    """Run the sample CRM and ERP, a demo identity provider and Wardgate in front."""
    from gateway.demo.runner import run_demo

    configure_logging("console", "info")
    try:
        asyncio.run(run_demo(state_dir, proxy_port=proxy_port, admin_port=admin_port))
    except ConfigError as err:
        raise _fail(str(err)) from None
    except KeyboardInterrupt:
        pass


@policy_app.command("test")
def policy_test(
    config: ConfigOption = Path("wardgate.yaml"),
    tests_dir: Annotated[Path | None, typer.Option(help="default: <policy.dir>/tests")] = None,
    policy_dir: Annotated[Path | None, typer.Option(help="override policy.dir")] = None,
) -> None:
    """Run the YAML policy tests (like `opa test`); exit 1 if any fails."""
    try:
        failures = run_policy_tests(config, tests_dir=tests_dir, policy_dir=policy_dir)
    except ConfigError as err:
        raise _fail(str(err)) from None
    raise typer.Exit(1 if failures else 0)


def main() -> None:
    app()

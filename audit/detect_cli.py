"""``wardgate detect …``: export detection tools for operators."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import orjson
import typer

from audit.detectors.config import load_detection_config
from audit.replay import read_events, replay
from gateway.errors import ConfigError, WardgateError
from gateway.logs import configure_logging
from gateway.settings import load_settings

detect_app = typer.Typer(no_args_is_help=True, add_completion=False)


@detect_app.callback()
def _group() -> None:
    """Export detection: backtest the detectors on past events."""


@detect_app.command("replay")
def replay_command(
    events: Annotated[Path, typer.Argument(help="audit-shaped events, one JSON object a line")],
    settings: Annotated[
        Path | None, typer.Option("--settings", help="wardgate.yaml (for policy.detection)")
    ] = None,
    detection: Annotated[
        Path | None, typer.Option("--detection", help="detection policy (default: from settings)")
    ] = None,
    departing: Annotated[
        list[str] | None, typer.Option("--departing", help="treat SUBJECT as leaving (repeat)")
    ] = None,
) -> None:
    """Print, as JSON lines, the alerts the detectors would raise on EVENTS."""
    configure_logging("console", "warning")  # stdout carries only the alerts
    try:
        if detection is None:
            detection = (
                load_settings(settings).policy.path("detection")
                if settings is not None
                else Path("policies/detection.yaml")
            )
        config = load_detection_config(detection)
        try:
            with events.open(encoding="utf-8") as lines:
                observations = list(read_events(lines))
        except OSError as exc:
            raise ConfigError(f"cannot read {events}: {exc.strerror}") from None
        alerts = asyncio.run(replay(observations, config, departing or ()))
    except WardgateError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    for alert in alerts:
        typer.echo(orjson.dumps(alert.to_json()).decode())

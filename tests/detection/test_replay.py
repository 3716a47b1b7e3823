"""``wardgate detect replay`` on small JSONL files."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from audit.detect_cli import detect_app
from tests.detection.conftest import POLICY

runner = CliRunner()


def event(time: str, subject: str, records: int, **extra: object) -> dict[str, object]:
    return {
        "time": time,
        "subject": subject,
        "roles": ["sales"],
        "upstream": "crm",
        "entity": "customer",
        "method": "GET",
        "path": "/api/customers",
        "status": 200,
        "records": records,
        **extra,
    }


def write(tmp_path: Path, events: list[dict[str, object]], tail: str = "") -> Path:
    path = tmp_path / "events.jsonl"
    lines = [orjson.dumps(e).decode() for e in events]
    path.write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")
    return path


def test_replay_prints_the_alerts_it_would_raise_on_the_events_clock(tmp_path: Path) -> None:
    crawl = [
        event(
            f"2026-11-25T02:{minute:02d}:00Z",
            "sales07",
            100,
            path=f"/api/customers?page={minute}&page_size=100",
        )
        for minute in range(1, 21)
    ]
    quiet = [event("2026-11-25T03:00:00+00:00", "sales08", 20)]
    no_export = [{"time": "2026-11-25T03:00:00Z", "subject": None, "records": 0}]
    path = write(tmp_path, crawl + quiet + no_export)
    result = runner.invoke(detect_app, ["replay", str(path), "--detection", str(POLICY)])
    assert result.exit_code == 0, result.output
    alerts = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [(a["detector"], a["subject"]) for a in alerts] == [("crawl", "sales07")]
    # raised on page 20 (pages 6 to 20 are 15 deep pages), on the events' own clock
    assert alerts[0]["raised_at"] == "2026-11-25T02:20:00+00:00"
    assert alerts[0]["severity"] == "high" and "walked" in alerts[0]["explanation"]


def test_replay_with_a_departing_person(tmp_path: Path) -> None:
    path = write(tmp_path, [event("2026-11-25T02:00:00Z", "leaver", 150, pii={"phone": 150})])
    args = ["replay", str(path), "--detection", str(POLICY)]
    assert runner.invoke(detect_app, args).stdout == ""
    result = runner.invoke(detect_app, [*args, "--departing", "leaver"])
    assert [orjson.loads(x)["detector"] for x in result.stdout.splitlines()] == ["departing"]


def test_replay_names_the_bad_line(tmp_path: Path) -> None:
    path = write(tmp_path, [event("2026-11-25T02:00:00Z", "sales07", 5)], tail="{oops\n")
    result = runner.invoke(detect_app, ["replay", str(path), "--detection", str(POLICY)])
    assert result.exit_code == 2 and "line 2: not JSON" in result.stderr
    bad_time = write(tmp_path, [event("yesterday", "sales07", 5)])
    result = runner.invoke(detect_app, ["replay", str(bad_time), "--detection", str(POLICY)])
    assert result.exit_code == 2 and "line 1: time must be ISO 8601" in result.stderr


def test_replay_reports_a_missing_policy(tmp_path: Path) -> None:
    path = write(tmp_path, [])
    result = runner.invoke(detect_app, ["replay", str(path), "--detection", "nope.yaml"])
    assert result.exit_code == 2 and "nope.yaml not found" in result.stderr

"""Officer API for export alerts: list, inspect, acknowledge, resolve.

Every route needs the officer role. Every state change is recorded as an audit event of
its own (``upstream="admin"``), beside the alert's own transition history. Bad input is a
400 problem and changes nothing; a transition the alert's state does not allow is a 409.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from gateway.admin.auth import officer_event, require_officer
from gateway.errors import BadRequest
from gateway.principal import Principal

router = APIRouter(prefix="/api/alerts", tags=["alerts"])
Officer = Annotated[Principal, Depends(require_officer)]
MAX_NOTE = 2000


async def json_body(request: Request, allowed: set[str]) -> dict[str, Any]:
    """The request's JSON object (empty body = ``{}``), refusing unknown keys with a 400."""
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise BadRequest("the body must be a JSON object", reason_id="bad_body") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", reason_id="bad_body")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(
            f"unknown field(s) {unknown}; allowed: {sorted(allowed)}", reason_id="bad_body"
        )
    return body


def text_field(body: dict[str, Any], name: str, default: str = "") -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or len(value) > MAX_NOTE:
        raise BadRequest(
            f"{name} must be text of at most {MAX_NOTE} characters", reason_id="bad_body"
        )
    return value


async def record_officer_action(
    request: Request, officer: Principal, reason_id: str, entity: str
) -> None:
    """Audit one officer state change (who, what, on which path)."""
    event = officer_event(request, officer, reason_id=reason_id, entity=entity)
    await request.app.state.services.audit.record(event)


@router.get("", summary="List alerts, newest first (filters: state, subject, detector)")
async def list_alerts(
    request: Request,
    officer: Officer,
    state: str | None = None,
    subject: str | None = None,
    detector: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    if not 1 <= limit <= 1000:
        raise BadRequest("limit must be between 1 and 1000", reason_id="bad_filter")
    store = request.app.state.services.detection.alerts
    alerts = await run_in_threadpool(
        lambda: store.list_alerts(state=state, subject=subject, detector=detector, limit=limit)
    )
    return {"alerts": alerts}


@router.get("/{alert_id}", summary="One alert with its evidence and every transition")
async def get_alert(request: Request, alert_id: str, officer: Officer) -> dict[str, Any]:
    store = request.app.state.services.detection.alerts
    return await run_in_threadpool(store.get, alert_id)


@router.post("/{alert_id}/acknowledge", summary='Take an open alert: {"note": …}')
async def acknowledge(request: Request, alert_id: str, officer: Officer) -> dict[str, Any]:
    body = await json_body(request, {"note"})
    note = text_field(body, "note")
    guard = request.app.state.services.detection
    alert = await guard.acknowledge(alert_id, by=officer.subject, note=note)
    await record_officer_action(request, officer, "alert_acknowledged", "alert")
    return alert


@router.post(
    "/{alert_id}/resolve",
    summary='Close an alert: {"verdict": "true_positive"|"benign"|"false_positive", "note": …}',
    description="Releases the throttle or block the alert placed. `benign` and "
    "`false_positive` also end that detector's episode for the person and entity: only "
    "records read after the verdict count towards a new alert, so the next read is not "
    "blocked again at once. `true_positive` ends nothing: a read that is still over a limit "
    "blocks again. A false positive also raises that person's threshold for that detector "
    "(×1.5 each, at most ×4). Every replica applies the verdict within about a second.",
)
async def resolve(request: Request, alert_id: str, officer: Officer) -> dict[str, Any]:
    body = await json_body(request, {"verdict", "note"})
    verdict = body.get("verdict")
    if not isinstance(verdict, str):
        raise BadRequest(
            'verdict is required: "true_positive", "benign" or "false_positive"',
            reason_id="bad_verdict",
        )
    note = text_field(body, "note")
    guard = request.app.state.services.detection
    alert = await guard.resolve(alert_id, by=officer.subject, verdict=verdict, note=note)
    await record_officer_action(request, officer, f"alert_resolved_{verdict}", "alert")
    return alert

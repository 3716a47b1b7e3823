"""Officer API for people: who they are, what they exported, suspend and reinstate.

Every route needs the officer role; every state change is recorded as an audit event.
The directory answers who people are (``gateway.directory.store``); changes go through
``services.people`` (``PeopleActions``) so that they reach every replica.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool

from audit.models import EventRow
from gateway.admin.alerts_api import Officer, json_body, record_officer_action, text_field
from gateway.directory.store import PersonView, get_person, list_people
from gateway.errors import BadRequest, NotFound

router = APIRouter(prefix="/api/people", tags=["people"])
MAX_EXPORT_DAYS = 90


def person_to_dict(person: PersonView) -> dict[str, Any]:
    out = dataclasses.asdict(person)
    out["roles"] = [{"role": r, "domain": d} for r, d in person.roles]
    for key, value in out.items():
        if isinstance(value, date | datetime):
            out[key] = value.isoformat()
    return out


async def known_person(request: Request, subject: str) -> PersonView:
    engine = request.app.state.services.engine
    person = await run_in_threadpool(get_person, engine, subject)
    if person is None:
        raise NotFound(f"no person {subject!r} in the directory", reason_id="person_not_found")
    return person


def exports_per_hour(engine: Engine, subject: str, since: datetime) -> list[dict[str, Any]]:
    """Records returned to ``subject`` per UTC hour and entity since ``since``, oldest first."""
    query = (
        select(EventRow.time, EventRow.entity, EventRow.records)
        .where(EventRow.subject == subject, EventRow.time >= since, EventRow.records > 0)
        .order_by(EventRow.time)
    )
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    with engine.connect() as conn:
        for time, entity, records in conn.execute(query):
            hour = time.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            bucket = totals[(hour.isoformat(), entity or "")]
            bucket[0] += records
            bucket[1] += 1
    return [
        {"hour": hour, "entity": entity, "records": n, "requests": calls}
        for (hour, entity), (n, calls) in totals.items()
    ]


@router.get("", summary="Everyone Wardgate knows, with status and roles")
async def people(request: Request, officer: Officer) -> dict[str, Any]:
    engine = request.app.state.services.engine
    return {"people": [person_to_dict(p) for p in await run_in_threadpool(list_people, engine)]}


@router.get("/{subject}", summary="One person, with their open alerts")
async def person(request: Request, subject: str, officer: Officer) -> dict[str, Any]:
    found = await known_person(request, subject)
    store = request.app.state.services.detection.alerts
    alerts = await run_in_threadpool(lambda: store.list_alerts(subject=subject, limit=1000))
    out = person_to_dict(found)
    out["alerts"] = [a for a in alerts if a["state"] != "resolved"]
    return out


@router.get("/{subject}/exports", summary="Records exported per hour and entity (days=1..90)")
async def exports(request: Request, subject: str, officer: Officer, days: str = "30") -> dict:
    if not days.isdigit() or not 1 <= int(days) <= MAX_EXPORT_DAYS:
        raise BadRequest(
            f"days must be a whole number from 1 to {MAX_EXPORT_DAYS}", reason_id="bad_filter"
        )
    since = datetime.now(UTC) - timedelta(days=int(days))
    engine = request.app.state.services.engine
    hours = await run_in_threadpool(exports_per_hour, engine, subject, since)
    return {"subject": subject, "since": since.isoformat(), "hours": hours}


@router.post("/{subject}/suspend", summary='Refuse the person everywhere: {"reason": …}')
async def suspend(request: Request, subject: str, officer: Officer) -> dict[str, Any]:
    reason = text_field(await json_body(request, {"reason"}), "reason", "suspended by an officer")
    await known_person(request, subject)
    await request.app.state.services.people.suspend(subject, by=officer.subject, reason=reason)
    await record_officer_action(request, officer, "person_suspended_by_officer", "person")
    return {"subject": subject, "status": "suspended"}


@router.post("/{subject}/reinstate", summary='Lift a suspension: {"reason": …}')
async def reinstate(request: Request, subject: str, officer: Officer) -> dict[str, Any]:
    reason = text_field(await json_body(request, {"reason"}), "reason", "reinstated by an officer")
    await known_person(request, subject)
    services = request.app.state.services
    await services.people.reinstate(subject, by=officer.subject, reason=reason)
    await services.detection.release_person(subject)
    await record_officer_action(request, officer, "person_reinstated", "person")
    return {"subject": subject, "status": "active"}


@router.post(
    "/{subject}/departing",
    summary='Record that the person handed in notice: {"last_day": "YYYY-MM-DD" | null}',
)
async def departing(request: Request, subject: str, officer: Officer) -> dict[str, Any]:
    body = await json_body(request, {"last_day"})
    last_day = body.get("last_day")
    if last_day is not None:
        try:
            last_day = date.fromisoformat(last_day).isoformat()
        except (TypeError, ValueError):
            raise BadRequest(
                "last_day must be a date like 2026-12-31, or null", reason_id="bad_body"
            ) from None
    await known_person(request, subject)
    await request.app.state.services.people.mark_departing(
        subject, last_day=last_day, by=officer.subject
    )
    await record_officer_action(request, officer, "person_marked_departing", "person")
    return {"subject": subject, "departing": True, "last_day": last_day}

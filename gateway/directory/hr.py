"""HR webhook: ``POST /hr/events``, authenticated by an HMAC signature, not by a token.

Threats: a forged event (anyone who can reach the admin listener) is refused by the
signature; a captured event replayed later is refused by the 5-minute window and, inside
it, recognised by its id (same body → ``duplicate``, no change; different body → 409).
Events may arrive out of order: a notice after a termination re-enables no one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from datetime import UTC, date, datetime
from typing import Any, Literal

import orjson
import structlog
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.directory.body import MAX_BODY, read_capped
from gateway.directory.changes import REVOKED_STATUSES, Changes
from gateway.directory.roles import new_person
from gateway.directory.settings import DirectorySettings
from gateway.directory.source import department_roles
from gateway.directory.store import HrEvent, Person, grants_of
from gateway.errors import (
    PROBLEM_CONTENT_TYPE,
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    RequestRefused,
    ServiceUnavailable,
    Unauthenticated,
)

log = structlog.get_logger(__name__)
router = APIRouter()
MAX_SKEW_S = 300


class HrEventBody(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(max_length=255)
    type: Literal["notice_given", "terminated", "transferred"]
    subject: str | None = Field(default=None, max_length=255)
    employee_id: str | None = Field(default=None, max_length=64)
    effective_at: datetime | None = None
    last_day: date | None = None
    department: str | None = Field(default=None, max_length=128)

    @model_validator(mode="after")
    def _complete(self) -> HrEventBody:
        if not self.id.strip():
            raise ValueError("id must be a non-empty unique event id")
        if not (self.subject or self.employee_id):
            raise ValueError("give subject or employee_id")
        if self.type == "transferred" and not self.department:
            raise ValueError("a transferred event needs department")
        if self.effective_at is not None and self.effective_at.tzinfo is None:
            raise ValueError("effective_at needs a time zone, e.g. 2026-12-31T17:00:00Z")
        return self


def verify_signature(secret: str, header: str | None, body: bytes, now: float) -> None:
    """Raise ``Unauthenticated`` unless ``header`` signs ``body`` within the time window."""
    if not header:
        raise Unauthenticated(
            "missing X-Wardgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of 't.body'>",
            reason_id="signature_missing",
        )
    parts = [p.strip().partition("=") for p in header.split(",")]
    stamps = [v for k, _, v in parts if k == "t"]
    signatures = [v for k, _, v in parts if k == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not signatures:
        raise Unauthenticated(
            "malformed X-Wardgate-Signature; expected t=<unix seconds>,v1=<hex>",
            reason_id="signature_invalid",
        )
    signed_at = int(stamps[0])
    if abs(now - signed_at) > MAX_SKEW_S:
        raise Unauthenticated(
            "signature timestamp is more than 5 minutes away from now; sign the event again "
            "when sending it and check the sender's clock",
            reason_id="signature_expired",
        )
    expected = hmac.new(
        secret.encode(), f"{signed_at}.".encode() + body, hashlib.sha256
    ).hexdigest()
    if not any(hmac.compare_digest(expected.encode(), sig.encode()) for sig in signatures):
        raise Unauthenticated(
            "signature does not match; sign '<t>.<raw body>' with the shared secret",
            reason_id="signature_invalid",
        )


@router.post("/hr/events")
async def receive_hr_event(request: Request) -> Response:
    """Apply one signed HR event (notice_given, terminated, transferred) exactly once."""
    try:
        result = await _handle(request)
    except RequestRefused as exc:
        log.warning("hr_event_refused", reason_id=exc.reason_id)
        headers = {k: v for k, v in exc.headers.items() if k != "www-authenticate"}
        return Response(exc.to_bytes(), exc.status, headers, PROBLEM_CONTENT_TYPE.decode())
    return Response(orjson.dumps(result), 200, media_type="application/json")


async def _handle(request: Request) -> dict[str, Any]:
    services = request.app.state.services
    env_name = services.settings.admin.hr_secret_env
    secret = os.environ.get(env_name)
    if not secret:
        raise ServiceUnavailable(
            f"the HR webhook is not configured: set the environment variable {env_name} "
            "to the shared secret and restart",
            reason_id="hr_webhook_unconfigured",
        )
    raw = await read_capped(request)
    if raw is None:
        raise PayloadTooLarge(
            f"an HR event is at most {MAX_BODY} bytes; send one event per call",
            reason_id="request_body_too_large",
        )
    verify_signature(secret, request.headers.get("x-wardgate-signature"), raw, time.time())
    event = _parse(raw)
    digest = hashlib.sha256(raw).hexdigest()
    people = services.people
    try:
        status = await people.apply(
            f"hr:{event.id}", lambda ch: _apply(ch, event, digest, services.settings.directory)
        )
    except IntegrityError:  # the same id raced in twice; the first one won
        status = await people.apply(f"hr:{event.id}", lambda ch: _check_seen(ch, event, digest))
    log.info("hr_event", event_id=event.id, type=event.type, status=status)
    return {"status": status, "id": event.id}


def _parse(raw: bytes) -> HrEventBody:
    try:
        return HrEventBody.model_validate(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        detail = str(exc) if isinstance(exc, orjson.JSONDecodeError) else _errors(exc)
        raise BadRequest(f"invalid HR event: {detail}", reason_id="bad_body") from None


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors()
    )


def _check_seen(ch: Changes, event: HrEventBody, digest: str) -> str | None:
    seen = ch.session.get(HrEvent, event.id)
    if seen is None:
        return None
    if seen.body_sha256 != digest:
        raise Conflict(  # an event id reused with a different body
            f"event id {event.id!r} was already used for a different event; "
            "give every event its own id",
            reason_id="hr_event_conflict",
        )
    return "duplicate"


def _apply(ch: Changes, event: HrEventBody, digest: str, settings: DirectorySettings) -> str:
    duplicate = _check_seen(ch, event, digest)
    if duplicate:
        return duplicate
    person = _find_person(ch, event)
    now = datetime.now(UTC)
    when = event.effective_at or now
    if event.type == "notice_given":
        ch.mark_departing(person, event.last_day)
    elif event.type == "terminated":
        ch.end_access(person, when, now, f"terminated by HR event {event.id}")
    else:
        _transfer(ch, person, event.department, settings)
    ch.session.add(
        HrEvent(
            event_id=event.id,
            type=event.type,
            subject=person.subject,
            body_sha256=digest,
            received_at=now,
            applied_at=now,
        )
    )
    ch.session.flush()  # a concurrent twin fails here, before anything is committed
    return "applied"


def _find_person(ch: Changes, event: HrEventBody) -> Person:
    if event.subject:
        return ch.person(event.subject) or new_person(ch, event.subject, "admin")
    person = ch.session.scalars(
        select(Person).where(Person.employee_id == event.employee_id)
    ).first()
    if person is None:
        raise NotFound(
            f"no person with employee_id {event.employee_id!r}; send subject instead, "
            "or sync the directory first",
            reason_id="person_unknown",
        )
    return person


def _transfer(
    ch: Changes, person: Person, department: str | None, settings: DirectorySettings
) -> None:
    """New department; roles of the old department swapped for the new one's."""
    old = person.department
    person.department = department
    ch.log("status", person.subject, detail=f"transferred {old} -> {department}")
    ch.touch(person)
    if person.status in REVOKED_STATUSES:
        return  # gone: a late transfer grants nothing
    current = set(grants_of(ch.session, person.subject))
    wanted = (current - department_roles(settings, old)) | department_roles(settings, department)
    ch.set_roles(person, wanted, source=person.source)

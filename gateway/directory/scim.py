"""SCIM 2.0 ``/scim/v2/Users`` (RFC 7643/7644) for identity providers that push people.

Deprovisioning is the point: ``active: false`` (PUT or either PATCH form) and DELETE end
access at once. Only a SCIM deprovisioning can be undone through SCIM, and re-activation gives
back the roles of the person's department at once (deprovisioning dropped every grant); a
revocation by HR, an officer or the directory sticks, also one that came after SCIM's. Errors
use SCIM's own format, never problem+json.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from gateway.directory.body import MAX_BODY, read_capped
from gateway.directory.changes import REVOKED_STATUSES, Changes
from gateway.directory.settings import DirectorySettings
from gateway.directory.source import department_roles
from gateway.directory.store import Person, as_utc

SCIM_MEDIA_TYPE = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
DELETED = "scim:delete"  # status_cause of a deleted user: 404 from then on (RFC 7644 §3.6)
_FILTER = re.compile(r'^\s*(userName|id)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)


class ScimError(Exception):
    """An error rendered as ``urn:ietf:params:scim:api:messages:2.0:Error``."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type

    def response(self) -> Response:
        body: dict[str, Any] = {
            "schemas": [ERROR_SCHEMA],
            "status": str(self.status),
            "detail": self.detail,
        }
        if self.scim_type:
            body["scimType"] = self.scim_type
        return Response(orjson.dumps(body), self.status, media_type=SCIM_MEDIA_TYPE)


class ScimRoute(APIRoute):
    """Renders ``ScimError`` (from the token check too) in SCIM's format on this router only."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def scim_handler(request: Request) -> Response:
            try:
                _check_token(request)
                return await handler(request)
            except ScimError as exc:
                return exc.response()

        return scim_handler


router = APIRouter(prefix="/scim/v2", route_class=ScimRoute)


def _check_token(request: Request) -> None:
    env_name = request.app.state.services.settings.admin.scim_token_env
    expected = os.environ.get(env_name)
    if not expected:
        raise ScimError(503, f"SCIM is not configured: set the environment variable {env_name}")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise ScimError(401, "missing or wrong bearer token; use the SCIM token Wardgate gave you")


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type=SCIM_MEDIA_TYPE)


def _user(person: Person, base: str) -> dict[str, Any]:
    updated = as_utc(person.updated_at) or datetime.now(UTC)
    user: dict[str, Any] = {
        "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
        "id": person.subject,
        "userName": person.subject,
        "displayName": person.display_name,
        "active": person.status not in REVOKED_STATUSES,
        "emails": [{"value": person.email, "primary": True}] if person.email else [],
        ENTERPRISE_SCHEMA: {"employeeNumber": person.employee_id, "department": person.department},
        "meta": {
            "resourceType": "User",
            "lastModified": updated.isoformat(),
            "location": f"{base}/scim/v2/Users/{person.subject}",
        },
    }
    return user


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _body(request: Request) -> dict[str, Any]:
    raw = await read_capped(request)
    if raw is None:
        raise ScimError(413, f"the body is over {MAX_BODY} bytes; send one user per request")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ScimError(400, "the body is not JSON", "invalidSyntax") from None
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    return body


def _visible(person: Person | None, subject: str) -> Person:
    if person is None or person.status_cause == DELETED:
        raise ScimError(404, f"no user {subject!r}")
    return person


@router.get("/Users")
async def list_users(request: Request) -> Response:
    """List users, optionally ``filter=userName eq "x"``, paged by ``startIndex``/``count``."""
    params = request.query_params
    try:
        start = max(int(params.get("startIndex", "1")), 1)
        count = max(int(params.get("count", "100")), 0)
    except ValueError:
        raise ScimError(400, "startIndex and count must be integers", "invalidValue") from None
    query = select(Person).where((Person.status_cause != DELETED) | Person.status_cause.is_(None))
    if raw_filter := params.get("filter"):
        match = _FILTER.match(raw_filter)
        if match is None:
            raise ScimError(400, 'only filter=userName eq "value" is supported', "invalidFilter")
        query = query.where(Person.subject == match.group(2).replace('\\"', '"'))
    with Session(request.app.state.services.engine) as session:
        people = session.scalars(query.order_by(Person.subject)).all()
    page = people[start - 1 : start - 1 + count]
    return _json(
        {
            "schemas": [LIST_SCHEMA],
            "totalResults": len(people),
            "startIndex": start,
            "itemsPerPage": len(page),
            "Resources": [_user(p, _base(request)) for p in page],
        }
    )


@router.get("/Users/{user_id}")
async def get_user(user_id: str, request: Request) -> Response:
    with Session(request.app.state.services.engine) as session:
        person = _visible(session.get(Person, user_id), user_id)
    return _json(_user(person, _base(request)))


@router.post("/Users")
async def create_user(request: Request) -> Response:
    body = await _body(request)
    subject = body.get("userName")
    if not isinstance(subject, str) or not subject.strip():
        raise ScimError(400, "userName is required", "invalidValue")
    directory = request.app.state.services.settings.directory

    def change(ch: Changes) -> Person:
        person = ch.person(subject)
        if person is not None and person.status_cause != DELETED:
            raise ScimError(409, f"user {subject!r} already exists", "uniqueness")
        if person is None:
            person = Person(subject=subject, source="scim", status="active")
            ch.session.add(person)
            ch.log("status", subject, detail="created by SCIM")
        else:  # re-created after a DELETE: old tokens stay refused (revoked_before is kept)
            ch.set_status(person, "active", "re-created by SCIM")
        _replace_attributes(person, body)
        ch.touch(person)
        ch.set_roles(person, department_roles(directory, person.department), "scim")
        _set_active(ch, person, _active(body.get("active", True)), directory)
        return person

    person = await _write(request, change)
    return _json(_user(person, _base(request)), 201)


@router.put("/Users/{user_id}")
async def replace_user(user_id: str, request: Request) -> Response:
    body = await _body(request)
    directory = request.app.state.services.settings.directory

    def change(ch: Changes) -> Person:
        person = _visible(ch.person(user_id), user_id)
        _replace_attributes(person, body)
        ch.touch(person)
        _set_active(ch, person, _active(body.get("active", True)), directory)
        return person

    return _json(_user(await _write(request, change), _base(request)))


@router.patch("/Users/{user_id}")
async def patch_user(user_id: str, request: Request) -> Response:
    """PatchOp: ``replace``/``add`` of ``active`` or ``displayName``, with or without ``path``."""
    body = await _body(request)
    operations = body.get("Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "Operations must be a non-empty list", "invalidSyntax")
    updates: dict[str, Any] = {}
    for op in operations:
        if not isinstance(op, dict) or str(op.get("op", "")).lower() not in ("replace", "add"):
            raise ScimError(400, "only replace and add operations are supported", "invalidSyntax")
        path, value = op.get("path"), op.get("value")
        pairs = value.items() if path is None and isinstance(value, dict) else [(path, value)]
        for name, item in pairs:
            if name not in ("active", "displayName"):
                raise ScimError(
                    400, f"cannot change {name!r}; only active and displayName", "invalidPath"
                )
            updates[name] = item
    directory = request.app.state.services.settings.directory

    def change(ch: Changes) -> Person:
        person = _visible(ch.person(user_id), user_id)
        if "displayName" in updates:
            person.display_name = updates["displayName"]
            ch.touch(person)
        if "active" in updates:
            _set_active(ch, person, _active(updates["active"]), directory)
        return person

    return _json(_user(await _write(request, change), _base(request)))


@router.delete("/Users/{user_id}")
async def delete_user(user_id: str, request: Request) -> Response:
    def change(ch: Changes) -> None:
        person = _visible(ch.person(user_id), user_id)
        if person.status in REVOKED_STATUSES and not (person.status_cause or "").startswith("scim"):
            return  # revoked by HR or an officer: keep that cause, so SCIM cannot undo it
        ch.revoke(person, "left", "deleted by SCIM")
        person.status_cause = DELETED

    await _write(request, change, cause=DELETED)
    return Response(status_code=204)


async def _write(request: Request, change: Callable[[Changes], Any], cause: str = "scim") -> Any:
    try:
        return await request.app.state.services.people.apply(cause, change)
    except IntegrityError:
        raise ScimError(
            409, "employeeNumber is already used by another user", "uniqueness"
        ) from None
    except DataError:  # PostgreSQL enforces the column lengths
        raise ScimError(
            400, "a value is too long (userName: 255 characters)", "invalidValue"
        ) from None


def _active(value: Any) -> bool:
    """``true``/``false``, also as the strings some identity providers send."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ScimError(400, f"active must be true or false, got {value!r}", "invalidValue")


def _set_active(ch: Changes, person: Person, active: bool, directory: DirectorySettings) -> None:
    if not active:
        if person.status not in REVOKED_STATUSES:
            ch.revoke(person, "left", "deprovisioned by SCIM")
        return
    if person.status not in REVOKED_STATUSES:
        return
    if not (person.status_cause or "").startswith("scim"):
        raise ScimError(
            409,
            f"user {person.subject!r} was revoked by {person.status_cause}, not by SCIM; "
            "ask a security officer to reinstate them",
        )
    # the deprovisioning dropped every grant: give back what the department brings, now
    ch.reactivate(
        person,
        department_roles(directory, person.department),
        f"re-activated by SCIM; roles of department {person.department or '(none)'}",
    )


def _replace_attributes(person: Person, body: dict[str, Any]) -> None:
    name = _object(body.get("name"))
    person.display_name = body.get("displayName") or name.get("formatted")
    emails = [e for e in body.get("emails") or [] if isinstance(e, dict)]
    primary = [e for e in emails if e.get("primary")] or emails
    person.email = primary[0].get("value") if primary else None
    enterprise = _object(body.get(ENTERPRISE_SCHEMA))
    person.employee_id = enterprise.get("employeeNumber")
    person.department = enterprise.get("department")


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}

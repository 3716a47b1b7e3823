"""``GET /api/audit/events``: the officers' view of the audit trail (JSON or CSV).

Officers only (``require_officer``). Every query is itself audited, with the rows it
returned: if that record cannot be written, the answer is not given (fail closed).
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from audit.query import Page, fetch_page, parse_filter, to_csv, wants_csv
from gateway.admin.auth import officer_event, require_officer
from gateway.principal import Principal

router = APIRouter(prefix="/api/audit", tags=["audit"])
Officer = Annotated[Principal, Depends(require_officer)]


@router.get(
    "/events",
    summary="Search audit events, newest first",
    description=(
        "Filters: subject, since (inclusive), until (exclusive) as ISO 8601, upstream, "
        "entity, decision (allow|deny), min_records, limit (1..1000, default 100), cursor "
        "(next_cursor of the previous page). format=csv or Accept: text/csv for CSV."
    ),
)
async def list_events(request: Request, officer: Officer) -> Response:
    query = parse_filter(request.query_params.multi_items())
    as_csv = wants_csv(request.query_params, request.headers.get("accept", ""))
    services = request.app.state.services
    page: Page = await run_in_threadpool(fetch_page, services.engine, query)
    if as_csv:
        body = to_csv(page.events).encode()
        headers = {"content-disposition": 'attachment; filename="audit-events.csv"'}
        if page.next_cursor:
            headers["x-next-cursor"] = page.next_cursor
        response = Response(body, media_type="text/csv; charset=utf-8", headers=headers)
    else:
        body = orjson.dumps({"events": page.events, "next_cursor": page.next_cursor})
        response = Response(body, media_type="application/json")
    event = officer_event(
        request,
        officer,
        reason_id="officer_query",
        entity="audit_event",
        records=len(page.events),
        response_bytes=len(body),
    )
    await services.audit.record(event)
    return response

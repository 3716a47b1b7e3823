"""GET /api/audit/events over a real HTTP server: filters, cursors, CSV, who may ask."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import Engine, select

from audit.models import events_table
from audit.settings import AuditSettings
from audit.writer import AuditWriter
from gateway.admin.audit_api import router
from gateway.admin.auth import require_officer
from gateway.errors import Forbidden, RequestRefused, Unauthenticated
from gateway.principal import Principal
from gateway.settings import AdminSettings
from tests.audit.conftest import make_event, serve_asgi

OFFICER = Principal(subject="olga.officer@corp.example", auth_method="jwt")
CLERK = Principal(subject="carl.clerk@corp.example", auth_method="jwt")


class Directory:
    """Identity + policy stand-ins for require_officer: token "officer" or "clerk"."""

    async def identify(self, authorization: str | None, api_key: str | None) -> Principal:
        if authorization == "Bearer officer":
            return OFFICER
        if authorization == "Bearer clerk":
            return CLERK
        raise Unauthenticated("send a bearer token", reason_id="token_missing")

    def roles_for(self, principal: Principal, upstream: str) -> frozenset[str]:
        return frozenset({"officer"}) if principal is OFFICER else frozenset({"finance"})


def build_app(engine: Engine, writer: AuditWriter) -> FastAPI:
    app = FastAPI()
    directory = Directory()
    app.state.services = SimpleNamespace(
        settings=SimpleNamespace(admin=AdminSettings()),
        engine=engine,
        audit=writer,
        identity=directory,
        policy=directory,
    )

    @app.exception_handler(RequestRefused)
    async def _problem(request: Request, err: RequestRefused) -> Response:
        return Response(err.to_bytes(), err.status, media_type="application/problem+json")

    app.include_router(router)
    return app


@pytest.fixture
async def api(engine: Engine, settings: AuditSettings) -> AsyncIterator[SimpleNamespace]:
    writer = AuditWriter(settings.model_copy(update={"durability": "strict"}), engine)
    await writer.start()
    # one group commit; queue order (= seq order) is the order of the list
    await asyncio.gather(
        *(
            writer.record(make_event(i, decision="deny" if i % 10 == 0 else "allow"))
            for i in range(60)
        )
    )
    app = build_app(engine, writer)
    async with (
        serve_asgi(app) as url,
        httpx.AsyncClient(base_url=url, headers={"authorization": "Bearer officer"}) as client,
    ):
        yield SimpleNamespace(client=client, app=app, writer=writer, engine=engine)
    await writer.close()


def officer_queries(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            select(events_table).where(events_table.c.upstream == "admin").order_by("seq")
        ).all()


async def get_events(api: SimpleNamespace, **params: Any) -> dict[str, Any]:
    response = await api.client.get("/api/audit/events", params=params)
    assert response.status_code == 200, response.text
    return response.json()


FILTER_CASES: list[tuple[dict[str, str], list[int]]] = [
    ({"subject": "user3@corp.example"}, [n for n in range(60) if n % 7 == 3]),
    ({"decision": "deny"}, [0, 10, 20, 30, 40, 50]),
    ({"min_records": "45"}, [45, 46, 47, 48, 49]),
    ({"since": "2026-01-01T00:00:55Z"}, [55, 56, 57, 58, 59]),
    ({"until": "2026-01-01T02:00:03+02:00"}, [0, 1, 2]),  # a zone other than UTC
    ({"upstream": "crm", "entity": "customer", "limit": "3"}, [59, 58, 57]),
    ({"upstream": "erp"}, []),
]


async def test_filters_select_exactly_the_matching_events_newest_first(
    api: SimpleNamespace,
) -> None:
    for params, expected in FILTER_CASES:  # one store for all cases: setup dominates
        body = await get_events(api, **params)
        # the officer's own earlier queries are events too (upstream "admin"): leave them out
        got = [
            int(e["request_id"].removeprefix("req-"))
            for e in body["events"]
            if e["upstream"] != "admin"
        ]
        assert got == sorted(expected, reverse=True), params


async def test_events_carry_every_field(api: SimpleNamespace) -> None:
    (event,) = (await get_events(api, since="2026-01-01T00:00:07Z", limit="1"))["events"][-1:]
    assert event["time"] == "2026-01-01T00:00:59.000000Z"
    assert event["roles"] == ["sales"] and event["pii_hits"] == {"email": 1}
    assert event["fields_masked"] == ["cost_price"] and len(event["hash"]) == 64


async def test_cursor_pages_are_stable_while_new_events_arrive(api: SimpleNamespace) -> None:
    seen: list[str] = []
    cursor = None
    newer = 0
    while True:
        params = {"limit": "7"} | ({"cursor": cursor} if cursor else {})
        body = await get_events(api, **params, until="2026-06-01T00:00:00Z")
        seen += [e["request_id"] for e in body["events"]]
        for _ in range(5):  # concurrent traffic lands between pages
            await api.writer.record(make_event(1000 + newer))
            newer += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"req-{n}" for n in range(59, -1, -1)]  # no gap, no duplicate


async def test_csv_by_format_or_accept_header_defuses_formulas(api: SimpleNamespace) -> None:
    await api.writer.record(make_event(5000, subject='=HYPERLINK("http://evil")'))
    by_format = await api.client.get(
        "/api/audit/events", params={"format": "csv", "limit": "2", "upstream": "crm"}
    )
    by_accept = await api.client.get(
        "/api/audit/events",
        params={"limit": "2", "upstream": "crm"},
        headers={"accept": "text/csv"},
    )
    for response in (by_format, by_accept):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert len(rows) == 2 and response.headers["x-next-cursor"]
        assert rows[0]["subject"] == '\'=HYPERLINK("http://evil")'
        assert rows[1]["roles"] == '["sales"]'


BAD_FILTERS: list[tuple[dict[str, str], str]] = [
    ({"since": "last tuesday"}, "since"),
    ({"until": "2026-13-01"}, "until"),
    ({"limit": "1001"}, "limit"),
    ({"limit": "0"}, "limit"),
    ({"limit": "-5"}, "limit"),
    ({"min_records": "many"}, "min_records"),
    ({"decision": "maybe"}, "decision"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": "WzEsMiwzXQ"}, "cursor"),  # valid base64 of [1,2,3]
    ({"subjet": "alice"}, "subjet"),  # a typo must not return everything
    ({"subject": ""}, "subject"),
    ({"format": "xml"}, "format"),
]


async def test_bad_filters_are_refused_with_a_problem_naming_the_parameter(
    api: SimpleNamespace,
) -> None:
    for params, parameter in BAD_FILTERS:
        response = await api.client.get("/api/audit/events", params=params)
        assert response.status_code == 400, params
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["reason_id"] == "bad_audit_query" and problem["parameter"] == parameter
        assert parameter in problem["detail"]
    assert officer_queries(api.engine) == []  # refused queries return and record nothing


async def test_a_repeated_filter_is_refused(api: SimpleNamespace) -> None:
    response = await api.client.get("/api/audit/events?subject=a&subject=b")
    assert response.status_code == 400 and response.json()["parameter"] == "subject"


async def test_non_officers_are_refused_by_the_real_dependency(api: SimpleNamespace) -> None:
    clerk = await api.client.get("/api/audit/events", headers={"authorization": "Bearer clerk"})
    anonymous = await api.client.get("/api/audit/events", headers={"authorization": ""})
    assert clerk.status_code == 403 and clerk.json()["reason_id"] == "officer_role_required"
    assert anonymous.status_code == 401
    assert officer_queries(api.engine) == []


async def test_non_officers_are_refused_when_the_dependency_is_overridden(
    api: SimpleNamespace,
) -> None:
    async def refuse() -> Principal:
        raise Forbidden("officers only", reason_id="officer_role_required")

    api.app.dependency_overrides[require_officer] = refuse
    response = await api.client.get("/api/audit/events")
    assert response.status_code == 403
    api.app.dependency_overrides[require_officer] = lambda: OFFICER
    assert (await api.client.get("/api/audit/events")).status_code == 200


async def test_the_officers_query_is_itself_recorded(api: SimpleNamespace) -> None:
    body = await get_events(api, decision="deny", limit="4")
    (record,) = officer_queries(api.engine)
    assert record.subject == OFFICER.subject and record.method == "GET"
    assert record.path == "/api/audit/events?decision=deny&limit=4"
    assert record.records == len(body["events"]) == 4 and record.roles == ["officer"]
    assert record.decision == "allow" and record.entity == "audit_event"

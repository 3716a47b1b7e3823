"""The officer API on a real loopback server: alert workflow, people, exports, refusals."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from audit.event import AuditEvent
from audit.models import EventRow
from gateway.admin.alerts_api import router as alerts_router
from gateway.admin.auth import require_officer
from gateway.admin.people_api import router as people_router
from gateway.directory.store import Person, init_directory_db
from gateway.errors import RequestRefused
from gateway.principal import Principal
from gateway.settings import AdminSettings
from tests.detection.conftest import WEDNESDAY_10H as T
from tests.detection.conftest import FakePeople, GuardFactory, obs


class AuditLog:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def record(self, event: AuditEvent) -> None:
        self.events.append(event)


class NotOfficerPolicy:
    def roles_for(self, principal: Principal, upstream: str) -> set[str]:
        return {"sales"}


class SalesIdentity:
    async def identify(self, authorization: str | None, api_key: str | None) -> Principal:
        return Principal("sales07", "jwt")


def build_app(services: Any, *, as_officer: bool) -> FastAPI:
    app = FastAPI()
    app.state.services = services
    app.include_router(alerts_router)
    app.include_router(people_router)

    @app.exception_handler(RequestRefused)
    async def _problem(request: Request, err: RequestRefused) -> Response:
        return Response(
            err.to_bytes(), err.status, err.headers, media_type="application/problem+json"
        )

    if as_officer:
        app.dependency_overrides[require_officer] = lambda: Principal("officer1", "jwt")
    return app


async def serve(app: FastAPI) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
async def api(
    make_guard: GuardFactory, people: FakePeople, engine: Engine
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    guard = make_guard()  # alerts, people and audit events share one database
    init_directory_db(engine)
    EventRow.metadata.create_all(engine, tables=[EventRow.__table__])
    with Session(engine) as s, s.begin():
        for subject in ("sales07", "sales08"):
            s.add(Person(subject=subject, display_name=subject.title(), source="file"))
    services = SimpleNamespace(
        detection=guard,
        people=people,
        engine=engine,
        audit=AuditLog(),
        settings=SimpleNamespace(admin=AdminSettings()),
        identity=SalesIdentity(),
        policy=NotOfficerPolicy(),
    )
    officer_srv, officer_task, officer_url = await serve(build_app(services, as_officer=True))
    sales_srv, sales_task, sales_url = await serve(build_app(services, as_officer=False))
    async with httpx.AsyncClient(base_url=officer_url) as client:
        services.sales_url = sales_url
        yield client, services
    for srv, task in ((officer_srv, officer_task), (sales_srv, sales_task)):
        srv.should_exit = True
        await task


async def test_alert_workflow_through_the_api_is_audited(api) -> None:
    client, services = api
    verdict = await services.detection.observe(obs(T, 2500))
    await services.detection.drain()
    alert_id = verdict.alert_ids[0]
    assert (await services.detection.precheck("sales07", "crm", "customer")).refused

    listed = (await client.get("/api/alerts", params={"state": "open"})).json()["alerts"]
    assert [a["id"] for a in listed] == [alert_id]
    assert (await client.get("/api/alerts", params={"subject": "sales08"})).json()["alerts"] == []
    detail = (await client.get(f"/api/alerts/{alert_id}")).json()
    assert detail["evidence"]["limit"] == 2000 and detail["transitions"][0]["to"] == "open"

    ack = await client.post(f"/api/alerts/{alert_id}/acknowledge", json={"note": "on it"})
    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
    again = await client.post(f"/api/alerts/{alert_id}/acknowledge", json={})
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["reason_id"] == "alert_transition_invalid"

    done = await client.post(
        f"/api/alerts/{alert_id}/resolve", json={"verdict": "true_positive", "note": "confirmed"}
    )
    assert done.status_code == 200 and done.json()["verdict"] == "true_positive"
    assert [t["who"] for t in done.json()["transitions"]] == [
        "detector:volume",
        "officer1",
        "officer1",
    ]
    # resolving released the throttle
    assert not (await services.detection.precheck("sales07", "crm", "customer")).refused
    reasons = [(e.reason_id, e.subject, e.upstream) for e in services.audit.events]
    assert reasons == [
        ("alert_acknowledged", "officer1", "admin"),
        ("alert_resolved_true_positive", "officer1", "admin"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"verdict": "looks fine"},
        {"note": "no verdict"},
        {"verdict": 1},
        {"verdict": "benign", "extra": True},
        "not an object",
    ],
)
async def test_bad_resolve_bodies_are_400_and_change_nothing(api, body: Any) -> None:
    client, services = api
    verdict = await services.detection.observe(obs(T, 2500))
    await services.detection.drain()
    alert_id = verdict.alert_ids[0]
    response = await client.post(f"/api/alerts/{alert_id}/resolve", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["type"].startswith("https://wardgate.dev/problems/")
    assert (await client.get(f"/api/alerts/{alert_id}")).json()["state"] == "open"
    assert services.audit.events == []


async def test_unknown_alert_is_404(api) -> None:
    client, _ = api
    assert (await client.get("/api/alerts/nope")).status_code == 404
    assert (
        await client.post("/api/alerts/nope/resolve", json={"verdict": "benign"})
    ).status_code == 404


async def test_false_positive_through_the_api_raises_the_threshold(api) -> None:
    client, services = api
    verdict = await services.detection.observe(obs(T, 2100))
    await services.detection.drain()
    response = await client.post(
        f"/api/alerts/{verdict.alert_ids[0]}/resolve", json={"verdict": "false_positive"}
    )
    assert response.status_code == 200
    assert services.detection.threshold_factor("volume", "sales07") == 1.5
    assert (await services.detection.observe(obs(T + 86400 * 7, 2100))).action == "none"


async def test_non_officer_is_refused_on_every_route(api) -> None:
    _, services = api
    async with httpx.AsyncClient(base_url=services.sales_url) as sales:
        for method, path in [
            ("GET", "/api/alerts"),
            ("GET", "/api/alerts/x"),
            ("POST", "/api/alerts/x/acknowledge"),
            ("POST", "/api/alerts/x/resolve"),
            ("GET", "/api/people"),
            ("GET", "/api/people/sales07"),
            ("GET", "/api/people/sales07/exports"),
            ("POST", "/api/people/sales07/suspend"),
            ("POST", "/api/people/sales07/reinstate"),
            ("POST", "/api/people/sales07/departing"),
        ]:
            response = await sales.request(method, path, json={"verdict": "benign"})
            assert response.status_code == 403, (method, path)
            assert response.json()["reason_id"] == "officer_role_required"
    assert services.people.calls == [] and services.audit.events == []


async def test_people_views_and_exports_per_hour(api) -> None:
    client, services = api
    now = datetime.now(UTC).replace(minute=10, second=0, microsecond=0)
    rows = [
        (now - timedelta(hours=2), "customer", 100),
        (now - timedelta(hours=2, minutes=-5), "customer", 50),
        (now - timedelta(hours=2), "invoice", 7),
        (now - timedelta(days=40), "customer", 999),  # outside 30 days
    ]
    with Session(services.engine) as s, s.begin():
        for seq, (time, entity, records) in enumerate(rows):
            s.add(
                EventRow(
                    chain_id="c",
                    seq=seq,
                    id=f"e{seq}",
                    prev_hash="0" * 64,
                    hash="0" * 64,
                    request_id=f"r{seq}",
                    time=time,
                    subject="sales07",
                    roles=["sales"],
                    auth_method="jwt",
                    client_addr=None,
                    user_agent=None,
                    upstream="crm",
                    entity=entity,
                    method="GET",
                    path="/api/customers",
                    decision="allow",
                    reason_id="allowed",
                    matched_rule=None,
                    status=200,
                    records=records,
                    fields_masked=[],
                    pii_hits={},
                    request_bytes=0,
                    response_bytes=0,
                    latency_ms=1.0,
                )
            )
    people = (await client.get("/api/people")).json()["people"]
    assert [p["subject"] for p in people] == ["sales07", "sales08"]
    hours = (await client.get("/api/people/sales07/exports", params={"days": 30})).json()["hours"]
    hour = (now - timedelta(hours=2)).replace(minute=0).isoformat()
    assert sorted((h["hour"], h["entity"], h["records"]) for h in hours) == [
        (hour, "customer", 150),
        (hour, "invoice", 7),
    ]
    for bad in ("0", "91", "x"):
        response = await client.get("/api/people/sales07/exports", params={"days": bad})
        assert response.status_code == 400
    assert (await client.get("/api/people/ghost")).status_code == 404

    await services.detection.observe(obs(T, 2500))
    await services.detection.drain()
    person = (await client.get("/api/people/sales07")).json()
    assert person["display_name"] == "Sales07" and len(person["alerts"]) == 1


async def test_suspend_reinstate_departing_are_applied_and_audited(api) -> None:
    client, services = api
    assert (
        await client.post("/api/people/sales07/suspend", json={"reason": "x"})
    ).status_code == 200
    assert (await client.post("/api/people/sales07/reinstate")).status_code == 200
    departing = await client.post("/api/people/sales08/departing", json={"last_day": "2026-12-31"})
    assert departing.status_code == 200 and departing.json()["last_day"] == "2026-12-31"
    assert services.people.calls == [
        ("suspend", "sales07", "officer1"),
        ("reinstate", "sales07", "officer1"),
        ("departing", "sales08", "officer1"),
    ]
    assert [e.reason_id for e in services.audit.events] == [
        "person_suspended_by_officer",
        "person_reinstated",
        "person_marked_departing",
    ]
    # bad input and unknown people change nothing
    bad_day = await client.post("/api/people/sales08/departing", json={"last_day": "soon"})
    assert bad_day.status_code == 400
    assert (await client.post("/api/people/ghost/suspend")).status_code == 404
    assert len(services.people.calls) == 3 and len(services.audit.events) == 3


async def test_a_benign_verdict_through_the_api_ends_the_episode(api) -> None:
    client, services = api
    guard = services.detection
    blocked = await guard.observe(obs(T, 7000))
    await guard.drain()
    (alert_id,) = (await guard.precheck("sales07", "crm", "customer")).alert_ids
    assert blocked.action == "block"
    response = await client.post(f"/api/alerts/{alert_id}/resolve", json={"verdict": "benign"})
    assert response.status_code == 200
    assert not (await guard.precheck("sales07", "crm", "customer")).refused
    assert (await guard.observe(obs(T + 60, 10))).action == "none"  # not blocked at once again
    assert (await guard.observe(obs(T + 120, 2000))).action == "throttle"  # 2,010 since


async def test_the_person_cannot_clear_their_own_block(api) -> None:
    _, services = api
    guard = services.detection
    await guard.observe(obs(T, 7000))
    await guard.drain()
    (alert_id,) = (await guard.precheck("sales07", "crm", "customer")).alert_ids
    async with httpx.AsyncClient(base_url=services.sales_url) as sales:  # sales07's own token
        for verdict in ("benign", "false_positive"):
            response = await sales.post(
                f"/api/alerts/{alert_id}/resolve", json={"verdict": verdict}
            )
            assert response.status_code == 403
    assert (await guard.precheck("sales07", "crm", "customer")).alert_ids == (alert_id,)
    assert guard.alerts.get(alert_id)["state"] == "open"
    assert (
        guard.alerts.feedback(T).clears == [] and guard.threshold_factor("volume", "sales07") == 1
    )

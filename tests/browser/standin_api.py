"""In-memory stand-ins for the officer API the console calls, with the real JSON shapes.

Shapes follow gateway/admin/alerts_api.py, people_api.py and audit_api.py (+ audit/alerts.py,
audit/query.py): ``{"alerts": [...]}``, ``{"people": [...]}``, ``{"hours": [...]}``,
``{"events": [...], "next_cursor": ...}``, refusals as problem+json. Every request is
recorded in ``calls`` so tests can assert exactly what the page sent.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request, Response

from gateway.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RequestRefused,
    Unauthenticated,
)

OFFICER_TOKEN = "officer-token-7f3a"
CLERK_TOKEN = "clerk-token-19bc"
XSS_SUBJECT = '<img src=x onerror="window.__pwned=1">'
XSS_EXPLANATION = "<script>window.__pwned=2</script><b onmouseover=window.__pwned=3>bold</b>"


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None


@dataclass
class StandIn:
    """What the API holds; tests read ``calls`` and may change the data before a page loads."""

    alerts: dict[str, dict[str, Any]]
    people: dict[str, dict[str, Any]]
    exports: dict[str, list[dict[str, Any]]]
    events: list[dict[str, Any]]
    officer_tokens: set[str] = field(default_factory=lambda: {OFFICER_TOKEN})
    clerk_tokens: set[str] = field(default_factory=lambda: {CLERK_TOKEN})
    calls: list[Call] = field(default_factory=list)

    def reset(self) -> None:
        """Back to ``sample_data()``, in place: running servers hold this object."""
        self.__dict__.update(sample_data().__dict__)

    def writes(self) -> list[tuple[str, str, Any]]:
        """The state-changing calls, in order: (method, path, JSON body)."""
        return [(c.method, c.path, c.body) for c in self.calls if c.method != "GET"]


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _alert(
    alert_id: str,
    detector: str,
    subject: str,
    entity: str,
    severity: str,
    count: int,
    explanation: str,
    opened: datetime,
    state: str = "open",
) -> dict[str, Any]:
    return {
        "id": alert_id,
        "detector": detector,
        "subject": subject,
        "entity": entity,
        "scope": "crm",
        "severity": severity,
        "state": state,
        "verdict": None,
        "action": "alert",
        "window_start": _iso(opened - timedelta(hours=1)),
        "window_end": _iso(opened),
        "count": count,
        "hits": 3,
        "explanation": explanation,
        "created_at": _iso(opened),
        "updated_at": _iso(opened),
        "evidence": {
            "threshold": 2000,
            "baseline_per_hour": 310,
            "top_paths": ["/crm/api/customers?page=1", "/crm/api/customers?page=2"],
        },
        "transitions": [
            {
                "who": f"detector:{detector}",
                "from": None,
                "to": "open",
                "verdict": None,
                "note": "",
                "at": _iso(opened),
            }
        ],
    }


def _person(subject: str, name: str, status: str = "active", **extra: Any) -> dict[str, Any]:
    person = {
        "subject": subject,
        "display_name": name,
        "status": status,
        "roles": [{"role": "sales", "domain": "*"}, {"role": "crm_reader", "domain": "crm"}],
        "source": "ldap",
        "department": "Sales East",
        "departing": False,
        "last_day": None,
        "revoked_before": None,
        "last_seen_in_directory": _iso(datetime.now(UTC)),
        "stale": False,
    }
    person.update(extra)
    return person


def sample_data(now: datetime | None = None) -> StandIn:
    """Three alerts (two open), four people, li.wei's exports and 120 audit events."""
    now = now or datetime.now(UTC).replace(microsecond=0)
    alerts = [
        _alert(
            "a-1001",
            "volume",
            "li.wei",
            "customers",
            "high",
            12400,
            "li.wei exported 12,400 customers records in 1 h; the sales threshold is 2,000.",
            now - timedelta(hours=3),
        ),
        _alert(
            "a-1002",
            "crawl",
            "zhang.min",
            "orders",
            "medium",
            4800,
            "zhang.min paged through orders 1 to 96 in 4 minutes.",
            now - timedelta(minutes=20),
        ),
        _alert(
            "a-0990",
            "off_hours",
            "chen.jie",
            "products",
            "low",
            300,
            "chen.jie read 300 products records at 03:12.",
            now - timedelta(days=3),
            state="resolved",
        ),
    ]
    people = [
        _person("li.wei", "Li Wei", departing=True, last_day="2026-12-18"),
        _person("zhang.min", "Zhang Min"),
        _person("chen.jie", "Chen Jie", status="suspended"),
        _person("wang.fang", "Wang Fang", status="left"),
    ]
    hour = now.replace(minute=0, second=0)
    exports = {
        "li.wei": [
            {
                "hour": _iso(hour - timedelta(hours=3)),
                "entity": "customers",
                "records": 12400,
                "requests": 62,
            },
            {
                "hour": _iso(hour - timedelta(hours=3)),
                "entity": "orders",
                "records": 900,
                "requests": 9,
            },
            {
                "hour": _iso(hour - timedelta(days=2)),
                "entity": "customers",
                "records": 250,
                "requests": 5,
            },
            {
                "hour": _iso(hour - timedelta(days=40)),
                "entity": "customers",
                "records": 99999,
                "requests": 1,
            },
        ],
    }
    events = [
        {
            "id": 1000 + i,
            "time": _iso(now - timedelta(minutes=i)),
            "request_id": f"r{i}",
            "subject": "li.wei" if i % 2 else "zhang.min",
            "roles": ["sales"],
            "auth_method": "jwt",
            "client_addr": "10.0.0.8",
            "user_agent": "bi-extract/2.1",
            "upstream": "crm",
            "entity": "customers",
            "method": "GET",
            "path": f"/crm/api/customers?page={i}",
            "decision": "deny" if i % 7 == 0 else "allow",
            "reason_id": "allowed",
            "matched_rule": "sales_read",
            "status": 200,
            "records": 50,
            "fields_masked": 2,
            "pii_hits": 0,
            "request_bytes": 0,
            "response_bytes": 9000,
            "latency_ms": 12.5,
            "chain_id": "c1",
            "seq": 5000 - i,
            "hash": f"{i:064x}",
        }
        for i in range(120)
    ]
    return StandIn(
        alerts={a["id"]: a for a in alerts},
        people={p["subject"]: p for p in people},
        exports=exports,
        events=events,
    )


def _summary(alert: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in alert.items() if k not in ("evidence", "transitions")}


async def officer(request: Request) -> str:
    """Record the call, then let officers' tokens through (401/403 problems otherwise)."""
    data: StandIn = request.app.state.standin
    body = await request.body()
    data.calls.append(
        Call(
            request.method,
            request.url.path,
            dict(request.query_params),
            orjson.loads(body) if body else None,
            request.headers.get("authorization"),
        )
    )
    header = request.headers.get("authorization") or ""
    token = header.removeprefix("Bearer ")
    if not header.startswith("Bearer ") or not token:
        raise Unauthenticated(
            "send an officer's token as Authorization: Bearer", reason_id="token_missing"
        )
    if token in data.clerk_tokens:
        raise Forbidden(
            "this admin route needs the officer role; ask a security administrator for it",
            reason_id="officer_role_required",
        )
    if token not in data.officer_tokens:
        raise Unauthenticated("the token is not valid", reason_id="token_invalid")
    return "olga.officer"


Officer = Annotated[str, Depends(officer)]


def install_standin(app: FastAPI, data: StandIn) -> None:
    """Serve the stand-in officer API over ``data`` from ``app``, with problem+json errors."""
    app.state.standin = data
    add_problem_handler(app)
    app.include_router(_make_router(data))


def _make_router(data: StandIn) -> APIRouter:
    router = APIRouter()

    def find_alert(alert_id: str) -> dict[str, Any]:
        if alert_id not in data.alerts:
            raise NotFound(f"no alert with id {alert_id!r}", reason_id="alert_not_found")
        return data.alerts[alert_id]

    def find_person(subject: str) -> dict[str, Any]:
        if subject not in data.people:
            raise NotFound(f"no person {subject!r} in the directory", reason_id="person_not_found")
        return data.people[subject]

    def move(
        alert: dict[str, Any], who: str, to: str, allowed: tuple[str, ...], **extra: Any
    ) -> None:
        if alert["state"] not in allowed:
            raise Conflict(
                f"alert {alert['id']} is {alert['state']}; it can become {to} only from "
                f"{' or '.join(allowed)}",
                reason_id="alert_transition_invalid",
            )
        now = datetime.now(UTC).isoformat()
        alert["transitions"].append(
            {
                "who": who,
                "from": alert["state"],
                "to": to,
                "at": now,
                "verdict": extra.get("verdict"),
                "note": extra.get("note", ""),
            }
        )
        alert.update(state=to, updated_at=now, verdict=extra.get("verdict", alert["verdict"]))

    @router.get("/api/alerts")
    async def list_alerts(
        who: Officer, state: str | None = None, subject: str | None = None
    ) -> dict[str, Any]:
        if state is not None and state not in ("open", "acknowledged", "resolved"):
            raise BadRequest(f"unknown state {state!r}", reason_id="bad_filter")
        found = [
            _summary(a)
            for a in data.alerts.values()
            if state in (None, a["state"]) and subject in (None, a["subject"])
        ]
        return {"alerts": sorted(found, key=lambda a: a["created_at"], reverse=True)}

    @router.get("/api/alerts/{alert_id}")
    async def get_alert(alert_id: str, who: Officer) -> dict[str, Any]:
        return copy.deepcopy(find_alert(alert_id))

    @router.post("/api/alerts/{alert_id}/acknowledge")
    async def acknowledge(alert_id: str, who: Officer) -> dict[str, Any]:
        alert = find_alert(alert_id)
        move(alert, who, "acknowledged", ("open",))
        return copy.deepcopy(alert)

    @router.post("/api/alerts/{alert_id}/resolve")
    async def resolve(alert_id: str, request: Request, who: Officer) -> dict[str, Any]:
        body = orjson.loads(await request.body())
        if body.get("verdict") not in ("true_positive", "benign", "false_positive"):
            raise BadRequest("verdict is required", reason_id="bad_verdict")
        alert = find_alert(alert_id)
        move(
            alert,
            who,
            "resolved",
            ("open", "acknowledged"),
            verdict=body["verdict"],
            note=body.get("note", ""),
        )
        return copy.deepcopy(alert)

    @router.get("/api/people")
    async def people(who: Officer) -> dict[str, Any]:
        return {"people": list(data.people.values())}

    @router.get("/api/people/{subject}")
    async def person(subject: str, who: Officer) -> dict[str, Any]:
        alerts = [
            _summary(a)
            for a in data.alerts.values()
            if a["subject"] == subject and a["state"] != "resolved"
        ]
        return {**find_person(subject), "alerts": alerts}

    @router.get("/api/people/{subject}/exports")
    async def exports(subject: str, who: Officer, days: str = "30") -> dict[str, Any]:
        since = datetime.now(UTC) - timedelta(days=int(days))
        hours = [
            h for h in data.exports.get(subject, []) if datetime.fromisoformat(h["hour"]) >= since
        ]
        return {"subject": subject, "since": since.isoformat(), "hours": hours}

    @router.post("/api/people/{subject}/suspend")
    async def suspend(subject: str, who: Officer) -> dict[str, Any]:
        find_person(subject)["status"] = "suspended"
        return {"subject": subject, "status": "suspended"}

    @router.post("/api/people/{subject}/reinstate")
    async def reinstate(subject: str, who: Officer) -> dict[str, Any]:
        find_person(subject)["status"] = "active"
        return {"subject": subject, "status": "active"}

    @router.get("/api/audit/events")
    async def events(request: Request, who: Officer) -> dict[str, Any]:
        params = dict(request.query_params)
        limit = int(params.pop("limit", "100"))
        start = int(params.pop("cursor", "0"))
        found = [e for e in data.events if all(str(e.get(k)) == v for k, v in params.items())]
        page = found[start : start + limit]
        more = start + limit < len(found)
        return {"events": page, "next_cursor": str(start + limit) if more else None}

    return router


def add_problem_handler(app: FastAPI) -> None:
    """Refusals as problem+json, as the real admin app renders them (gateway/app.py)."""

    @app.exception_handler(RequestRefused)
    async def _problem(request: Request, err: RequestRefused) -> Response:
        return Response(
            err.to_bytes(),
            status_code=err.status,
            media_type="application/problem+json",
            headers=err.headers,
        )

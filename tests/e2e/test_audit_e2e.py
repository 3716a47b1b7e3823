"""The audit trail end to end: requests through the gateway, read back by an officer.

Requests carry a unique User-Agent so each test finds its own events among everyone's.
Tampering is done on a gateway of its own (SQLite); one gateway runs on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from gateway.demo import data
from tests.e2e.conftest import Gateway, Upstreams, launch_gateway
from tests.e2e.helpers import roles_from_token, soap, soap_headers

PG_ADMIN_URL = "postgresql://root@127.0.0.1:5432/test"
Event = dict[str, Any]


def marker() -> str:
    return f"e2e-audit-{uuid.uuid4().hex[:12]}"


def events(gateway: Gateway, officer: dict[str, str], **params: Any) -> httpx.Response:
    return httpx.get(
        f"{gateway.admin_url}/api/audit/events", params=params, headers=officer, timeout=10
    )


def wait_for_events(
    gateway: Gateway,
    officer: dict[str, str],
    mine: Callable[[Event], bool],
    count: int,
    **params: Any,
) -> list[Event]:
    """The events ``mine`` selects, once ``count`` of them are written (the writer batches)."""
    deadline = time.monotonic() + 10
    while True:
        r = events(gateway, officer, limit=1000, **params)
        assert r.status_code == 200, r.text
        found = [e for e in r.json()["events"] if mine(e)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def by_path(found: list[Event]) -> dict[tuple[str, str], Event]:
    return {(e["method"], e["path"]): e for e in found}


def test_allowed_and_denied_requests_by_several_people_are_recorded(
    gateway: Gateway, client: httpx.Client
):
    ua = marker()
    tokens = {who: gateway.token(who) for who in ("sales01", "finance01", "officer01")}

    def call(method: str, path: str, who: str | None, **kw: Any) -> httpx.Response:
        headers = {"User-Agent": ua, **kw.pop("headers", {})}
        if who:
            headers["Authorization"] = f"Bearer {tokens[who]}"
        return client.request(method, path, headers=headers, **kw)

    assert call("GET", "/crm/api/customers?page=2&page_size=7", "sales01").status_code == 200
    assert call("GET", "/crm/admin/users", "sales01").status_code == 403
    patch = call(
        "PATCH",
        "/crm/api/customers/21",
        "finance01",
        headers={"Content-Type": "application/json"},
        content=b'{"phone": "13900000000"}',
    )
    assert patch.status_code == 403
    products = call(
        "POST",
        "/erp/soap",
        "officer01",
        headers=soap_headers(gateway, "GetProducts", Authorization=f"Bearer {tokens['officer01']}"),
        content=soap("GetProducts", "<erp:Page>1</erp:Page><erp:PageSize>3</erp:PageSize>"),
    )
    assert products.status_code == 200
    assert call("GET", "/crm/api/orders", None).status_code == 401

    officer = {"Authorization": f"Bearer {tokens['officer01']}"}
    found = wait_for_events(gateway, officer, lambda e: e["user_agent"] == ua, 5, since=_minute())
    assert len(found) == 5, found
    seen = by_path(found)
    read = seen[("GET", "/crm/api/customers")]
    assert (read["subject"], read["decision"], read["reason_id"], read["status"]) == (
        "sales01",
        "allow",
        "allowed",
        200,
    )
    assert read["records"] == 7 and read["entity"] == "customer" and read["upstream"] == "crm"
    assert "id_number" in read["fields_masked"] and read["roles"] == ["sales"]
    assert read["auth_method"] == "jwt" and read["response_bytes"] > 0

    admin = seen[("GET", "/crm/admin/users")]
    assert (admin["subject"], admin["decision"], admin["reason_id"], admin["status"]) == (
        "sales01",
        "deny",
        "explicit_deny",
        403,
    )
    assert admin["records"] == 0

    write = seen[("PATCH", "/crm/api/customers/21")]
    assert (write["subject"], write["decision"], write["reason_id"], write["status"]) == (
        "finance01",
        "deny",
        "field_write_denied",
        403,
    )

    soap_read = seen[("POST", "/erp/soap")]
    assert soap_read["subject"] == "officer01" and soap_read["records"] == 3
    assert soap_read["entity"] == "product" and soap_read["fields_masked"] == []

    anonymous = next(e for e in found if e["status"] == 401)
    assert anonymous["subject"] is None and anonymous["decision"] == "deny"
    assert anonymous["reason_id"] == "token_missing"

    listing = events(gateway, officer, limit=1000, since=_minute()).text
    for token in tokens.values():
        assert token not in listing and token.split(".")[2] not in listing
    assert "Bearer" not in listing
    # names and counts only: no value that was written, read or masked
    assert "13900000000" not in listing
    for customer in data.customers()[7:14]:
        assert customer["id_number"] not in listing and customer["name"] not in listing


def test_filters_narrow_the_trail_and_bad_filters_are_refused(
    gateway: Gateway, client: httpx.Client
):
    ua = marker()
    for size in (3, 9):
        r = client.get(
            f"/crm/api/customers?page=1&page_size={size}",
            headers={**gateway.auth("sales01"), "User-Agent": ua},
        )
        assert r.status_code == 200
    officer = gateway.auth("officer01")
    mine = wait_for_events(gateway, officer, lambda e: e["user_agent"] == ua, 2, subject="sales01")
    assert sorted(e["records"] for e in mine) == [3, 9]
    big = events(gateway, officer, subject="sales01", min_records=9, limit=1000).json()["events"]
    assert [e["records"] for e in big if e["user_agent"] == ua] == [9]
    assert all(e["records"] >= 9 for e in big)
    denied = events(gateway, officer, decision="deny", limit=1000).json()["events"]
    assert denied and all(e["decision"] == "deny" for e in denied)

    for params in ({"decison": "deny"}, {"limit": "0"}, {"since": "yesterday"}, {"cursor": "x"}):
        r = events(gateway, officer, **params)
        assert r.status_code == 400, params
        assert r.json()["parameter"] == next(iter(params)), r.text


def test_only_officers_may_read_the_trail(gateway: Gateway):
    for who in ("sales01", "finance01", "tester"):
        r = events(gateway, gateway.auth(who))
        assert r.status_code == 403, who
        assert r.json()["reason_id"] == "officer_role_required"
        assert "events" not in r.json()
    assert events(gateway, {}).status_code == 401
    assert events(gateway, gateway.auth("leaver01")).status_code == 401


def test_the_officers_query_is_itself_audited(gateway: Gateway):
    ua = marker()
    officer = {**gateway.auth("officer01"), "User-Agent": ua}
    first = events(gateway, officer, subject="sales01", limit=5)
    assert first.status_code == 200
    returned = len(first.json()["events"])
    query = wait_for_events(
        gateway, gateway.auth("officer01"), lambda e: e["user_agent"] == ua, 1, upstream="admin"
    )
    assert len(query) == 1, query
    (event,) = query
    assert event["subject"] == "officer01" and event["reason_id"] == "officer_query"
    assert event["path"].startswith("/api/audit/events?") and "subject=sales01" in event["path"]
    assert event["records"] == returned and event["entity"] == "audit_event"


def test_audit_verify_passes_on_the_gateways_database(gateway: Gateway):
    done = gateway.cli("audit", "verify", "--db", gateway.db_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("OK:")


# --- a gateway of its own, for tampering --------------------------------------------------


@pytest.fixture(scope="module")
def tamper_gateway(
    tmp_path_factory: pytest.TempPathFactory, upstreams: Upstreams
) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("tamper")
    with launch_gateway(tmp, upstreams, overrides=roles_from_token(upstreams), sync=False) as gw:
        yield gw


def _as(gateway: Gateway, subject: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.token(subject, extra={'roles': list(roles)})}"}


def test_tampering_with_one_row_is_detected_and_named(tamper_gateway: Gateway):
    gw = tamper_gateway
    ua = marker()
    for page in (1, 2, 3):
        r = httpx.get(
            f"{gw.url}/crm/api/customers?page={page}&page_size=4",
            headers={**_as(gw, "sales01", "sales"), "User-Agent": ua},
        )
        assert r.status_code == 200
    officer = _as(gw, "officer01", "officer")
    mine = wait_for_events(gw, officer, lambda e: e["user_agent"] == ua, 3, subject="sales01")
    assert len(mine) == 3
    target = sorted(mine, key=lambda e: e["seq"])[1]
    database = gw.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(database, timeout=10) as conn:  # what an insider with file access does
        changed = conn.execute(
            "UPDATE audit_events SET records = 0 WHERE chain_id = ? AND seq = ?",
            (target["chain_id"], target["seq"]),
        ).rowcount
    assert changed == 1
    done = gw.cli("audit", "verify", "--db", gw.db_url)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "row_altered" in done.stdout
    assert target["id"] in done.stdout and f"seq {target['seq']}" in done.stdout


# --- a gateway on PostgreSQL --------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_gateway(tmp_path_factory: pytest.TempPathFactory, upstreams: Upstreams) -> Iterator[Gateway]:
    name = f"wg_e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        overrides = {
            **roles_from_token(upstreams),
            "database_url": f"postgresql://root@127.0.0.1:5432/{name}",
        }
        tmp = tmp_path_factory.mktemp("pg")
        with launch_gateway(tmp, upstreams, overrides=overrides, sync=False) as gw:
            yield gw
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_trail_on_postgresql_is_queryable_and_verifies(pg_gateway: Gateway):
    gw = pg_gateway
    ua = marker()
    ok = httpx.get(
        f"{gw.url}/crm/api/customers?page=1&page_size=7",
        headers={**_as(gw, "sales01", "sales"), "User-Agent": ua},
    )
    assert ok.status_code == 200
    denied = httpx.get(
        f"{gw.url}/crm/admin/users", headers={**_as(gw, "sales01", "sales"), "User-Agent": ua}
    )
    assert denied.status_code == 403
    officer = _as(gw, "officer01", "officer")
    mine = wait_for_events(gw, officer, lambda e: e["user_agent"] == ua, 2, subject="sales01")
    seen = by_path(mine)
    read, admin = seen[("GET", "/crm/api/customers")], seen[("GET", "/crm/admin/users")]
    assert (read["decision"], read["status"], read["records"]) == ("allow", 200, 7)
    assert (admin["decision"], admin["reason_id"], admin["status"]) == (
        "deny",
        "explicit_deny",
        403,
    )
    assert events(gw, _as(gw, "sales01", "sales")).status_code == 403
    done = gw.cli("audit", "verify", "--db", gw.db_url)
    assert done.returncode == 0, done.stdout + done.stderr


def _minute() -> str:
    """A ``since`` filter one minute back (keeps the listings short)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))

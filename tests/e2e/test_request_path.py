"""The request path end to end: identify → route → authorize → forward, through real sockets."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from gateway.apikeys import split_key
from tests.e2e.conftest import Gateway, raw_request
from tests.e2e.helpers import soap, soap_headers, wait_until_key_loaded

PAGE = "<erp:Page>1</erp:Page><erp:PageSize>5</erp:PageSize>"
CORPUS = Path(__file__).parent.parent / "routing" / "denied_spellings.txt"


def _spellings() -> list[str]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_sales_reads_customers_and_upstream_sees_wardgate_identity(gateway: Gateway, client):
    gateway.recorder.clear()
    r = client.get(
        "/crm/api/customers?page=2&page_size=3",
        headers={
            **gateway.auth("sales01"),
            "X-Wardgate-Subject": "officer01",
            "X-Wardgate-Roles": "officer",
            "X-Forwarded-For": "10.9.9.9",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["page"] == 2 and len(body["data"]) == 3 and body["total"] == 30000
    assert r.headers["x-request-id"]
    seen = gateway.recorder.last("crm")
    assert seen.path == "/api/customers" and seen.query_string == "page=2&page_size=3"
    assert seen.header("x-wardgate-subject") == "sales01"
    assert seen.header("x-wardgate-roles") == "sales"
    assert seen.header("x-forwarded-for") == "127.0.0.1"  # the client's own claim ignored
    assert seen.header("authorization") is None and seen.header("x-api-key") is None


def test_api_key_from_the_cli_works_and_stays_with_wardgate(gateway: Gateway, client):
    made = gateway.cli(
        "keys",
        "create",
        "e2e bot",
        "--subject",
        "e2e-bot",
        "--role",
        "tester",
        "--config",
        str(gateway.config),
    )
    assert made.returncode == 0, made.stderr
    key = next(w for w in made.stdout.split() if w.startswith("wgk_"))
    wait_until_key_loaded(gateway, key)  # gateways pick new keys up within a second
    gateway.recorder.clear()
    r = client.get("/crm/echo", headers={"X-API-Key": key})
    assert r.status_code == 200, r.text
    seen = gateway.recorder.last("crm")
    assert seen.header("x-api-key") is None
    assert seen.header("x-wardgate-subject") == "e2e-bot"
    key_id = split_key(key)[0]  # type: ignore[index]
    revoked = gateway.cli(
        "keys", "revoke", key_id, "--reason", "test over", "--config", str(gateway.config)
    )
    assert revoked.returncode == 0, revoked.stderr
    deadline = time.monotonic() + 3
    while client.get("/crm/echo", headers={"X-API-Key": key}).status_code == 200:
        assert time.monotonic() < deadline, "a revoked key still works after 3 s"
        time.sleep(0.1)
    refused = client.get("/crm/echo", headers={"X-API-Key": key})
    assert refused.json()["reason_id"] == "api_key_revoked"


def test_sales_denied_admin_area_and_nothing_reaches_upstream(gateway: Gateway, client):
    gateway.recorder.clear()
    r = client.get("/crm/admin/users", headers=gateway.auth("sales01"))
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["reason_id"] == "explicit_deny"
    assert gateway.recorder.requests("crm") == []


def test_deny_by_default_for_roles_without_rules(gateway: Gateway, client):
    r = client.post(
        "/erp/soap",
        headers=soap_headers(gateway, "GetInvoices", **gateway.auth("sales01")),
        content=soap("GetInvoices", PAGE),
    )
    assert r.status_code == 403
    assert r.json()["reason_id"] == "no_matching_rule"


def test_finance_reads_invoices_over_soap(gateway: Gateway, client):
    r = client.post(
        "/erp/soap",
        headers=soap_headers(gateway, "GetInvoices", **gateway.auth("finance01")),
        content=soap("GetInvoices", PAGE),
    )
    assert r.status_code == 200, r.text
    assert b"<erp:Invoice>" in r.content or b"Invoice>" in r.content


def test_unknown_upstream_is_404(gateway: Gateway, client):
    r = client.get("/nope/x", headers=gateway.auth("sales01"))
    assert r.status_code == 404 and r.json()["reason_id"] == "no_upstream"


def test_no_token_is_401_with_challenge(gateway: Gateway, client):
    r = client.get("/crm/api/customers")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["reason_id"] == "token_missing"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": 1000}, "token_expired"),
        ({"nbf": 4102444800, "iat": 4102444800}, "token_not_yet_valid"),
        ({"aud": "someone-else"}, "token_wrong_audience"),
    ],
)
def test_bad_tokens_refused_end_to_end(gateway: Gateway, client, claims, reason):
    token = gateway.token("sales01", extra=claims)
    r = client.get("/crm/api/customers", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["reason_id"] == reason


def test_tampered_token_refused(gateway: Gateway, client):
    header, _payload, sig = gateway.token("sales01").split(".")
    forged = gateway.token("officer01").split(".")[1]
    r = client.get(
        "/crm/api/customers", headers={"Authorization": f"Bearer {header}.{forged}.{sig}"}
    )
    assert r.status_code == 401 and r.json()["reason_id"] == "token_invalid"


def test_leaver_refused_even_with_valid_token(gateway: Gateway, client):
    r = client.get("/crm/api/customers", headers=gateway.auth("leaver01"))
    assert r.status_code == 401
    assert r.json()["reason_id"] == "person_revoked"


@pytest.mark.parametrize("spelling", _spellings())
def test_no_spelling_of_a_denied_path_reaches_upstream(gateway: Gateway, spelling: str):
    """Every spelling of /crm/admin/users, sent byte for byte, is refused before the CRM."""
    gateway.recorder.clear()
    token = gateway.token("tester")
    status, body = raw_request(
        gateway,
        f"GET {spelling} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Connection: close\r\n\r\n".encode(),
    )
    assert status in (400, 403, 404), (spelling, status, body[:200])
    assert not [r for r in gateway.recorder.requests("crm") if "admin" in r.path.lower()]


def test_method_override_refused(gateway: Gateway, client):
    r = client.get(
        "/crm/echo", headers={**gateway.auth("tester"), "X-HTTP-Method-Override": "DELETE"}
    )
    assert r.status_code == 400 and r.json()["reason_id"] == "method_override_refused"
    r = client.get("/crm/echo?_method=DELETE", headers=gateway.auth("tester"))
    assert r.status_code == 400


def test_hop_by_hop_headers_dropped_both_ways(gateway: Gateway, client):
    gateway.recorder.clear()
    r = client.post(
        "/crm/echo?x=1",
        headers={
            **gateway.auth("tester"),
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "1",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic abc",
            "X-Custom": "kept",
        },
        content=b'{"a": 1}',
    )
    assert r.status_code == 200, r.text
    seen = gateway.recorder.last("crm")
    for name in ("x-secret-hop", "keep-alive", "te", "proxy-authorization"):
        assert seen.header(name) is None, name
    assert seen.header("x-custom") == "kept"
    assert seen.body == b'{"a": 1}' and seen.query_string == "x=1" and seen.method == "POST"


def test_request_body_over_limit_is_413_and_never_forwarded(gateway: Gateway, client):
    gateway.recorder.clear()
    r = client.post("/crm/echo", headers=gateway.auth("tester"), content=b"x" * (65 * 1024))
    assert r.status_code == 413 and r.json()["reason_id"] == "request_body_too_large"
    assert gateway.recorder.requests("crm") == []


def test_chunked_request_body_over_limit_is_413(gateway: Gateway, client):
    def chunks():
        for _ in range(70):
            yield b"y" * 1024

    r = client.post("/crm/echo", headers=gateway.auth("tester"), content=chunks())
    assert r.status_code == 413


def test_upstream_down_is_502(gateway: Gateway, client):
    r = client.get("/down/anything", headers=gateway.auth("tester"))
    assert r.status_code == 502
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["reason_id"] == "upstream_unavailable"


def test_slow_upstream_is_504(gateway: Gateway, client):
    r = client.get("/crm/slow?seconds=4", headers=gateway.auth("tester"))
    assert r.status_code == 504 and r.json()["reason_id"] == "upstream_timeout"


def test_streamed_and_compressed_responses_pass_intact(gateway: Gateway, client):
    r = client.get("/crm/stream?chunks=20", headers=gateway.auth("tester"))
    assert r.status_code == 200 and len(r.content) > 0
    with httpx.Client(base_url=gateway.url) as raw:
        r = raw.get("/crm/gzip", headers={**gateway.auth("tester"), "Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.json()["data"]


def test_health_ready_and_metrics(gateway: Gateway, client):
    assert client.get("/healthz").json()["status"] == "alive"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    metrics = httpx.get(f"{gateway.admin_url}/metrics").text
    assert "wardgate_requests_total" in metrics
    assert 'decision="deny"' in metrics

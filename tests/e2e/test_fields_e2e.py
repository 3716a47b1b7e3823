"""Field filtering and write guarding end to end: real gateway, real demo upstreams, sockets.

Reads: what a role may not see never reaches it (SOAP, JSON, CSV, gzip). Writes: every
spelling of a field the role may not write is refused with a 403 naming it, and the
upstream receives nothing. A mapped route whose answer cannot be filtered is a 502.
"""

from __future__ import annotations

import gzip
import re
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import yaml
from aiohttp import web

from gateway.demo import data
from tests.e2e.conftest import REPO, Gateway, Upstreams, launch_gateway
from tests.e2e.helpers import (
    ERP_NS,
    SOAP_NS,
    roles_from_token,
    soap,
    soap_headers,
    wait_until_key_loaded,
)
from tests.support.servers import ServerThread

CUSTOMER_ID = 17  # customers 1..30000; this one is only patched by the tests below


def masked_id(real: str) -> str:
    """The catalog's partial mask for id_number: first 6 and last 4 kept."""
    return real[:6] + "*" * (len(real) - 10) + real[-4:]


@pytest.fixture(scope="module")
def sync_key(gateway: Gateway) -> str:
    """An API key for the CRM→ERP order sync (role ``sync``), made with the real CLI."""
    made = gateway.cli(
        "keys",
        "create",
        "e2e fields sync",
        "--subject",
        "e2e-fields-sync",
        "--role",
        "sync",
        "--config",
        str(gateway.config),
    )
    assert made.returncode == 0, made.stderr
    key = next(w for w in made.stdout.split() if w.startswith("wgk_"))
    wait_until_key_loaded(gateway, key)
    return key


# --- reads -----------------------------------------------------------------------------------


def test_sales_reads_products_without_any_cost_price(gateway: Gateway, client: httpx.Client):
    products = data.products()[:50]
    r = client.post(
        "/erp/soap",
        headers=soap_headers(gateway, "GetProducts"),
        content=soap("GetProducts", "<erp:Page>1</erp:Page><erp:PageSize>50</erp:PageSize>"),
    )
    assert r.status_code == 200, r.text
    raw = r.content
    assert raw.count(b"<erp:Product>") == 50
    assert b"costprice" not in raw.lower()
    for product in products:
        assert product["Code"].encode() in raw  # the records themselves arrived
        cost = product["CostPrice"].encode()
        # no cost price value appears as an element's text, however it might be wrapped
        assert b">" + cost + b"<" not in raw, (product["Code"], product["CostPrice"])
    assert int(r.headers["content-length"]) == len(raw)


def test_finance_reads_products_with_cost_price(gateway: Gateway, client: httpx.Client):
    r = client.post(
        "/erp/soap",
        headers=soap_headers(gateway, "GetProducts", **gateway.auth("finance01")),
        content=soap("GetProducts", "<erp:Page>1</erp:Page><erp:PageSize>5</erp:PageSize>"),
    )
    assert r.status_code == 200, r.text
    costs = re.findall(rb"<erp:CostPrice>([^<]*)</erp:CostPrice>", r.content)
    assert costs == [p["CostPrice"].encode() for p in data.products()[:5]]


def test_sales_sees_id_numbers_partly_masked_and_the_officer_unmasked(
    gateway: Gateway, client: httpx.Client
):
    real = data.customers()[20:30]
    query = "/crm/api/customers?page=3&page_size=10"
    sales = client.get(query, headers=gateway.auth("sales01"))
    officer = client.get(query, headers=gateway.auth("officer01"))
    assert sales.status_code == officer.status_code == 200
    for record in real:
        assert record["id_number"].encode() not in sales.content
    assert [c["id_number"] for c in sales.json()["data"]] == [
        masked_id(c["id_number"]) for c in real
    ]
    assert [c["id_number"] for c in officer.json()["data"]] == [c["id_number"] for c in real]
    # fields the catalog leaves visible to sales are untouched
    assert [c["phone"] for c in sales.json()["data"]] == [c["phone"] for c in real]


def test_csv_export_is_masked_for_sales(gateway: Gateway, client: httpx.Client):
    real = data.customers()[:20]
    r = client.get(
        "/crm/api/customers/export.csv?page=1&page_size=20", headers=gateway.auth("sales01")
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert int(r.headers["content-length"]) == len(r.content)
    lines = r.text.splitlines()
    assert lines[0].split(",") == list(data.CUSTOMER_FIELDS) and len(lines) == 21
    for record in real:
        assert record["id_number"] not in r.text
        assert masked_id(record["id_number"]) in r.text


def test_gzip_upstream_answer_is_filtered_with_honest_headers(gateway: Gateway):
    real = data.customers()[:4]
    with (
        httpx.Client(base_url=gateway.url, timeout=10) as c,
        c.stream(
            "GET",
            "/crm/gzip?page=1&page_size=4",
            headers={**gateway.auth("tester"), "Accept-Encoding": "gzip"},
        ) as r,
    ):
        wire = b"".join(r.iter_raw())  # the bytes exactly as sent, not decoded by httpx
    assert r.status_code == 200
    assert int(r.headers["content-length"]) == len(wire)
    encoding = r.headers.get("content-encoding")
    assert encoding in (None, "gzip")
    body = gzip.decompress(wire) if encoding == "gzip" else wire
    document = orjson.loads(body)
    assert [c["id"] for c in document["data"]] == [c["id"] for c in real]
    for record in real:
        assert record["id_number"].encode() not in body


def test_sales_reads_one_customer_masked(gateway: Gateway, client: httpx.Client):
    real = data.customers()[41]
    r = client.get(f"/crm/api/customers/{real['id']}", headers=gateway.auth("sales01"))
    assert r.status_code == 200, r.text
    assert r.json()["id_number"] == masked_id(real["id_number"])
    assert real["id_number"].encode() not in r.content


_PAGING = "<erp:Page>1</erp:Page><erp:PageSize>5</erp:PageSize>"
_TWO_CALLS = (
    f'<soap:Envelope xmlns:soap="{SOAP_NS}" xmlns:erp="{ERP_NS}"><soap:Body>'
    f"<erp:GetProducts>{_PAGING}</erp:GetProducts><erp:GetInvoices>{_PAGING}</erp:GetInvoices>"
    "</soap:Body></soap:Envelope>"
).encode()


@pytest.mark.parametrize(
    ("action", "body"),
    [
        (f'"{ERP_NS}/GetProducts"', soap("GetInvoices", _PAGING)),
        ('"GetProducts"', soap("GetInvoices", _PAGING)),
        (None, soap("GetInvoices", _PAGING)),
        (f'"{ERP_NS}/GetProducts"', _TWO_CALLS),
    ],
)
def test_sales_cannot_read_invoices_by_mislabelling_the_soap_call(
    gateway: Gateway, client: httpx.Client, action: str | None, body: bytes
):
    gateway.recorder.clear()
    headers = {**gateway.auth("sales01"), "Content-Type": "text/xml"}
    if action is not None:
        headers["SOAPAction"] = action
    r = client.post("/erp/soap", headers=headers, content=body)
    # Sales may call GetProducts only. A Body with a second operation authorised as the first
    # must not reach the ERP: an upstream that runs every Body element would answer it.
    assert gateway.recorder.requests("erp") == [], "an unauthorised SOAP operation was forwarded"
    assert r.status_code in (400, 403), (r.status_code, r.content[:300])
    assert b"Invoice>" not in r.content and b"BankAccount" not in r.content


# --- writes ----------------------------------------------------------------------------------


def test_sales_updates_a_contact_and_the_crm_receives_it(gateway: Gateway, client: httpx.Client):
    gateway.recorder.clear()
    r = client.patch(
        f"/crm/api/customers/{CUSTOMER_ID}",
        headers={**gateway.auth("sales01"), "Content-Type": "application/merge-patch+json"},
        content=b'{"contact_name": "Wang Lei", "phone": "13800138000"}',
    )
    assert r.status_code == 200, r.text
    seen = gateway.recorder.last("crm")
    assert seen.method == "PATCH" and seen.path == f"/api/customers/{CUSTOMER_ID}"
    assert seen.json() == {"contact_name": "Wang Lei", "phone": "13800138000"}
    assert r.json()["phone"] == "13800138000"
    assert r.json()["id_number"] == masked_id(data.customers()[CUSTOMER_ID - 1]["id_number"])


def test_finance_may_not_change_a_contact_and_the_crm_receives_nothing(
    gateway: Gateway, client: httpx.Client
):
    gateway.recorder.clear()
    r = client.patch(
        f"/crm/api/customers/{CUSTOMER_ID}",
        headers={**gateway.auth("finance01"), "Content-Type": "application/json"},
        content=b'{"phone": "13900000000"}',
    )
    assert r.status_code == 403
    problem = r.json()
    assert problem["reason_id"] == "field_write_denied" and problem["field"] == "phone"
    assert "phone" in problem["detail"]
    assert gateway.recorder.requests("crm") == []


# (content type, body, the field the 403 must name) — sales may write contact_name, phone,
# email only; credit_limit, owner, id_number and name are forbidden to them.
FORBIDDEN_SALES_WRITES: list[tuple[str, bytes, str]] = [
    ("application/json", b'{"credit_limit": 1}', "credit_limit"),
    ("application/json", b'{"phone": "1", "meta": {"notes": [{"owner": "me"}]}}', "owner"),
    ("application/json", b'{"CREDIT_LIMIT": 1}', "CREDIT_LIMIT"),
    ("application/json", b'{"credit\\u005flimit": 1}', "credit_limit"),
    ("Application/JSON", b'{"owner": "me"}', "owner"),
    ("application/json; charset=utf-8", b'[{"id_number": "x"}]', "id_number"),
    ("application/merge-patch+json", b'{"owner": "sales01"}', "owner"),
    ("application/merge-patch+json", b'{"phone": "1", "credit_limit": null}', "credit_limit"),
    (
        "application/json-patch+json",
        b'[{"op": "replace", "path": "/credit_limit", "value": 9}]',
        "credit_limit",
    ),
    (
        "application/json-patch+json",
        b'[{"op": "add", "path": "/a~1b/owner", "value": "me"}]',
        "owner",
    ),
    (
        "application/json-patch+json",
        b'[{"op": "remove", "path": "/owner/x~0y~1z"}]',
        "owner",
    ),
    (
        "application/json-patch+json",
        b'[{"op": "move", "from": "/credit_limit", "path": "/phone"}]',
        "credit_limit",
    ),
    (
        "application/json-patch+json",
        b'[{"op": "add", "path": "/phone", "value": {"name": "x"}}]',
        "name",
    ),
    ("application/x-www-form-urlencoded", b"phone=1&credit_limit=5", "credit_limit"),
    ("application/x-www-form-urlencoded", b"customer[owner]=me", "owner"),
    ("application/x-www-form-urlencoded", b"phone=1;id_number=x", "id_number"),
    ("application/x-www-form-urlencoded", b"customer.name=x", "name"),
    (
        "multipart/form-data; boundary=XyZ",
        b'--XyZ\r\nContent-Disposition: form-data; name="credit_limit"\r\n\r\n1\r\n--XyZ--\r\n',
        "credit_limit",
    ),
]


@pytest.mark.parametrize(("content_type", "body", "field"), FORBIDDEN_SALES_WRITES)
def test_every_way_of_naming_a_forbidden_field_is_refused(
    gateway: Gateway, client: httpx.Client, content_type: str, body: bytes, field: str
):
    gateway.recorder.clear()
    r = client.patch(
        f"/crm/api/customers/{CUSTOMER_ID}",
        headers={**gateway.auth("sales01"), "Content-Type": content_type},
        content=body,
    )
    assert r.status_code == 403, (r.status_code, r.text)
    problem = r.json()
    assert problem["reason_id"] == "field_write_denied" and problem["field"] == field
    assert gateway.recorder.requests("crm") == []


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b"credit_limit=1"),
        (None, b'{"credit_limit": 1}'),
        ("application/json", b'{"credit_limit": 1'),
        ("application/json-patch+json", b'{"op": "replace", "path": "/owner"}'),
    ],
)
def test_writes_that_cannot_be_checked_are_refused_not_forwarded(
    gateway: Gateway, client: httpx.Client, content_type: str | None, body: bytes
):
    gateway.recorder.clear()
    headers = gateway.auth("sales01")
    if content_type:
        headers["Content-Type"] = content_type
    r = client.patch(f"/crm/api/customers/{CUSTOMER_ID}", headers=headers, content=body)
    assert r.status_code in (400, 403, 415), r.text
    assert gateway.recorder.requests("crm") == []


def test_sync_key_updates_stock_but_never_cost_price(
    gateway: Gateway, client: httpx.Client, sync_key: str
):
    product = data.products()[6]
    key = {"X-API-Key": sync_key}
    gateway.recorder.clear()
    ok = client.post(
        "/erp/soap",
        headers=soap_headers(gateway, "UpdateProduct", **key),
        content=soap(
            "UpdateProduct",
            f"<erp:Product><erp:Code>{product['Code']}</erp:Code>"
            "<erp:Stock>77</erp:Stock></erp:Product>",
        ),
    )
    assert ok.status_code == 200, ok.text
    assert b"<erp:Stock>77</erp:Stock>" in ok.content
    assert b"CostPrice" not in ok.content  # the sync job may not read it either
    assert len(gateway.recorder.requests("erp")) == 1
    spellings = [
        f"<erp:Product><erp:Code>{product['Code']}</erp:Code>"
        "<erp:CostPrice>1.00</erp:CostPrice></erp:Product>",
        f'<erp:Product erp:CostPrice="1.00"><erp:Code>{product["Code"]}</erp:Code></erp:Product>',
        f"<erp:Product><erp:Code>{product['Code']}</erp:Code>"
        '<x:costprice xmlns:x="urn:elsewhere">1.00</x:costprice></erp:Product>',
    ]
    for inner in spellings:
        gateway.recorder.clear()
        r = client.post(
            "/erp/soap",
            headers=soap_headers(gateway, "UpdateProduct", **key),
            content=soap("UpdateProduct", inner),
        )
        assert r.status_code == 403, (inner, r.text)
        assert r.json()["reason_id"] == "field_write_denied"
        assert r.json()["field"].lower() == "costprice"
        assert gateway.recorder.requests("erp") == [], inner


# --- answers that cannot be filtered ---------------------------------------------------------

SECRET_ID = "110101199003077777"
_BROKEN_ANSWERS: dict[str, tuple[dict[str, str], bytes]] = {
    "truncated": (
        {"Content-Type": "application/json"},
        b'{"data": [{"id": 1, "id_number": "' + SECRET_ID.encode() + b'"}, {"id": 2',
    ),
    "html": (
        {"Content-Type": "text/html"},
        b"<html><td>" + SECRET_ID.encode() + b"</td></html>",
    ),
    "bad-gzip": (
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        b'{"data": [{"id": 1, "id_number": "' + SECRET_ID.encode() + b'"}]}',
    ),
    "unknown-encoding": (
        {"Content-Type": "application/json", "Content-Encoding": "x-custom"},
        b'{"data": [{"id": 1, "id_number": "' + SECRET_ID.encode() + b'"}]}',
    ),
    "gzip": (
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        gzip.compress(b'{"data": [{"id": 1, "id_number": "' + SECRET_ID.encode() + b'"}]}'),
    ),
}


def _odd_crm() -> web.Application:
    """A CRM that answers its customer list with whatever ``?kind=`` asks for."""

    async def customers(request: web.Request) -> web.Response:
        headers, body = _BROKEN_ANSWERS[request.query["kind"]]
        return web.Response(body=body, headers=headers)

    app = web.Application()
    app.router.add_get("/api/customers", customers)
    return app


@pytest.fixture(scope="module")
def odd_gateway(
    tmp_path_factory: pytest.TempPathFactory, upstreams: Upstreams
) -> Iterator[Gateway]:
    """A gateway with an extra upstream ``odd`` whose /api/customers is mapped like the CRM's.

    Roles come from the token (``trust_role_claims``), so no directory sync is needed.
    """
    tmp = tmp_path_factory.mktemp("odd")
    policies = tmp / "policies"
    shutil.copytree(REPO / "policies", policies, ignore=shutil.ignore_patterns("tests"))
    with (policies / "policy.csv").open("a") as rules:
        rules.write("\np, reader, odd, /api/customers, GET, allow\n")
    resources: dict[str, Any] = yaml.safe_load((policies / "resources.yaml").read_text())
    resources["upstreams"]["odd"] = {
        "rest": [
            {
                "methods": ["GET"],
                "path": "/api/customers",
                "entity": "customer",
                "format": "json",
                "records": "$.data[*]",
            }
        ]
    }
    (policies / "resources.yaml").write_text(yaml.safe_dump(resources))
    with ServerThread(_odd_crm) as odd:
        overrides = {
            **roles_from_token(upstreams),
            "upstreams": {"odd": {"base_url": odd.url, "prefix": "/odd"}},
        }
        with launch_gateway(tmp, upstreams, overrides=overrides, sync=False) as gw:
            yield gw


@pytest.mark.parametrize("kind", ["truncated", "html", "bad-gzip", "unknown-encoding"])
def test_mapped_answer_that_cannot_be_filtered_is_502_never_passed_through(
    odd_gateway: Gateway, kind: str
):
    token = odd_gateway.token("e2e-reader", extra={"roles": ["reader"]})
    r = httpx.get(
        f"{odd_gateway.url}/odd/api/customers?kind={kind}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 502, (kind, r.status_code, r.content[:200])
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["reason_id"] == "response_unfilterable"
    assert SECRET_ID.encode() not in r.content
    assert "content-encoding" not in r.headers


def test_mapped_gzip_answer_is_filtered_and_sent_plain(odd_gateway: Gateway):
    token = odd_gateway.token("e2e-reader", extra={"roles": ["reader"]})
    with (
        httpx.Client(timeout=10) as c,
        c.stream(
            "GET",
            f"{odd_gateway.url}/odd/api/customers?kind=gzip",
            headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"},
        ) as r,
    ):
        wire = b"".join(r.iter_raw())
    assert r.status_code == 200
    assert "content-encoding" not in r.headers  # filtered bodies leave identity-encoded
    assert int(r.headers["content-length"]) == len(wire)
    assert orjson.loads(wire)["data"] == [{"id": 1, "id_number": masked_id(SECRET_ID)}]


def test_cost_price_hidden_in_other_encodings_never_reaches_the_erp(
    gateway: Gateway, client: httpx.Client, sync_key: str
):
    code = data.products()[8]["Code"]
    inner = (
        f"<erp:Product><erp:Code>{code}</erp:Code><erp:CostPrice>2.00</erp:CostPrice></erp:Product>"
    )
    utf16 = '<?xml version="1.0" encoding="UTF-16"?>' + soap("UpdateProduct", inner).decode()
    entity = (
        '<?xml version="1.0"?><!DOCTYPE soap:Envelope [<!ENTITY c '
        '"&#60;erp:CostPrice&#62;2.00&#60;/erp:CostPrice&#62;">]>'
        + soap(
            "UpdateProduct", f"<erp:Product><erp:Code>{code}</erp:Code>&c;</erp:Product>"
        ).decode()
    )
    for body in (utf16.encode("utf-16"), entity.encode()):
        gateway.recorder.clear()
        r = client.post(
            "/erp/soap",
            headers=soap_headers(gateway, "UpdateProduct", **{"X-API-Key": sync_key}),
            content=body,
        )
        assert r.status_code in (400, 403), (r.status_code, r.text)
        assert gateway.recorder.requests("erp") == []


def test_compressed_write_body_is_not_forwarded_unchecked(gateway: Gateway, client: httpx.Client):
    gateway.recorder.clear()
    r = client.patch(
        f"/crm/api/customers/{CUSTOMER_ID}",
        headers={
            **gateway.auth("sales01"),
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
        content=gzip.compress(b'{"credit_limit": 1}'),
    )
    assert r.status_code in (400, 403, 415), (r.status_code, r.text)
    assert gateway.recorder.requests("crm") == []

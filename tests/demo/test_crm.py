"""The demo CRM's contract routes, over real sockets."""

from __future__ import annotations

import csv
import gzip
import io
import time
from typing import Any

import aiohttp
import orjson
import pytest
from yarl import URL

from gateway.demo import data
from gateway.demo.crm import make_crm_app
from tests.support.servers import serve_app

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


async def get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        assert response.content_type == "application/json"
        return response.status, orjson.loads(await response.read())


async def patch(
    http: aiohttp.ClientSession, url: str, body: object, content_type: str = MERGE
) -> tuple[int, Any]:
    headers = {"Content-Type": content_type}
    async with http.patch(url, data=orjson.dumps(body), headers=headers) as response:
        return response.status, orjson.loads(await response.read())


async def test_customer_pages_carry_the_envelope_and_total(crm: str, http) -> None:
    status, first = await get_json(http, f"{crm}/api/customers")
    assert status == 200
    assert (first["page"], first["page_size"], first["total"]) == (1, 50, 30_000)
    assert [c["id"] for c in first["data"]] == list(range(1, 51))
    _, third = await get_json(http, f"{crm}/api/customers?page=3&page_size=1000")
    assert [c["id"] for c in third["data"]] == list(range(2001, 3001))
    assert third["data"][0] == data.customers()[2000]
    _, last = await get_json(http, f"{crm}/api/customers?page=30&page_size=1000")
    assert last["data"][-1]["id"] == 30_000
    _, past = await get_json(http, f"{crm}/api/customers?page=31&page_size=1000")
    assert past["data"] == [] and past["total"] == 30_000


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page=-1",
        "page=abc",
        "page=1.5",
        "page=",
        "page_size=0",
        "page_size=1001",
        "page_size=%D9%A1",  # an Arabic-Indic digit one: not an ASCII number
        "page=" + "9" * 5000,
    ],
)
async def test_bad_paging_is_a_400_json_error_naming_the_parameter(
    crm: str, http, query: str
) -> None:
    for path in ("/api/customers", "/api/orders", "/api/customers/export.csv"):
        status, body = await get_json(http, f"{crm}{path}?{query}")
        assert status == 400
        assert body["error"] == "bad_paging"
        assert query.split("=")[0] in body["detail"]


async def test_orders_use_the_same_envelope(crm: str, http) -> None:
    status, page = await get_json(http, f"{crm}/api/orders?page=2&page_size=10")
    assert status == 200
    assert (page["page"], page["page_size"], page["total"]) == (2, 10, 60_000)
    assert [o["id"] for o in page["data"]] == list(range(11, 21))
    assert set(page["data"][0]) == {"id", "customer_id", "amount", "status", "created_at"}


async def test_one_customer_and_404s_for_every_kind_of_missing_id(crm: str, http) -> None:
    status, customer = await get_json(http, f"{crm}/api/customers/123")
    assert status == 200 and customer == data.customers()[122]
    for missing in ("0", "30001", "-1", "abc", "1e3", "%D9%A3", "99999999999999999999"):
        status, body = await get_json(http, f"{crm}/api/customers/{missing}")
        assert status == 404, missing
        assert body["error"] == "not_found"


async def test_the_small_document_is_8_customers_of_about_2_kb(crm: str, http) -> None:
    async with http.get(f"{crm}/api/small") as response:
        raw = await response.read()
    assert 1500 <= len(raw) <= 2500
    assert orjson.loads(raw) == list(data.customers()[:8])


async def test_csv_export_has_the_header_row_and_the_page(crm: str, http) -> None:
    async with http.get(f"{crm}/api/customers/export.csv?page=2&page_size=5") as response:
        assert response.status == 200
        assert response.content_type == "text/csv"
        assert response.charset == "utf-8"
        text = await response.text()
    lines = text.split("\r\n")
    assert lines[0] == "id,name,contact_name,phone,id_number,email,credit_limit,owner"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["id"]) for r in rows] == [6, 7, 8, 9, 10]
    assert rows[0]["id_number"] == data.customers()[5]["id_number"]


@pytest.mark.parametrize("content_type", ["application/json", MERGE])
async def test_merge_patch_changes_the_customer_everywhere(crm: str, http, content_type) -> None:
    url = f"{crm}/api/customers/7"
    status, updated = await patch(
        http, url, {"email": "new@example.cn", "credit_limit": 12.5}, content_type
    )
    assert status == 200
    assert updated == {**data.customers()[6], "email": "new@example.cn", "credit_limit": 12.5}
    assert (await get_json(http, url))[1] == updated
    _, page = await get_json(http, f"{crm}/api/customers?page_size=10")
    assert page["data"][6] == updated
    async with http.get(f"{crm}/api/customers/export.csv?page_size=10") as response:
        assert "new@example.cn" in await response.text()
    _, small = await get_json(http, f"{crm}/api/small")
    assert small[6] == updated
    assert data.customers()[6]["email"] != "new@example.cn"  # the shared data is untouched


async def test_json_patch_replace_ops_apply_in_order(crm: str, http) -> None:
    ops = [
        {"op": "replace", "path": "/phone", "value": "13900000000"},
        {"op": "replace", "path": "/owner", "value": "sales02"},
        {"op": "replace", "path": "/phone", "value": "+86 139 0000 0001"},
    ]
    status, updated = await patch(http, f"{crm}/api/customers/2", ops, JSON_PATCH)
    assert status == 200
    assert (updated["phone"], updated["owner"]) == ("+86 139 0000 0001", "sales02")


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        ({"nickname": "x"}, MERGE, "unknown field 'nickname'"),
        ({"email": "ok@example.cn", "nickname": "x"}, MERGE, "unknown field"),
        ({"id": 5}, MERGE, "read-only"),
        ({"email": None}, MERGE, "cannot be removed"),
        ({"email": ""}, MERGE, "non-empty text"),
        ({"email": "x" * 201}, MERGE, "at most 200"),
        ({"credit_limit": "1000"}, MERGE, "number"),
        ({"credit_limit": True}, MERGE, "number"),
        ({"credit_limit": -1}, MERGE, "number"),
        ({}, MERGE, "changes nothing"),
        ([{"op": "replace", "path": "/email", "value": "a@b.cn"}], MERGE, "JSON object"),
        ({"op": "replace"}, JSON_PATCH, "JSON array"),
        ([], JSON_PATCH, "non-empty"),
        ([{"op": "remove", "path": "/email"}], JSON_PATCH, "only"),
        ([{"op": "add", "path": "/nickname", "value": "x"}], JSON_PATCH, "only"),
        ([{"op": "replace", "path": "/nickname", "value": "x"}], JSON_PATCH, "unknown field"),
        ([{"op": "replace", "path": "/id", "value": 9}], JSON_PATCH, "read-only"),
        ([{"op": "replace", "path": "email", "value": "a@b.cn"}], JSON_PATCH, "path"),
        ([{"op": "replace", "path": "/email/0", "value": "a"}], JSON_PATCH, "path"),
        ([{"op": "replace", "path": "/email"}], JSON_PATCH, "exactly"),
        (
            [
                {"op": "replace", "path": "/email", "value": "ok@example.cn"},
                {"op": "replace", "path": "/secret", "value": "x"},
            ],
            JSON_PATCH,
            "unknown field",
        ),
    ],
)
async def test_rejected_patches_are_400_and_change_nothing(
    crm: str, http, body, content_type: str, says: str
) -> None:
    url = f"{crm}/api/customers/3"
    status, error = await patch(http, url, body, content_type)
    assert status == 400
    assert says in error["detail"]
    assert (await get_json(http, url))[1] == data.customers()[2]


async def test_patch_needs_json_of_a_patch_media_type(crm: str, http) -> None:
    url = f"{crm}/api/customers/4"
    async with http.patch(url, data=b"{not json", headers={"Content-Type": MERGE}) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "bad_body"
    async with http.patch(url, data=b"email=x", headers={"Content-Type": "text/plain"}) as response:
        assert response.status == 415
        assert MERGE in (await response.json())["detail"]
    status, missing = await patch(http, f"{crm}/api/customers/30001", {"email": "a@b.cn"})
    assert status == 404 and missing["error"] == "not_found"
    assert (await get_json(http, url))[1] == data.customers()[3]


async def test_edits_stay_in_their_own_app_instance(crm: str, http) -> None:
    await patch(http, f"{crm}/api/customers/1", {"name": "改名公司"})
    async with serve_app(make_crm_app()) as other:
        _, fresh = await get_json(http, f"{other}/api/customers/1")
    assert fresh["name"] == data.customers()[0]["name"]


async def test_admin_users_can_be_listed_created_read_and_deleted(crm: str, http) -> None:
    status, users = await get_json(http, f"{crm}/admin/users")
    assert status == 200 and "admin" in [u["username"] for u in users]
    new = {"username": "wang.fang", "display_name": "王芳", "roles": ["crm_admin"]}
    async with http.post(f"{crm}/admin/users", json=new) as response:
        assert response.status == 201
    assert (await get_json(http, f"{crm}/admin/users/wang.fang"))[1] == new
    async with http.post(f"{crm}/admin/users", json=new) as response:
        assert response.status == 409
    for bad in (
        {"username": "x"},
        {**new, "username": "Bad Name"},
        {**new, "roles": []},
        {**new, "is_root": True},
    ):
        async with http.post(f"{crm}/admin/users", json=bad) as response:
            assert response.status == 400, bad
    async with http.delete(f"{crm}/admin/users/wang.fang") as response:
        assert response.status == 204
    assert (await get_json(http, f"{crm}/admin/users/wang.fang"))[0] == 404


async def test_slow_waits_as_long_as_asked_and_refuses_nonsense(crm: str, http) -> None:
    started = time.monotonic()
    status, body = await get_json(http, f"{crm}/slow?seconds=0.3")
    assert status == 200 and body == {"slept": 0.3}
    assert time.monotonic() - started >= 0.3
    for bad in ("-1", "61", "nan", "inf", "soon"):
        assert (await get_json(http, f"{crm}/slow?seconds={bad}"))[0] == 400


async def test_echo_returns_exactly_what_arrived(crm: str, http) -> None:
    headers = [("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-For", "10.0.0.2"), ("X-Test", "yes")]
    url = URL(f"{crm}/echo?b=2&a=1&a=%2F", encoded=True)  # sent byte for byte
    async with http.post(url, data="客户数据".encode(), headers=headers) as response:
        echo = await response.json()
    assert echo["method"] == "POST"
    assert echo["path"] == "/echo"
    assert echo["query_string"] == "b=2&a=1&a=%2F"
    assert echo["query"] == [["b", "2"], ["a", "1"], ["a", "/"]]
    assert echo["headers"]["x-forwarded-for"] == "10.0.0.1, 10.0.0.2"
    assert ["X-Test", "yes"] in echo["header_list"]
    assert echo["body"] == "客户数据" and echo["body_length"] == 12
    async with http.get(f"{crm}/echo") as response:
        assert (await response.json())["method"] == "GET"


async def test_bodies_larger_than_aiohttps_default_cap_are_accepted(crm: str, http) -> None:
    big = b"x" * (12 * 1024 * 1024)  # above Wardgate's default 10 MiB request cap
    async with http.post(f"{crm}/echo", data=io.BytesIO(big)) as response:
        assert response.status == 200
        assert (await response.json())["body_length"] == len(big)
    async with http.post(f"{crm}/echo", data=io.BytesIO(big + big)) as response:
        assert response.status == 413


async def test_stream_is_chunked_and_arrives_piece_by_piece(crm: str, http) -> None:
    async with http.get(f"{crm}/stream?chunks=5&delay_ms=50") as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert "Content-Length" not in response.headers
        first = await response.content.readline()
        arrived_first = time.monotonic()
        rest = await response.read()
        arrived_last = time.monotonic()
    lines = [first, *rest.splitlines()]
    assert [orjson.loads(line)["id"] for line in lines] == [1, 2, 3, 4, 5]
    assert arrived_last - arrived_first >= 0.15  # the first line came before the others
    for bad in ("0", "10001", "x"):
        assert (await get_json(http, f"{crm}/stream?chunks={bad}"))[0] == 400


async def test_gzip_sends_a_gzip_encoded_customer_page(crm: str) -> None:
    async with (
        aiohttp.ClientSession(auto_decompress=False) as raw_http,
        raw_http.get(f"{crm}/gzip?page_size=3") as response,
    ):
        assert response.headers["Content-Encoding"] == "gzip"
        body = await response.read()
    page = orjson.loads(gzip.decompress(body))
    assert [c["id"] for c in page["data"]] == [1, 2, 3] and page["total"] == 30_000

"""The demo CRM: a REST/JSON upstream with 30,000 customers and 60,000 orders.

Routes (the gateway strips its ``/crm`` prefix, so this app sees ``/api/…``):

    GET   /api/customers?page=N&page_size=M   {"data": [...], "page", "page_size", "total"}
    GET   /api/customers/{id}                 one customer, 404 if there is none
    PATCH /api/customers/{id}                 merge patch (application/json,
                                              application/merge-patch+json) or JSON Patch
                                              replace ops (application/json-patch+json)
    GET   /api/customers/export.csv?page&page_size   the same page as CSV
    GET   /api/orders?page=N&page_size=M      same envelope as customers
    GET   /api/small                          ~2 KB: a JSON list of 8 customers (benchmark)
    GET   /gzip?page&page_size                a customer page, always gzip-encoded
    /admin/users…                             the CRM's own admin area (crm_admin.py)
    /slow, /echo, /stream                     test tools (diagnostics.py)

Paging: ``page`` from 1, ``page_size`` 1..1000 (default 50); a page past the end is empty.
Edits live in this app instance only (the shared data is never changed).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from gateway.demo import data
from gateway.demo.crm_admin import add_admin_routes
from gateway.demo.customers import (
    PatchError,
    apply_changes,
    json_patch_changes,
    merge_patch_changes,
)
from gateway.demo.diagnostics import add_diagnostic_routes
from gateway.demo.jsonhttp import json_error, json_response, page_of
from gateway.demo.recorder import MAX_BODY_BYTES, Recorder, middlewares
from gateway.demo.records import Page, RecordTable

SMALL_DOCUMENT = Page(number=1, size=8)  # ≈ 2 KB of JSON
MERGE_PATCH_TYPES = frozenset({"application/json", "application/merge-patch+json"})
JSON_PATCH_TYPE = "application/json-patch+json"


class _Crm:
    """Handlers over this app's view of the customers and orders."""

    def __init__(self) -> None:
        self.customers = RecordTable(data.customers())
        self.orders = RecordTable(data.orders())

    def _envelope(self, table: RecordTable, request: web.Request) -> dict[str, Any]:
        page = page_of(request)
        return {
            "data": table.page(page),
            "page": page.number,
            "page_size": page.size,
            "total": len(table),
        }

    def _customer_index(self, request: web.Request) -> int:
        raw = request.match_info["customer_id"]
        number = int(raw) if raw.isascii() and raw.isdecimal() and len(raw) < 10 else 0
        if not 1 <= number <= len(self.customers):
            raise json_error(
                404, "not_found", f"no customer {raw!r}; ids are 1..{len(self.customers)}"
            )
        return number - 1

    async def list_customers(self, request: web.Request) -> web.Response:
        return json_response(self._envelope(self.customers, request))

    async def list_orders(self, request: web.Request) -> web.Response:
        return json_response(self._envelope(self.orders, request))

    async def get_customer(self, request: web.Request) -> web.Response:
        return json_response(self.customers.get(self._customer_index(request)))

    async def patch_customer(self, request: web.Request) -> web.Response:
        index = self._customer_index(request)
        read_changes: Callable[[Any], dict[str, Any]]
        if request.content_type in MERGE_PATCH_TYPES:
            read_changes = merge_patch_changes
        elif request.content_type == JSON_PATCH_TYPE:
            read_changes = json_patch_changes
        else:
            allowed = ", ".join(sorted({*MERGE_PATCH_TYPES, JSON_PATCH_TYPE}))
            raise json_error(415, "unsupported_media_type", f"send the patch as one of: {allowed}")
        try:
            changes = read_changes(orjson.loads(await request.read()))
        except orjson.JSONDecodeError:
            raise json_error(400, "bad_body", "the body must be a JSON document") from None
        except PatchError as exc:
            raise json_error(400, "bad_patch", str(exc)) from None
        updated = apply_changes(self.customers.get(index), changes)
        self.customers.replace(index, updated)
        return json_response(updated)

    async def export_csv(self, request: web.Request) -> web.Response:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=data.CUSTOMER_FIELDS, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(self.customers.page(page_of(request)))
        return web.Response(
            text=out.getvalue(),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": 'attachment; filename="customers.csv"'},
        )

    async def small(self, request: web.Request) -> web.Response:
        return json_response(self.customers.page(SMALL_DOCUMENT))

    async def gzipped_page(self, request: web.Request) -> web.Response:
        body = gzip.compress(orjson.dumps(self._envelope(self.customers, request)), 6)
        return web.Response(
            body=body, content_type="application/json", headers={"Content-Encoding": "gzip"}
        )


def make_crm_app(recorder: Recorder | None = None) -> web.Application:
    """A fresh demo CRM application (its own edit overlay and admin users)."""
    app = web.Application(middlewares=middlewares(recorder, "crm"), client_max_size=MAX_BODY_BYTES)
    crm = _Crm()
    app.router.add_get("/api/customers", crm.list_customers)
    # Registered before "{customer_id}" so the export is never taken for an id.
    app.router.add_get("/api/customers/export.csv", crm.export_csv)
    app.router.add_get("/api/customers/{customer_id}", crm.get_customer)
    app.router.add_patch("/api/customers/{customer_id}", crm.patch_customer)
    app.router.add_get("/api/orders", crm.list_orders)
    app.router.add_get("/api/small", crm.small)
    app.router.add_get("/gzip", crm.gzipped_page)
    add_admin_routes(app)
    add_diagnostic_routes(app)
    return app

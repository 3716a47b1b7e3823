"""The demo ERP: a SOAP 1.1 upstream with 500 products and 5,000 invoices.

    POST /soap         SOAP 1.1 (the gateway strips its ``/erp`` prefix); the operation is
                       the Body's single child in ``http://demo.wardgate.dev/erp``. A
                       ``SOAPAction: "http://demo.wardgate.dev/erp/<Op>"`` header, when sent,
                       must name the same operation.
    GET  /soap?wsdl    the WSDL (``erp.wsdl``) with this server's address

Operations (children in the ERP namespace, responses use the ``erp`` prefix):

    GetProducts(Page?, PageSize?)   → GetProductsResponse/Products/Product*
    GetInvoices(Page?, PageSize?)   → GetInvoicesResponse/Invoices/Invoice*
    UpdateProduct(Product(Code, …)) → UpdateProductResponse/Product

A listing response also carries ``Page``, ``PageSize`` and ``Total`` after its records.

Anything else, malformed XML included, gets a SOAP 1.1 Fault (HTTP 500). Updates live in
this app instance only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from importlib import resources
from xml.sax.saxutils import escape

from aiohttp import web
from lxml import etree

from gateway.demo import data
from gateway.demo.recorder import MAX_BODY_BYTES, Recorder, middlewares
from gateway.demo.records import ParameterError, RecordTable, parse_page
from gateway.demo.soap import (
    ACCEPTED_CONTENT_TYPES,
    CONTENT_TYPE,
    ERP_NS,
    SoapFault,
    elements,
    envelope,
    fault_envelope,
    hardened_parser,
    only_child,
    parse_call,
    text_fields,
)

WSDL_LOCATION_PLACEHOLDER = "http://localhost/soap"
_WSDL_TEMPLATE = resources.files("gateway.demo").joinpath("erp.wsdl").read_text("utf-8")
_MONEY = re.compile(r"\d{1,12}(\.\d{1,2})?")
_COUNT = re.compile(r"\d{1,9}")
_MAX_TEXT = 200
_PAGING_FIELDS = ("Page", "PageSize")


def _money(field: str, text: str) -> str:
    if not _MONEY.fullmatch(text.strip()):
        raise SoapFault(f"{field} must be an amount like 1280.00, got {text!r}")
    return f"{Decimal(text.strip()):.2f}"


def _count(field: str, text: str) -> str:
    if not _COUNT.fullmatch(text.strip()):
        raise SoapFault(f"{field} must be a whole number of 0 or more, got {text!r}")
    return str(int(text))


def _label(field: str, text: str) -> str:
    if not text.strip() or len(text) > _MAX_TEXT:
        raise SoapFault(f"{field} must be non-empty text of at most {_MAX_TEXT} characters")
    return text.strip()


_PRODUCT_CHECKS: dict[str, Callable[[str, str], str]] = {
    "Name": _label,
    "ListPrice": _money,
    "CostPrice": _money,
    "Stock": _count,
    "Warehouse": _label,
}


class _XmlRecords:
    """One ERP collection in this app, each record's XML rendered once and kept until changed.

    Escaping every field on every call cost ≈ 6 µs per record; a cached page is a join.
    """

    def __init__(self, records: tuple[data.Record, ...], kind: str, names: tuple[str, ...]) -> None:
        self.table = RecordTable(records)
        self.kind = kind
        self.names = names
        self._xml: dict[int, str] = {}

    def xml(self, index: int) -> str:
        """``<erp:Kind>…</erp:Kind>`` for the record at ``index``."""
        cached = self._xml.get(index)
        if cached is None:
            fields = elements(self.table.get(index), self.names)
            cached = self._xml[index] = f"<erp:{self.kind}>{fields}</erp:{self.kind}>"
        return cached

    def replace(self, index: int, record: data.Record) -> None:
        """Store a new version of the record at ``index`` (its XML is rendered again)."""
        self.table.replace(index, record)
        self._xml.pop(index, None)

    def listing(self, element: etree._Element) -> str:
        """The ``Get<Kind>sResponse`` for a ``Get<Kind>s`` request element."""
        fields = text_fields(element, _PAGING_FIELDS)
        try:
            page = parse_page(fields.get("Page"), fields.get("PageSize"))
        except ParameterError as exc:
            raise SoapFault(str(exc)) from None
        start = (page.number - 1) * page.size
        rows = "".join(map(self.xml, range(start, min(start + page.size, len(self.table)))))
        kind = self.kind
        return (
            f"<erp:Get{kind}sResponse><erp:{kind}s>{rows}</erp:{kind}s>"
            f"<erp:Page>{page.number}</erp:Page><erp:PageSize>{page.size}</erp:PageSize>"
            f"<erp:Total>{len(self.table)}</erp:Total></erp:Get{kind}sResponse>"
        )


class _Erp:
    """Handlers over this app's view of the products and invoices."""

    def __init__(self) -> None:
        self.products = _XmlRecords(data.products(), "Product", data.PRODUCT_FIELDS)
        self.invoices = _XmlRecords(data.invoices(), "Invoice", data.INVOICE_FIELDS)
        self.product_index = {p["Code"]: i for i, p in enumerate(data.products())}
        self.parser = hardened_parser()
        self.operations: dict[str, Callable[[etree._Element], str]] = {
            "GetProducts": self.products.listing,
            "GetInvoices": self.invoices.listing,
            "UpdateProduct": self.update_product,
        }
        self.operation_names = frozenset(self.operations)

    async def soap(self, request: web.Request) -> web.Response:
        try:
            if request.content_type not in ACCEPTED_CONTENT_TYPES:
                raise SoapFault(
                    f"send SOAP 1.1 as {CONTENT_TYPE}, not {request.content_type!r}",
                    http_status=415,
                )
            call = parse_call(await request.read(), self.parser, self.operation_names)
            _check_soap_action(request.headers.get("SOAPAction"), call.operation)
            body, status = envelope(self.operations[call.operation](call.element)), 200
        except SoapFault as fault:
            body, status = fault_envelope(fault), fault.http_status
        return web.Response(body=body, status=status, content_type=CONTENT_TYPE, charset="utf-8")

    async def wsdl(self, request: web.Request) -> web.Response:
        if "wsdl" not in request.query:
            raise web.HTTPBadRequest(text="GET /soap?wsdl returns the WSDL; calls use POST /soap")
        # The Host header is the client's text: escape it before it goes into XML.
        location = escape(f"{request.scheme}://{request.host}/soap", {'"': "&quot;"})
        text = _WSDL_TEMPLATE.replace(WSDL_LOCATION_PLACEHOLDER, location)
        return web.Response(text=text, content_type=CONTENT_TYPE, charset="utf-8")

    def update_product(self, element: etree._Element) -> str:
        fields = text_fields(only_child(element, "Product"), data.PRODUCT_FIELDS)
        code = fields.pop("Code", "").strip()
        if code not in self.product_index:
            raise SoapFault(f"no product with Code {code!r}; codes look like P-000123")
        if not fields:
            raise SoapFault("UpdateProduct changes nothing; send at least one field besides Code")
        changes = {name: _PRODUCT_CHECKS[name](name, text) for name, text in fields.items()}
        index = self.product_index[code]
        self.products.replace(index, {**self.products.table.get(index), **changes})
        return f"<erp:UpdateProductResponse>{self.products.xml(index)}</erp:UpdateProductResponse>"


def _check_soap_action(header: str | None, operation: str) -> None:
    action = (header or "").strip().strip('"')
    if action and action != f"{ERP_NS}/{operation}":
        raise SoapFault(
            f"SOAPAction {header!r} does not match the Body's operation {operation}; "
            f'send SOAPAction: "{ERP_NS}/{operation}"'
        )


def make_erp_app(recorder: Recorder | None = None) -> web.Application:
    """A fresh demo ERP application (its own product updates)."""
    app = web.Application(middlewares=middlewares(recorder, "erp"), client_max_size=MAX_BODY_BYTES)
    erp = _Erp()
    app.router.add_post("/soap", erp.soap)
    app.router.add_get("/soap", erp.wsdl)
    return app

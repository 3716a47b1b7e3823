"""The demo ERP's SOAP 1.1 contract, over real sockets, including every fault path."""

from __future__ import annotations

import aiohttp
import pytest
from lxml import etree

from gateway.demo import data

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
ERP = "http://demo.wardgate.dev/erp"
NS = {"soapenv": SOAP_ENV, "erp": ERP}


def envelope(body: str, header: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:erp="{ERP}">'
        f"{header}<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )


async def call(
    http: aiohttp.ClientSession,
    erp: str,
    document: str | bytes,
    action: str | None = None,
    content_type: str = "text/xml; charset=utf-8",
) -> tuple[int, etree._Element]:
    headers = {"Content-Type": content_type}
    if action is not None:
        headers["SOAPAction"] = f'"{ERP}/{action}"'
    payload = document.encode() if isinstance(document, str) else document
    async with http.post(f"{erp}/soap", data=payload, headers=headers) as response:
        assert response.content_type == "text/xml"
        return response.status, etree.fromstring(await response.read())


def fault_of(root: etree._Element) -> tuple[str, str]:
    fault = root.find("soapenv:Body/soapenv:Fault", NS)
    assert fault is not None, etree.tostring(root)
    return fault.findtext("faultcode"), fault.findtext("faultstring")


def records(root: etree._Element, path: str) -> list[dict[str, str]]:
    return [
        {etree.QName(field).localname: field.text for field in record}
        for record in root.findall(f"soapenv:Body/{path}", NS)
    ]


async def test_get_products_pages_through_the_catalog(erp: str, http) -> None:
    status, root = await call(
        http,
        erp,
        envelope(
            "<erp:GetProducts><erp:Page>2</erp:Page><erp:PageSize>3</erp:PageSize></erp:GetProducts>"
        ),
        "GetProducts",
    )
    assert status == 200
    products = records(root, "erp:GetProductsResponse/erp:Products/erp:Product")
    assert products == list(data.products()[3:6])
    response = root.find("soapenv:Body/erp:GetProductsResponse", NS)
    assert [
        response.findtext(f"erp:{n}", namespaces=NS) for n in ("Page", "PageSize", "Total")
    ] == ["2", "3", "500"]


async def test_get_products_defaults_to_50_and_needs_no_soap_action(erp: str, http) -> None:
    status, root = await call(http, erp, envelope("<erp:GetProducts/>"))
    assert status == 200
    assert len(records(root, "erp:GetProductsResponse/erp:Products/erp:Product")) == 50


async def test_get_invoices_returns_bank_accounts(erp: str, http) -> None:
    body = (
        "<erp:GetInvoices><erp:PageSize>1000</erp:PageSize><erp:Page>5</erp:Page></erp:GetInvoices>"
    )
    status, root = await call(http, erp, envelope(body), "GetInvoices")
    assert status == 200
    invoices = records(root, "erp:GetInvoicesResponse/erp:Invoices/erp:Invoice")
    assert invoices == list(data.invoices()[4000:5000])
    assert set(invoices[0]) == {"Number", "CustomerName", "Amount", "IssuedAt", "BankAccount"}


async def test_a_page_past_the_end_is_empty(erp: str, http) -> None:
    body = "<erp:GetProducts><erp:Page>99</erp:Page></erp:GetProducts>"
    status, root = await call(http, erp, envelope(body), "GetProducts")
    assert status == 200
    assert records(root, "erp:GetProductsResponse/erp:Products/erp:Product") == []


async def test_update_product_changes_it_for_later_reads(erp: str, http) -> None:
    update = (
        "<erp:UpdateProduct><erp:Product><erp:Code>P-000010</erp:Code>"
        "<erp:CostPrice>12.5</erp:CostPrice><erp:Stock>7</erp:Stock>"
        "<erp:Name>新品 &amp; 特价 &lt;A&gt;</erp:Name></erp:Product></erp:UpdateProduct>"
    )
    status, root = await call(http, erp, envelope(update), "UpdateProduct")
    assert status == 200
    expected = {**data.products()[9], "CostPrice": "12.50", "Stock": "7", "Name": "新品 & 特价 <A>"}
    assert records(root, "erp:UpdateProductResponse/erp:Product") == [expected]
    listing = envelope("<erp:GetProducts><erp:PageSize>10</erp:PageSize></erp:GetProducts>")
    _, root = await call(http, erp, listing, "GetProducts")
    assert records(root, "erp:GetProductsResponse/erp:Products/erp:Product")[9] == expected
    assert data.products()[9]["Stock"] != "7"


async def test_the_wsdl_is_served_with_this_servers_address(erp: str, http) -> None:
    async with http.get(f"{erp}/soap?wsdl") as response:
        assert response.status == 200
        wsdl = etree.fromstring(await response.read())
    wsdl_ns = {
        "wsdl": "http://schemas.xmlsoap.org/wsdl/",
        "soap": "http://schemas.xmlsoap.org/wsdl/soap/",
    }
    operations = {op.get("name") for op in wsdl.findall("wsdl:portType/wsdl:operation", wsdl_ns)}
    assert operations == {"GetProducts", "GetInvoices", "UpdateProduct"}
    actions = {op.get("soapAction") for op in wsdl.iterfind(".//soap:operation", wsdl_ns)}
    assert actions == {f"{ERP}/{name}" for name in operations}
    address = wsdl.find("wsdl:service/wsdl:port/soap:address", wsdl_ns)
    assert address.get("location") == f"{erp}/soap"
    async with http.get(f"{erp}/soap") as response:
        assert response.status == 400


async def test_a_hostile_host_header_cannot_inject_into_the_wsdl(erp: str, http) -> None:
    hostile = 'evil"/><x a="'
    async with http.get(f"{erp}/soap?wsdl", headers={"Host": hostile}) as response:
        assert response.status == 200
        wsdl = etree.fromstring(await response.read())
    assert wsdl.find(".//x") is None
    address = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address.get("location") == f"http://{hostile}/soap"


XXE = (
    '<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    + envelope("<erp:GetProducts><erp:Page>&x;</erp:Page></erp:GetProducts>").split("?>", 1)[1]
)
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE e [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    + envelope("<erp:GetProducts><erp:Page>&c;</erp:Page></erp:GetProducts>").split("?>", 1)[1]
)


@pytest.mark.parametrize(
    ("document", "action", "code", "says"),
    [
        ("", None, "Client", "empty"),
        ("<soapenv:Envelope", None, "Client", "well-formed"),
        ("<html><body>hi</body></html>", None, "Client", "not a SOAP 1.1 Envelope"),
        (
            '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>',
            None,
            "VersionMismatch",
            "SOAP 1.1",
        ),
        (envelope("").replace("<soapenv:Body></soapenv:Body>", ""), None, "Client", "no Body"),
        (envelope(""), None, "Client", "exactly one operation"),
        (envelope("<erp:GetProducts/><erp:UpdateProduct/>"), None, "Client", "exactly one"),
        (envelope("<erp:DeleteEverything/>"), None, "Client", "unknown operation"),
        (envelope('<x:GetProducts xmlns:x="urn:other"/>'), None, "Client", "unknown operation"),
        (envelope("<GetProducts/>"), None, "Client", "unknown operation"),
        (envelope("<erp:GetProducts/>"), "GetInvoices", "Client", "does not match"),
        (envelope("<erp:UpdateProduct/>"), "GetProducts", "Client", "does not match"),
        (
            envelope("<erp:GetProducts><Page>2</Page></erp:GetProducts>"),
            None,
            "Client",
            "unexpected element",
        ),
        (
            envelope("<erp:GetProducts><erp:Sort>x</erp:Sort></erp:GetProducts>"),
            None,
            "Client",
            "unexpected",
        ),
        (
            envelope(
                "<erp:GetProducts><erp:Page>1</erp:Page><erp:Page>2</erp:Page></erp:GetProducts>"
            ),
            None,
            "Client",
            "twice",
        ),
        (
            envelope("<erp:GetProducts><erp:Page>0</erp:Page></erp:GetProducts>"),
            None,
            "Client",
            "page",
        ),
        (
            envelope("<erp:GetInvoices><erp:PageSize>5000</erp:PageSize></erp:GetInvoices>"),
            None,
            "Client",
            "page_size",
        ),
        (
            envelope(
                "<erp:GetProducts><erp:Page><erp:Page>1</erp:Page></erp:Page></erp:GetProducts>"
            ),
            None,
            "Client",
            "text only",
        ),
        (XXE, None, "Client", "DTD"),
        (LAUGHS, None, "Client", "DTD"),
        (
            envelope(
                "<erp:GetProducts/>",
                header=(
                    '<soapenv:Header><t:Tx xmlns:t="urn:tx" soapenv:mustUnderstand="1"/>'
                    "</soapenv:Header>"
                ),
            ),
            None,
            "MustUnderstand",
            "not understood",
        ),
    ],
)
async def test_bad_requests_get_a_soap_fault(
    erp: str, http, document: str, action: str | None, code: str, says: str
) -> None:
    status, root = await call(http, erp, document, action)
    assert status == 500
    faultcode, faultstring = fault_of(root)
    assert faultcode == f"soapenv:{code}"
    assert says in faultstring
    assert "root:" not in faultstring  # nothing of /etc/passwd comes back


@pytest.mark.parametrize(
    ("product", "says"),
    [
        ("<erp:Code>P-999999</erp:Code><erp:Stock>1</erp:Stock>", "no product"),
        ("<erp:Stock>1</erp:Stock>", "no product"),
        ("<erp:Code>P-000001</erp:Code>", "changes nothing"),
        ("<erp:Code>P-000001</erp:Code><erp:Colour>red</erp:Colour>", "unexpected element"),
        ("<erp:Code>P-000001</erp:Code><erp:ListPrice>-5</erp:ListPrice>", "ListPrice"),
        ("<erp:Code>P-000001</erp:Code><erp:ListPrice>NaN</erp:ListPrice>", "ListPrice"),
        ("<erp:Code>P-000001</erp:Code><erp:CostPrice>1.234</erp:CostPrice>", "CostPrice"),
        ("<erp:Code>P-000001</erp:Code><erp:Stock>1.5</erp:Stock>", "Stock"),
        ("<erp:Code>P-000001</erp:Code><erp:Name>  </erp:Name>", "Name"),
        ("<erp:Code>P-000001</erp:Code><CostPrice>1.00</CostPrice>", "unexpected element"),
        (
            "<erp:Code>P-000001</erp:Code><erp:Stock>5</erp:Stock><erp:Stock>6</erp:Stock>",
            "twice",
        ),
    ],
)
async def test_rejected_updates_fault_and_change_nothing(
    erp: str, http, product: str, says: str
) -> None:
    update = f"<erp:UpdateProduct><erp:Product>{product}</erp:Product></erp:UpdateProduct>"
    status, root = await call(http, erp, envelope(update), "UpdateProduct")
    assert status == 500
    assert says in fault_of(root)[1]
    listing = envelope("<erp:GetProducts><erp:PageSize>1</erp:PageSize></erp:GetProducts>")
    _, root = await call(http, erp, listing, "GetProducts")
    assert records(root, "erp:GetProductsResponse/erp:Products/erp:Product") == [data.products()[0]]


async def test_update_needs_exactly_one_product_element(erp: str, http) -> None:
    for inner in ("", "<erp:Product/><erp:Product/>", "<erp:Item/>"):
        status, root = await call(
            http, erp, envelope(f"<erp:UpdateProduct>{inner}</erp:UpdateProduct>")
        )
        assert status == 500
        assert "exactly one erp:Product" in fault_of(root)[1]


async def test_soap_must_be_sent_as_xml(erp: str, http) -> None:
    status, root = await call(
        http, erp, envelope("<erp:GetProducts/>"), content_type="application/json"
    )
    assert status == 415
    assert "text/xml" in fault_of(root)[1]

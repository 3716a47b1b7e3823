"""SOAP/XML responses: hidden elements never leave, whatever the prefixes; hostile XML refused."""

from __future__ import annotations

import pytest
from lxml import etree

from gateway.errors import UpstreamUnavailable
from gateway.fieldplan import FieldPlan, HideAction
from gateway.masking import REDACTED

from .helpers import ERP, SOAP11, SOAP12, plan_hiding


def products_response(items: str, *, soap: str = SOAP11, env: str = "s", erp: str = "e") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><{env}:Envelope xmlns:{env}="{soap}"><{env}:Body>'
        f'<{erp}:GetProductsResponse xmlns:{erp}="{ERP}"><{erp}:Products>{items}</{erp}:Products>'
        f"</{erp}:GetProductsResponse></{env}:Body></{env}:Envelope>"
    ).encode()


def product(code: str, cost: str = "61.25", erp: str = "e") -> str:
    return (
        f"<{erp}:Product><{erp}:Code>{code}</{erp}:Code><{erp}:Name>Widget</{erp}:Name>"
        f"<{erp}:ListPrice>99.00</{erp}:ListPrice><{erp}:CostPrice>{cost}</{erp}:CostPrice>"
        f"<{erp}:Stock>7</{erp}:Stock></{erp}:Product>"
    )


def texts(body: bytes, local: str) -> list[str]:
    root = etree.fromstring(body)
    return [el.text or "" for el in root.iter() if etree.QName(el).localname == local]


@pytest.fixture
def cost_hidden(catalog) -> FieldPlan:
    return plan_hiding("product", catalog, "CostPrice")


def test_hidden_element_removed_and_records_counted(run_filter, products, cost_hidden):
    result = run_filter(
        products,
        cost_hidden,
        "text/xml; charset=utf-8",
        products_response(product("A") + product("B")),
    )
    assert b"61.25" not in result.body and texts(result.body, "CostPrice") == []
    assert texts(result.body, "Code") == ["A", "B"]
    assert result.records == 2 and result.masked_fields == ("CostPrice",)


@pytest.mark.parametrize("env,erp", [("soapenv", "ns1"), ("S", "x"), ("a", "b")])
def test_other_prefixes_than_the_upstream(run_filter, products, cost_hidden, env, erp):
    body = products_response(product("A", erp=erp), env=env, erp=erp)
    result = run_filter(products, cost_hidden, "text/xml", body)
    assert b"61.25" not in result.body and result.records == 1


def test_default_namespace_and_soap12(run_filter, products, cost_hidden):
    body = (
        f'<Envelope xmlns="{SOAP12}"><Body><GetProductsResponse xmlns="{ERP}"><Products>'
        "<Product><Code>A</Code><CostPrice>61.25</CostPrice></Product></Products>"
        "</GetProductsResponse></Body></Envelope>"
    ).encode()
    result = run_filter(products, cost_hidden, "application/soap+xml", body)
    assert b"61.25" not in result.body and result.records == 1


def test_records_in_a_foreign_namespace_are_not_records_but_the_net_still_holds(
    run_filter, products
):
    body = products_response(product("A")).replace(ERP.encode(), b"urn:evil")
    result = run_filter(products, FieldPlan("product"), "text/xml", body)
    assert result.records == 0
    assert b"61.25" not in result.body  # CostPrice is on the always-mask list


def test_cdata_and_comments_cannot_split_or_hide_a_value(
    run_filter, products, cost_hidden, catalog
):
    items = (
        "<e:Product><e:Code>A</e:Code><e:CostPrice>12<!-- split -->34<![CDATA[56]]></e:CostPrice>"
        "<e:Name><!-- CostPrice 777 --><![CDATA[Widget <b>]]></e:Name></e:Product>"
    )
    partial = plan_hiding("product", catalog, "CostPrice", CostPrice=HideAction.REDACT)
    result = run_filter(products, partial, "text/xml", products_response(items))
    assert texts(result.body, "CostPrice") == [REDACTED]
    for leaked in (b"12", b"34", b"56", b"777"):
        assert leaked not in result.body
    assert texts(result.body, "Name") == ["Widget <b>"]


def test_hidden_attribute_and_attribute_inside_hidden_element(run_filter, products, cost_hidden):
    items = (
        '<e:Product e:CostPrice="41.5"><e:Code>A</e:Code>'
        '<e:CostPrice cur="CNY">9</e:CostPrice></e:Product>'
    )
    result = run_filter(products, cost_hidden, "text/xml", products_response(items))
    assert b"41.5" not in result.body and b">9<" not in result.body


def test_partial_hash_and_mixed_case_element(run_filter, resources, catalog, masker):
    invoices = resources.match("erp", "POST", "/soap", {"SOAPAction": "GetInvoices"}, None)
    body = (
        f'<s:Envelope xmlns:s="{SOAP11}"><s:Body>'
        f'<e:GetInvoicesResponse xmlns:e="{ERP}"><e:Invoices>'
        "<e:Invoice><e:Number>N1</e:Number><e:bankaccount>6222020200112233445</e:bankaccount>"
        "<e:CustomerName>Acme</e:CustomerName></e:Invoice></e:Invoices></e:GetInvoicesResponse>"
        "</s:Body></s:Envelope>"
    ).encode()
    plan = plan_hiding(
        "invoice", catalog, "BankAccount", "CustomerName", CustomerName=HideAction.HASH
    )
    result = run_filter(invoices, plan, "text/xml", body)
    assert texts(result.body, "bankaccount") == ["6222***********3445"]
    assert texts(result.body, "CustomerName") == [masker.hash("Acme")]


def test_soap_fault_passes_unchanged(run_filter, products, cost_hidden):
    body = (
        f'<s:Envelope xmlns:s="{SOAP11}"><s:Body><s:Fault><faultcode>s:Client</faultcode>'
        "<faultstring>Unknown product</faultstring></s:Fault></s:Body></s:Envelope>"
    ).encode()
    result = run_filter(products, cost_hidden, "text/xml", body)
    assert result.body == body and result.records == 0


def test_soap_fault_still_gets_the_safety_net(run_filter, products, cost_hidden):
    body = (
        f'<s:Envelope xmlns:s="{SOAP11}"><s:Body><s:Fault><faultcode>s:Server</faultcode>'
        "<detail><password>db-pass-1</password></detail></s:Fault></s:Body></s:Envelope>"
    ).encode()
    result = run_filter(products, cost_hidden, "text/xml", body)
    assert b"db-pass-1" not in result.body


def test_unmapped_xml_gets_the_safety_net(run_filter):
    body = b"<config><db><Password>pw</Password><host>h</host></db></config>"
    result = run_filter(None, None, "application/xml", body)
    assert b">pw<" not in result.body and b"<host>h</host>" in result.body


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<lolz>&lol3;</lolz>"""


def quadratic_blowup() -> bytes:
    value = "A" * 50_000
    return (f'<!DOCTYPE k [<!ENTITY a "{value}">]><k>' + "&a;" * 5_000 + "</k>").encode()


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        quadratic_blowup(),
        b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
        b"<a>" * 10_000 + b"</a>" * 10_000,
        b"<a><b>unclosed</a>",
        "<?xml version='1.0' encoding='utf-16'?><!DOCTYPE r [<!ENTITY x 'y'>]><r>&x;</r>".encode(
            "utf-16"
        ),
    ],
    ids=["billion-laughs", "quadratic", "xxe-file", "deep-10000", "malformed", "utf16-dtd"],
)
def test_hostile_xml_is_refused(run_filter, products, cost_hidden, body):
    with pytest.raises(UpstreamUnavailable) as err:
        run_filter(products, cost_hidden, "text/xml", body)
    assert err.value.reason_id == "response_unfilterable"
    assert b"root:" not in str(err.value.detail).encode()


def test_external_entity_over_http_fetches_nothing(
    run_filter, products, cost_hidden, loopback_server
):
    for body in (
        f'<!DOCTYPE r [<!ENTITY x SYSTEM "{loopback_server.url}/xxe">]><r>&x;</r>',
        f'<!DOCTYPE r SYSTEM "{loopback_server.url}/dtd"><r>&leak;</r>',
        f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{loopback_server.url}/param"> %p;]><r/>',
    ):
        for encoded in (body.encode(), body.encode("utf-16")):  # UTF-16 gets past the byte check
            with pytest.raises(UpstreamUnavailable):
                run_filter(products, cost_hidden, "text/xml", encoded)
        with pytest.raises(UpstreamUnavailable):
            run_filter(None, None, "text/xml", body.encode())
    assert loopback_server.requests == []


def test_depth_just_inside_the_limit_is_filtered(run_filter, products, cost_hidden):
    items = (
        "<e:Product><e:Code>A</e:Code>"
        + "<e:x>" * 200
        + "<e:CostPrice>55.5</e:CostPrice>"
        + "</e:x>" * 200
        + "</e:Product>"
    )
    result = run_filter(products, cost_hidden, "text/xml", products_response(items))
    assert b"55.5" not in result.body


def test_content_type_must_be_xml(run_filter, products, cost_hidden):
    with pytest.raises(UpstreamUnavailable):
        run_filter(products, cost_hidden, "application/json", products_response(product("A")))


def test_pii_masked_in_uncovered_elements_only(run_filter, resources, catalog):
    invoices = resources.match("erp", "POST", "/soap", {"SOAPAction": "GetInvoices"}, None)
    body = (
        f'<s:Envelope xmlns:s="{SOAP11}"><s:Body>'
        f'<e:GetInvoicesResponse xmlns:e="{ERP}"><e:Invoices><e:Invoice>'
        "<e:CustomerName>13800138000</e:CustomerName>"
        '<e:Memo by="li@acme.cn">call 13912345678</e:Memo>'
        "</e:Invoice></e:Invoices></e:GetInvoicesResponse></s:Body></s:Envelope>"
    ).encode()
    result = run_filter(invoices, FieldPlan("invoice", mask_pii=True), "text/xml", body)
    assert texts(result.body, "CustomerName") == ["13800138000"]  # declared: the plan decides
    assert texts(result.body, "Memo") == ["call *******5678"]
    assert b"li@acme.cn" not in result.body
    assert result.pii_hits == {"cn_mobile": 2, "email": 1}

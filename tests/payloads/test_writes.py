"""Write guard: every way of naming a write-denied field is refused, naming the field."""

from __future__ import annotations

import orjson
import pytest

from gateway.errors import BadRequest, Forbidden
from gateway.fieldplan import FieldPlan
from gateway.payloads import guard_write

from .helpers import ERP, SOAP11, SOAP12

PLAN = FieldPlan("customer", write_denied=frozenset({"phone", "contact/name", "a~b"}))
PRODUCT_PLAN = FieldPlan("product", write_denied=frozenset({"CostPrice"}))


@pytest.fixture
def customer(resources):
    return resources.match("crm", "PATCH", "/api/customers/1", {}, None)


@pytest.fixture
def update_product(resources):
    return resources.match("erp", "POST", "/soap", {"SOAPAction": "UpdateProduct"}, None)


def soap_update(inner: str, soap: str = SOAP11, prefix: str = "e") -> bytes:
    return (
        f'<s:Envelope xmlns:s="{soap}"><s:Body><{prefix}:UpdateProduct xmlns:{prefix}="{ERP}">'
        f"<{prefix}:Product><{prefix}:Code>P1</{prefix}:Code>{inner}</{prefix}:Product>"
        f"</{prefix}:UpdateProduct></s:Body></s:Envelope>"
    ).encode()


FORBIDDEN_JSON = [
    ("application/json", {"phone": "1"}),
    ("application/json", {"name": "x", "Phone": "1"}),
    ("application/json", {"contacts": [[{"deep": {"phone": "1"}}]]}),
    ("application/merge-patch+json", {"phone": None}),
    ("application/vnd.acme+json", {"PHONE": "1"}),
    ("application/json-patch+json", [{"op": "replace", "path": "/phone", "value": "1"}]),
    ("application/json-patch+json", [{"op": "add", "path": "/contacts/0/phone", "value": "1"}]),
    ("application/json-patch+json", [{"op": "remove", "path": "/phone"}]),
    ("application/json-patch+json", [{"op": "add", "path": "/contact~1name", "value": "x"}]),
    ("application/json-patch+json", [{"op": "add", "path": "/a~0b", "value": "x"}]),
    ("application/json-patch+json", [{"op": "move", "from": "/phone", "path": "/x"}]),
    ("application/json-patch+json", [{"op": "copy", "from": "/x", "path": "/phone"}]),
    ("application/json-patch+json", [{"op": "add", "path": "", "value": {"phone": "1"}}]),
    (
        "application/json-patch+json",
        [{"op": "add", "path": "/contact", "value": {"x": [{"phone": 1}]}}],
    ),
]


@pytest.mark.parametrize("content_type,doc", FORBIDDEN_JSON)
def test_json_ways_of_naming_a_denied_field(customer, content_type, doc):
    with pytest.raises(Forbidden) as err:
        guard_write(customer, PLAN, content_type, orjson.dumps(doc))
    assert err.value.reason_id == "field_write_denied"
    assert err.value.extra["field"].casefold() in {"phone", "contact/name", "a~b"}
    assert err.value.extra["field"] in err.value.detail


def test_unicode_escaped_key_is_denied(customer):
    with pytest.raises(Forbidden):
        guard_write(customer, PLAN, "application/json", b'{"ph\\u006fne": "1"}')


@pytest.mark.parametrize(
    "body",
    [
        b"name=x&phone=1",
        b"name=x&Phone=1",
        b"customer%5Bphone%5D=1",
        b"customer.phone=1",
        b"ph%6Fne=1",
        b"name=x;phone=1",
    ],
)
def test_form_fields(customer, body):
    with pytest.raises(Forbidden):
        guard_write(customer, PLAN, "application/x-www-form-urlencoded", body)


def test_multipart_field_names(customer):
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="name"\r\n\r\nAcme\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="phone"\r\n\r\n1\r\n--XyZ--\r\n'
    )
    with pytest.raises(Forbidden):
        guard_write(customer, PLAN, "multipart/form-data; boundary=XyZ", body)


@pytest.mark.parametrize(
    "body",
    [
        soap_update("<e:CostPrice>1</e:CostPrice>"),
        soap_update("<x:costprice xmlns:x='urn:other'>1</x:costprice>"),
        soap_update("<p:CostPrice>1</p:CostPrice>", soap=SOAP12, prefix="p"),
        soap_update('<e:Meta e:CostPrice="1"/>'),
        soap_update("<e:Extra><e:CostPrice><![CDATA[1]]></e:CostPrice></e:Extra>"),
    ],
)
def test_soap_elements_and_attributes(update_product, body):
    with pytest.raises(Forbidden) as err:
        guard_write(update_product, PRODUCT_PLAN, "text/xml; charset=utf-8", body)
    assert err.value.extra["field"].casefold() == "costprice"


def test_allowed_writes_pass(customer, update_product):
    guard_write(customer, PLAN, "application/json", b'{"name": "x", "nested": {"owner": "y"}}')
    guard_write(
        customer,
        PLAN,
        "application/json-patch+json",
        b'[{"op":"replace","path":"/name","value":"x"}]',
    )
    guard_write(customer, PLAN, "application/x-www-form-urlencoded", b"name=x&owner=y")
    guard_write(
        update_product, PRODUCT_PLAN, "text/xml", soap_update("<e:ListPrice>5</e:ListPrice>")
    )
    guard_write(customer, FieldPlan("customer"), "application/octet-stream", b"\x00anything")


@pytest.mark.parametrize(
    "content_type,body",
    [
        ("application/json", b"{not json"),
        ("application/json-patch+json", b'{"op":"add"}'),
        ("application/json-patch+json", b'[{"op":"explode","path":"/x"}]'),
        ("application/json-patch+json", b'[{"op":"add","path":"phone","value":1}]'),
        ("text/xml", b'<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>'),
        ("text/xml", b"<unclosed>"),
        ("application/x-www-form-urlencoded", b"name=\xff\xfe"),
        ("multipart/form-data; boundary=XyZ", b"no parts here"),
        ("text/plain", b"phone=1"),
        (None, b'{"phone": 1}'),
    ],
)
def test_unreadable_bodies_on_a_guarded_route_are_refused(customer, content_type, body):
    with pytest.raises(BadRequest) as err:
        guard_write(customer, PLAN, content_type, body)
    assert err.value.reason_id == "bad_body"

"""Resource map: which request is which entity; SOAP operations by URI, never by prefix."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import BadRequest, ConfigError
from gateway.resources import ResourceMap, parse_json_path

from .helpers import ERP, SOAP11, SOAP12


def envelope(op: str, soap: str = SOAP11, ns: str = ERP, prefix: str = "x") -> bytes:
    return (
        f'<env:Envelope xmlns:env="{soap}"><env:Header/><env:Body>'
        f'<{prefix}:{op} xmlns:{prefix}="{ns}"/></env:Body></env:Envelope>'
    ).encode()


@pytest.mark.parametrize(
    "method,path,entity,fmt,records",
    [
        ("GET", "/api/customers", "customer", "json", "$.data[*]"),
        ("GET", "/api/customers?page=2&page_size=50", "customer", "json", "$.data[*]"),
        ("GET", "/api/customers/", "customer", "json", "$.data[*]"),
        ("GET", "/API/Customers", "customer", "json", "$.data[*]"),
        ("get", "/api/customers/42", "customer", "json", "$"),
        ("PATCH", "/api/customers/42", "customer", "json", "$"),
        ("GET", "/api/customers/export.csv", "customer", "csv", "$"),
        ("GET", "/api/orders", "order", "json", "$.data[*]"),
    ],
)
def test_rest_routes(resources, method, path, entity, fmt, records):
    found = resources.match("crm", method, path, {}, None)
    assert found is not None
    assert (found.upstream, found.entity, found.format, found.records) == (
        "crm",
        entity,
        fmt,
        records,
    )


@pytest.mark.parametrize(
    "upstream,method,path",
    [
        ("crm", "DELETE", "/api/customers/1"),
        ("crm", "GET", "/api/customers/1/notes"),
        ("crm", "GET", "/api"),
        ("erp", "GET", "/api/customers"),
        ("nope", "GET", "/api/customers"),
    ],
)
def test_unmapped_requests(resources, upstream, method, path):
    assert resources.match(upstream, method, path, {}, None) is None


def test_most_specific_pattern_wins(tmp_path: Path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "upstreams:\n  u:\n    rest:\n"
        "      - {path: '/files/*', entity: file, format: json, records: $}\n"
        "      - {path: '/files/:id', entity: one, format: json, records: $}\n"
        "      - {path: '/files/latest', entity: latest, format: json, records: '$.items.*'}\n"
    )
    rmap = ResourceMap.load(path)
    assert rmap.match("u", "GET", "/files/latest", {}, None).entity == "latest"
    assert rmap.match("u", "GET", "/files/7", {}, None).entity == "one"
    assert rmap.match("u", "GET", "/files/7/raw/x", {}, None).entity == "file"
    assert rmap.match("u", "GET", "/files", {}, None).entity == "file"  # "*" may be empty
    assert rmap.match("u", "GET", "/filesx", {}, None) is None


@pytest.mark.parametrize(
    "headers,body,op",
    [
        ({"SOAPAction": f'"{ERP}/GetProducts"'}, None, "GetProducts"),
        ({"soapaction": "GetInvoices"}, None, "GetInvoices"),
        ({}, envelope("GetProducts"), "GetProducts"),
        ({}, envelope("GetInvoices", prefix="ns9"), "GetInvoices"),
        (
            {"Content-Type": f'application/soap+xml; charset=utf-8; action="{ERP}/GetProducts"'},
            envelope("GetProducts", SOAP12),
            "GetProducts",
        ),
        ({"SOAPAction": f"{ERP}/UpdateProduct"}, envelope("UpdateProduct"), "UpdateProduct"),
    ],
)
def test_soap_operations(resources, headers, body, op):
    found = resources.match("erp", "POST", "/soap", headers, body)
    assert found is not None and found.operation == op and found.format == "xml"


@pytest.mark.parametrize("op", ["GetProducts", "getproducts", "GETPRODUCTS"])
def test_soap_body_matches_generously(resources, op):
    # A lax upstream may ignore the namespace or the case: the filter must apply anyway.
    for ns in (ERP, "urn:evil"):
        found = resources.match("erp", "POST", "/soap", {}, envelope(op, ns=ns))
        assert found is not None and found.operation == "GetProducts"
    assert resources.match("erp", "POST", "/soap", {"SOAPAction": op}, None).entity == "product"


def test_unknown_soap_operation_is_unmapped(resources):
    assert resources.match("erp", "POST", "/soap", {}, envelope("GetWarehouses")) is None


@pytest.mark.parametrize(
    "headers,body",
    [
        ({"SOAPAction": "GetInvoices"}, envelope("GetProducts")),
        ({"SOAPAction": "GetProducts"}, envelope("DeleteEverything")),
        ({"SOAPAction": "Unknown"}, envelope("GetProducts")),
    ],
)
def test_soap_action_and_body_must_agree(resources, headers, body):
    with pytest.raises(BadRequest) as err:
        resources.match("erp", "POST", "/soap", headers, body)
    assert err.value.reason_id == "soap_operation_mismatch"


def test_soap_request_body_must_be_safe_xml(resources):
    with pytest.raises(BadRequest) as err:
        resources.match("erp", "POST", "/soap", {}, b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
    assert err.value.reason_id == "bad_body"


def test_needs_request_body(resources):
    assert resources.needs_request_body("erp", "POST", "/soap")
    assert resources.needs_request_body("erp", "post", "/SOAP/")
    assert not resources.needs_request_body("erp", "GET", "/soap")
    assert not resources.needs_request_body("crm", "POST", "/api/customers")


def test_json_path_subset():
    assert parse_json_path("$") == ()
    assert parse_json_path("$.data[*]") == (("key", "data"), ("all", "*"))
    assert parse_json_path("$['odd key'].*") == (("key", "odd key"), ("all", "*"))
    for bad in ("data", "$..x", "$.a[0]", "$[?(@.x)]"):
        with pytest.raises(ValueError):
            parse_json_path(bad)


REST_OK = "path: /a, entity: e, format: json, records: $"
SOAP_OK = "path: /s, namespace: 'urn:x'"


def rest(spec: str) -> str:
    return f"upstreams: {{u: {{rest: [{{{spec}}}]}}}}"


def soap_records(records: str) -> str:
    operations = f"operations: {{Op: {{entity: e, records: '{records}'}}}}"
    return f"upstreams: {{u: {{soap: [{{{SOAP_OK}, {operations}}}]}}}}"


@pytest.mark.parametrize(
    "text,named",
    [
        ("upstreams: [1]", "upstreams"),
        (rest("path: /a, entity: e, format: xml, records: $"), "format"),
        (rest("path: /a, entity: e, format: json, records: data"), "records"),
        (rest("path: a, entity: e, format: json, records: $"), "path"),
        (rest("path: '/a/*/b', entity: e, format: json, records: $"), "path"),
        (rest(REST_OK + ", methods: [FETCH]"), "methods"),
        (rest(REST_OK + ", extra: 1"), "extra"),
        (rest("path: /a, entity: 'no-such thing', format: json, records: $"), "entity"),
        (soap_records("q:Item"), "records"),
        (soap_records("(("), "records"),
        ("upstreams: {u: {graphql: []}}", "upstreams.u"),
        ("{: [", "YAML"),
    ],
)
def test_load_errors_name_file_key_and_value(tmp_path: Path, text, named):
    path = tmp_path / "resources.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        ResourceMap.load(path)
    assert str(path) in err.value.detail and named in err.value.detail


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        ResourceMap.load(tmp_path / "absent.yaml")

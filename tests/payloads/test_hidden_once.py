"""Every hidden value is hidden exactly once, from what the upstream sent (issue 3 follow-up).

A record inside a record (a ``//`` records XPath), a record inside an element the plan hides,
PII inside a hidden element: none of them may make a value hidden twice (a hash of the hash
breaks joins) or hidden from an already-edited copy. The property test reads the original
document and says what each value must become; both SOAP filters must give exactly that.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.fieldplan import FieldPlan, HideAction, HideRule
from gateway.masking import Masker, mask_pii
from gateway.payloads.json import Unfilterable, filter_json
from gateway.payloads.plan import compile_plan
from gateway.payloads.safexml import parse_xml
from gateway.resources import Resource, parse_json_path

from .helpers import ERP, SOAP11, plan_hiding
from .test_xml_streaming import CATALOG, MASKER, NAMES, PATHS, both_ways, documents, plans, xpath


class Expected:
    """What a filtered document must hold, read from the original and the plan."""

    def __init__(self, plan: FieldPlan, masker: Masker) -> None:
        self.rules = {name.casefold(): rule for name, rule in plan.hidden.items()}
        self.masker = masker
        self.pii = plan.mask_pii

    def rule(self, name: str) -> HideRule | None:
        return self.rules.get(etree.QName(name).localname.casefold())

    def plain(self, text: str | None) -> str:
        return mask_pii(text)[0] if self.pii and text else text or ""

    def removed(self, el: etree._Element) -> bool:
        rule = self.rule(el.tag)
        return rule is not None and rule.action is HideAction.REMOVE

    def check(self, original: etree._Element, out: etree._Element) -> None:
        """``out`` is ``original`` (not hidden itself) as the filter must write it."""
        attributes = {}
        for name, value in original.attrib.items():
            rule = self.rule(name)
            if rule is None:
                attributes[name] = self.plain(value)
            elif rule.action is not HideAction.REMOVE:
                attributes[name] = self.masker.hide_text(rule, value)
        assert dict(out.attrib) == attributes
        # A removed element's tail (its parent's text) joins the text before it.
        text, kept = self.plain(original.text), []
        for child in original:
            tail = self.plain(child.tail)
            if self.removed(child):
                if kept:
                    kept[-1][1] += tail
                else:
                    text += tail
            else:
                kept.append([child, tail])
        assert (out.text or "") == text
        assert len(out) == len(kept)
        for (child, tail), written in zip(kept, out, strict=True):
            assert (written.tail or "") == tail
            rule = self.rule(child.tag)
            if rule is None:
                self.check(child, written)
            else:  # hidden whole, once, from the upstream's text
                assert len(written) == 0 and not written.attrib
                hidden = self.masker.hide_text(rule, "".join(child.itertext()))
                assert (written.text or "") == hidden


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=documents(), plan=plans, path=st.sampled_from(sorted(PATHS.values())),
       chunk=st.integers(1, 400))  # fmt: skip
def test_each_value_is_hidden_once_from_what_the_upstream_sent(body, plan, path, chunk):
    assume(b"Fault>" not in body)  # a Fault without hidden names passes byte for byte
    original = parse_xml(body, error=Unfilterable)
    expected = Expected(plan, MASKER)
    for out, _records, masked in both_ways(body, path, plan, chunk):
        expected.check(original, etree.fromstring(out))
        assert masked <= set(plan.hidden)


def update_response(inner: str) -> bytes:
    return (
        f'<s:Envelope xmlns:s="{SOAP11}"><s:Body><e:UpdateProductResponse xmlns:e="{ERP}">'
        f"{inner}</e:UpdateProductResponse></s:Body></s:Envelope>"
    ).encode()


def product(code: str, body: str = "") -> str:
    return f"<e:Product><e:Code>{code}</e:Code><e:Supplier>ACME-0042</e:Supplier>{body}</e:Product>"


def values(body: bytes, local: str) -> list[str]:
    return [el.text or "" for el in etree.fromstring(body).iter(f"{{{ERP}}}{local}")]


NESTED = update_response(product("A") + product("B", product("B1", product("B11"))))
UPDATE_PATH = "e:UpdateProductResponse//e:Product"


def test_a_nested_record_is_hidden_like_a_top_level_one(run_filter, masker):
    plan = FieldPlan("product", hidden={
        "Code": HideRule("Code", HideAction.HASH),
        "Supplier": HideRule("Supplier", HideAction.PARTIAL, 2, 2),
    })  # fmt: skip
    resource = Resource("erp", "product", "xml", UPDATE_PATH, xpath=xpath(UPDATE_PATH))
    result = run_filter(resource, plan, "text/xml", NESTED)
    codes = values(result.body, "Code")
    assert codes == [masker.hash(code) for code in ("A", "B", "B1", "B11")]  # joins work
    assert values(result.body, "Supplier") == ["AC*****42"] * 4
    assert result.records == 4


def test_the_streaming_filter_hides_nested_records_once(catalog):
    plan = plan_hiding("product", catalog, "Code", Code=HideAction.HASH)
    for out, records, masked in both_ways(NESTED, UPDATE_PATH, plan, 16):
        assert values(out, "Code") == [MASKER.hash(code) for code in ("A", "B", "B1", "B11")]
        assert (records, masked) == (4, {"Code"})


def test_a_hidden_element_is_hashed_from_its_text_before_pii_masking(run_filter, catalog, masker):
    notes = "<e:Notes>call 13800138000 <e:By>li@acme.cn</e:By> today</e:Notes>"
    plan = plan_hiding("product", catalog, "Notes", mask_pii=True, Notes=HideAction.HASH)
    resource = Resource("erp", "product", "xml", UPDATE_PATH, xpath=xpath(UPDATE_PATH))
    result = run_filter(resource, plan, "text/xml", update_response(product("A", notes)))
    assert values(result.body, "Notes") == [masker.hash("call 13800138000 li@acme.cn today")]


def test_records_inside_a_hidden_element_go_with_it(run_filter, catalog, masker):
    plan = plan_hiding("product", catalog, "Code", "Batch", Code=HideAction.HASH,
                       Batch=HideAction.HASH)  # fmt: skip
    batch = f"<e:Batch>{product('A')}</e:Batch>"
    resource = Resource("erp", "product", "xml", UPDATE_PATH, xpath=xpath(UPDATE_PATH))
    result = run_filter(resource, plan, "text/xml", update_response(batch))
    assert values(result.body, "Batch") == [masker.hash("AACME-0042")]
    assert result.masked_fields == ("Batch",)


def test_pii_after_a_record_is_masked_before_a_removed_element_joins_its_tail(catalog):
    # "li@acme.cn" follows a record; the removed <Notes> after it brings its tail "v1" next to
    # it. Joined first, "li@acme.cnv1" no longer reads as an e-mail and would leave unmasked.
    body = update_response(f"{product('A')}li@acme.cn<e:Notes>x</e:Notes>v1")
    plan = plan_hiding("product", catalog, "Notes", mask_pii=True, Notes=HideAction.REMOVE)
    for out, records, _ in both_ways(body, "e:UpdateProductResponse/e:Product", plan, 16):
        assert b"li@acme.cn" not in out and b"**@acme.cnv1" in out
        assert records == 1


def test_json_copies_at_any_depth_are_hidden_once_by_the_same_rule(
    run_filter, customers, catalog, masker
):
    plan = plan_hiding("customer", catalog, "id_number", "owner", owner=HideAction.HASH)
    record = {"id_number": "11010519491231002X", "owner": "sales1"}
    body = {"data": [record, record | {"related": [record]}], "meta": {"copy": record}}
    doc = orjson.loads(run_filter(customers, plan, "application/json", orjson.dumps(body)).body)
    copies = [*doc["data"], doc["data"][1]["related"][0], doc["meta"]["copy"]]
    assert {c["owner"] for c in copies} == {masker.hash("sales1")}
    assert {c["id_number"] for c in copies} == {"110105********002X"}


def test_json_records_under_a_wildcard_path_are_hidden_once(run_filter, catalog, masker):
    path = "$.*[*]"
    resource = Resource("crm", "customer", "json", path, json_path=parse_json_path(path))
    plan = plan_hiding("customer", catalog, "owner", owner=HideAction.HASH)
    body = orjson.dumps({"a": [{"owner": "sales1"}], "b": [{"owner": "sales1"}, {"x": 1}]})
    result = run_filter(resource, plan, "application/json", body)
    doc = orjson.loads(result.body)
    assert doc["a"][0]["owner"] == doc["b"][0]["owner"] == masker.hash("sales1")
    assert result.records == 3


def json_hidden_once(node: Any, expected: Expected) -> Any:
    """The document as every JSON path must write it: each hidden value hidden once."""
    if type(node) is list:
        return [json_hidden_once(v, expected) for v in node]
    if type(node) is str:
        return mask_pii(node)[0] if expected.pii else node
    if type(node) is not dict:
        return node
    out = {}
    for key, value in node.items():
        rule = expected.rules.get(key.casefold())
        if rule is None:
            out[key] = json_hidden_once(value, expected)
        elif rule.action is not HideAction.REMOVE:
            out[key] = expected.masker.hide(rule, value)
    return out


json_values = st.recursive(
    st.none() | st.integers() | st.sampled_from(["v1", "13800138000", "li@acme.cn", "é中"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from([*NAMES, "Alpha", "x"]), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(records=st.lists(json_values, max_size=5), envelope=json_values, plan=plans)
def test_json_hides_each_value_once_from_what_the_upstream_sent(records, envelope, plan):
    # "meta" absent or a plain value: the flat path; a container: the full walk
    doc = {"data": records, "meta": envelope}
    compiled, steps = compile_plan(plan, CATALOG), parse_json_path("$.data[*]")
    out = filter_json(json.dumps(doc).encode(), steps, compiled, MASKER)[0]
    assert json.loads(out) == json_hidden_once(doc, Expected(plan, MASKER))


def test_csv_cells_are_hidden_once_like_the_json_records(
    run_filter, resources, customers, catalog, masker
):
    export = resources.match("crm", "GET", "/api/customers/export.csv", {}, None)
    plan = plan_hiding("customer", catalog, "owner", mask_pii=True, owner=HideAction.HASH)
    owner = "sales1 li@acme.cn"
    csv_out = run_filter(export, plan, "text/csv", f"id,owner\r\n1,{owner}\r\n".encode())
    json_body = orjson.dumps({"data": [{"owner": owner}]})
    json_out = run_filter(customers, plan, "application/json", json_body)
    hashed = masker.hash(owner)
    assert csv_out.body.decode().splitlines()[1] == f"1,{hashed}"
    assert orjson.loads(json_out.body)["data"][0]["owner"] == hashed

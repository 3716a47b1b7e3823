"""Property tests: for random documents and random plans, no hidden value ever leaves.

Hidden values are unique sentinels, so "the sentinel is not in the output bytes" means the
value did not leave in any copy, spelling or depth. Allowed scalar fields stay unchanged
and the record count is right. The JSON parser's fast path (msgspec) accepts, refuses and
builds exactly what the standard library does, on valid and on damaged documents.
"""

from __future__ import annotations

import json
import re

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.catalog import FieldCatalog
from gateway.fieldplan import FieldPlan, HideAction, HideRule
from gateway.masking import Masker
from gateway.payloads import filter_response
from gateway.payloads.json import Unfilterable, parse_json
from gateway.resources import Resource, parse_json_path

from .helpers import ERP, POLICIES, SOAP11

CATALOG = FieldCatalog.load(POLICIES / "fields.yaml")
MASKER = Masker(b"property-test-key-000")
NAMES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
JSON_RESOURCE = Resource("u", "thing", "json", "$.data[*]", json_path=parse_json_path("$.data[*]"))
XML_RESOURCE = Resource(
    "u", "thing", "xml", "e:R/e:Items/e:Item",
    xpath=etree.XPath("e:R/e:Items/e:Item", namespaces={"e": ERP}),
)  # fmt: skip
PROPERTY_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

actions = st.sampled_from(list(HideAction))
plans = st.dictionaries(st.sampled_from(NAMES), actions, min_size=1, max_size=4).map(
    lambda hidden: FieldPlan("thing", hidden={n: HideRule(n, a, 2, 2) for n, a in hidden.items()})
)
spellings = st.sampled_from([str.lower, str.upper, str.title, lambda s: s[:1].upper() + s[1:]])
scalars = st.one_of(st.integers(-(10**6), 10**6), st.booleans(), st.none(), st.text(max_size=8))


def _sentinel(counter: list[int]) -> str:
    counter[0] += 1
    return f"SENTINEL{counter[0]:05d}QZX"


@st.composite
def json_documents(draw, plan: FieldPlan):
    counter = [0]
    hidden = {n.casefold() for n in plan.hidden}

    def value_for(name: str, depth: int):
        if name.casefold() in hidden:
            return _sentinel(counter)
        if depth < 3 and draw(st.booleans()):
            return node(depth + 1)
        return draw(scalars)

    def node(depth: int):
        keys = draw(st.lists(st.sampled_from(NAMES), max_size=4))
        obj = {draw(spellings)(k): value_for(k, depth) for k in keys}
        shape = draw(st.sampled_from(["obj", "arr", "arrarr"]))
        return obj if shape == "obj" else [obj] if shape == "arr" else [[obj, draw(scalars)]]

    records = []
    for _ in range(draw(st.integers(0, 5))):
        keys = draw(st.lists(st.sampled_from(NAMES), max_size=6))
        records.append({draw(spellings)(k): value_for(k, 0) for k in keys})
    extra = {draw(spellings)(k): value_for(k, 1) for k in draw(st.lists(st.sampled_from(NAMES)))}
    return {"data": records, **extra}


def escape_first_char(body: bytes) -> bytes:
    """Spell every key with its first character as a \\uXXXX escape."""
    return re.sub(
        rb'"([A-Za-z])([A-Za-z_]*)":', lambda m: b'"\\u%04x%s":' % (ord(m[1]), m[2]), body
    )


@PROPERTY_SETTINGS
@given(data=st.data(), plan=plans, escape=st.booleans())
def test_json_no_hidden_value_leaves(data, plan, escape):
    doc = data.draw(json_documents(plan))
    body = orjson.dumps(doc)
    if escape:
        body = escape_first_char(body)
    result = filter_response(
        JSON_RESOURCE, plan, "application/json", None, body,
        masker=MASKER, catalog=CATALOG, max_bytes=1 << 20,
    )  # fmt: skip
    assert b"SENTINEL" not in result.body
    assert result.records == len(doc["data"])
    hidden = {n.casefold() for n in plan.hidden}
    out = orjson.loads(result.body)
    for before, after in zip(doc["data"], out["data"], strict=True):
        for key, value in before.items():
            if key.casefold() not in hidden and not isinstance(value, dict | list):
                assert after[key] == value


@st.composite
def xml_documents(draw, plan: FieldPlan):
    counter = [0]
    hidden = {n.casefold() for n in plan.hidden}
    prefix = draw(st.sampled_from(["e", "ns0", "erp", "x"]))

    def element(name: str, depth: int) -> tuple[str, dict[str, str]]:
        tag = f"{prefix}:{draw(spellings)(name)}"
        if name.casefold() in hidden:
            text = _sentinel(counter)
            if draw(st.booleans()):
                text = f"<![CDATA[{text}]]>"
            elif draw(st.booleans()):
                text = f"{text[:6]}<!-- c -->{text[6:]}"
            return f"<{tag}>{text}</{tag}>", {}
        if depth < 3 and draw(st.booleans()):
            inner = "".join(
                element(n, depth + 1)[0] for n in draw(st.lists(st.sampled_from(NAMES), max_size=3))
            )
            return f"<{tag}>{inner}</{tag}>", {}
        text = draw(st.text(alphabet="abc123 ", max_size=6))
        return f"<{tag}>{text}</{tag}>", {name: text}

    records, allowed = [], []
    for _ in range(draw(st.integers(0, 5))):
        parts, plain = [], {}
        for name in draw(st.lists(st.sampled_from(NAMES), max_size=6, unique=True)):
            xml, scalar = element(name, 0)
            parts.append(xml)
            plain.update(scalar)
        attr_name = draw(st.sampled_from(NAMES))
        attr_value = _sentinel(counter) if attr_name.casefold() in hidden else "v"
        records.append(
            f'<{prefix}:Item {prefix}:{attr_name}="{attr_value}">{"".join(parts)}</{prefix}:Item>'
        )
        allowed.append(plain)
    body = (
        f'<soap:Envelope xmlns:soap="{SOAP11}"><soap:Body><{prefix}:R xmlns:{prefix}="{ERP}">'
        f"<{prefix}:Items>{''.join(records)}</{prefix}:Items>"
        f"{element(draw(st.sampled_from(NAMES)), 1)[0]}</{prefix}:R></soap:Body></soap:Envelope>"
    )
    return body.encode(), allowed


@PROPERTY_SETTINGS
@given(data=st.data(), plan=plans)
def test_xml_no_hidden_value_leaves(data, plan):
    body, allowed = data.draw(xml_documents(plan))
    result = filter_response(
        XML_RESOURCE, plan, "text/xml", None, body,
        masker=MASKER, catalog=CATALOG, max_bytes=1 << 20,
    )  # fmt: skip
    assert b"SENTINEL" not in result.body
    assert result.records == len(allowed)
    items = [el for el in etree.fromstring(result.body).iter(f"{{{ERP}}}Item")]
    for item, plain in zip(items, allowed, strict=True):
        children = {etree.QName(c).localname.casefold(): c.text or "" for c in item}
        for name, text in plain.items():
            assert children[name.casefold()] == text


# --- the JSON parser: msgspec's fast path builds what the standard library builds --------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False)
    | st.text(),  # lone surrogates included: msgspec refuses them, the fallback takes them
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)
json_texts = st.builds(
    lambda value, ascii, indent: json.dumps(value, ensure_ascii=ascii, indent=indent),
    json_values,
    st.booleans(),
    st.sampled_from([None, 0, 2, "\t"]),
)
# Bytes that make JSON invalid, or valid in a different way, when put somewhere.
JSON_BYTES = list(b'{}[],:"\\ u0123456789abcdefXE+-.eN \t\r\n\x00\x0b\x0c\x7f\xc3\xa9\xed\xa0\x80')


def _reference(body: bytes) -> str | None:
    """repr of what the standard library builds (types, key order, -0.0 tell apart), or None."""
    try:
        return repr(json.loads(body.decode("utf-8"), parse_constant=_refuse))
    except (ValueError, RecursionError):
        return None


def _refuse(name: str) -> None:
    raise ValueError(name)


def _parsed(body: bytes) -> str | None:
    try:
        return repr(parse_json(body))
    except Unfilterable:
        return None


@settings(max_examples=400, deadline=None)
@given(text=json_texts)
def test_parser_builds_what_the_standard_library_builds(text):
    body = text.encode("utf-8", "surrogatepass")
    assert _parsed(body) == _reference(body)


@settings(max_examples=600, deadline=None)
@given(
    text=json_texts,
    edits=st.lists(
        st.tuples(st.integers(0, 10**6), st.sampled_from(["insert", "delete", "replace"]),
                  st.sampled_from(JSON_BYTES)),
        min_size=1, max_size=3,
    ),
)  # fmt: skip
def test_parser_accepts_and_refuses_what_the_standard_library_does(text, edits):
    body = bytearray(text.encode("utf-8", "surrogatepass"))
    for position, edit, byte in edits:
        at = position % (len(body) + 1)
        if edit == "insert":
            body[at:at] = bytes([byte])
        elif at < len(body):
            body[at : at + 1] = b"" if edit == "delete" else bytes([byte])
    assert _parsed(bytes(body)) == _reference(bytes(body))

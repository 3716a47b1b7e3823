"""The filters' fast paths give the same answers as the plain ones, and nothing slips past them.

- PII counting over raw bytes (the compiled scan in ``gateway/_piiscan.c``, e-mail proximity
  decided in Python) counts exactly what ``find_pii`` finds, on any text and any bytes;
- the joined prefilter (``may_hold_pii`` over values joined by NUL) never skips a value that
  holds PII, in any of the spellings the detectors accept;
- the resident-ID check without date objects agrees with a plain reference implementation;
- the JSON walk by object shape hides every spelling, order and key set, beyond its memo
  limits too, and the flat-record path (records with the same keys hidden a key at a time)
  hides exactly what the full walk hides, and hands anything unusual to it.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.fieldplan import FieldPlan, HideAction, HideRule
from gateway.payloads import FilterResult, filter_response
from gateway.pii import count_pii, find_pii, is_resident_id, may_hold_pii
from gateway.resources import Resource, parse_json_path

from .helpers import plan_hiding

PII_SAMPLES = [
    "11010519491231002X",  # resident ID, upper-case check character
    "11010519491231002x",  # lower-case check character
    "440301199003071230",
    "13800138000",
    "+86 138 0013 8000",  # mobile with spaces
    "+86-139-1234-5678",  # with dashes
    "86 19912345678",
    "138-0013-8000",
    "4111111111111111",
    "4111 1111 1111 1111",  # card with spaces
    "4111-1111-1111-1111",  # with dashes
    "6222021234567890123",  # UnionPay without a Luhn digit
    "li.lei+crm@example.com.cn",
]
NOISE = ["", " ", "-", "+", "@", ".", "X", "a", "é", "中", "0", "7", "\n", '"', "{", "_", "%"]
texts = st.lists(st.sampled_from(PII_SAMPLES + NOISE) | st.text(max_size=6), max_size=12).map(
    "".join
)


def _kinds(text: str) -> Counter[str]:
    return Counter(hit.kind for hit in find_pii(text))


@settings(max_examples=400, deadline=None)
@given(text=texts)
def test_counting_bytes_finds_what_find_pii_finds(text):
    assert count_pii(text.encode("utf-8", "surrogatepass")) == _kinds(text)
    assert count_pii(text) == _kinds(text)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("13800138000@qq.com", {"email": 1}),  # the digits are the e-mail's local part
        ("mail a@13800138000.com", {"email": 1}),  # ... or its domain
        ("13800138000 a@b.cn", {"cn_mobile": 1, "email": 1}),  # a space ends a local part
        ('"13800138000","x@y.cn"', {"cn_mobile": 1, "email": 1}),
        ("y" * 70 + "13800138000@qq.com", {"email": 1}),  # local part longer than 64
        ("13800138000" + "y" * 70 + "@qq.com", {"cn_mobile": 1, "email": 1}),
        ("+86 138 0013 8000@qq.com", {"email": 1}),
        ("11010519491231002X", {"cn_resident_id": 1}),
        # an '@' with no local part before it is no e-mail, and hides none after it
        ('"@a.cn", "x@b.cn"', {"email": 1}),
        ("x@@b.cn @c.cn .@d.cn", {"email": 1}),
        ("@13800138000.com", {"cn_mobile": 1}),
        # the domain ends after the last label of 2-24 letters (not the first label)
        ("a@b." + "c" * 24, {"email": 1}),
        ("a@b." + "c" * 25, {}),
        ("a@b." + "c" * 25 + ".cn", {"email": 1}),
        ("a@cn", {}),
        ("a@b.c1 a@b..cn a@b.-", {}),
        ("a@b.cn. x@y.cn-x.de@z.io", {"email": 3}),
    ],
)
def test_counting_next_to_e_mails(text, expected):
    assert count_pii(text.encode()) == expected == _kinds(text)


@pytest.mark.parametrize("sample", PII_SAMPLES)
@pytest.mark.parametrize(
    "neighbours", [(), ("plain words",), ("a", "b 12", "c-3"), ("long text, no digits " * 5,)]
)
def test_prefilter_never_skips_pii(sample, neighbours):
    assert find_pii(sample), "the sample itself must be PII"
    assert may_hold_pii(sample)
    assert may_hold_pii("\0".join([*neighbours, sample, *neighbours]))


@settings(max_examples=300, deadline=None)
@given(text=texts, padding=st.sampled_from(["", "z" * 70, "中" * 70]))
def test_prefilter_passes_every_text_with_pii(text, padding):
    # Short and long texts take different paths through the prefilter.
    padded = padding + text + padding
    assert may_hold_pii(padded) or not find_pii(padded)


@pytest.mark.parametrize(
    "text", ["", "Regular customer", "Regular customer " * 10, "order 1234 on 2024-01", "a-b-c"]
)
def test_prefilter_clears_plain_text(text):
    assert not may_hold_pii(text) and find_pii(text) == []


def _with_check(body: str) -> str:
    """A 17-digit body plus its GB 11643 check character, computed the textbook way."""
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def _reference_is_resident_id(candidate: str) -> bool:
    if len(candidate) != 18 or not candidate[:17].isdigit() or not candidate[:17].isascii():
        return False
    if _with_check(candidate[:17])[17] != candidate[17].upper():
        return False
    try:
        born = date(int(candidate[6:10]), int(candidate[10:12]), int(candidate[12:14]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date.today()


@settings(max_examples=400, deadline=None)
@given(
    area=st.integers(100000, 999999),
    year=st.integers(1850, date.today().year + 2),
    month=st.integers(0, 13),
    day=st.integers(0, 32),
    serial=st.integers(0, 999),
    check=st.sampled_from([*"0123456789Xx", None]),
)
def test_resident_id_check_matches_the_reference(area, year, month, day, serial, check):
    body = f"{area}{year:04d}{month:02d}{day:02d}{serial:03d}"
    candidate = _with_check(body) if check is None else body + check
    valid = _reference_is_resident_id(candidate)
    assert is_resident_id(candidate) == valid
    # the compiled body scan decides IDs on its own: it must agree too, wherever the ID sits
    for text in (candidate, f'"id":"{candidate}"', f"ID {candidate}, born"):
        assert count_pii(text.encode())["cn_resident_id"] == int(valid)


@pytest.mark.parametrize(
    "born,valid",
    [
        ("20000229", True),  # leap year
        ("19000229", False),  # 1900 is not a leap year
        ("20230229", False),
        ("18991231", False),  # before 1900
        ("19000101", True),
        (date.today().strftime("%Y%m%d"), True),
        (f"{date.today().year + 1}0101", False),  # born in the future
    ],
)
def test_resident_id_birth_dates(born, valid):
    candidate = _with_check(f"110105{born}002")
    assert is_resident_id(candidate) is valid
    assert count_pii(candidate.encode())["cn_resident_id"] == int(valid)


# Bytes chosen to build digit runs, separators, ID check characters and e-mail edges, plus
# bytes that are not ASCII: any byte string, read as latin-1, is text the reference can take.
run_bytes = st.lists(
    st.sampled_from([*b"0123456789", *b"0123456789", *b" -Xx@.+_%acnZ\n\"", 0xE4, 0x80, 0xFF]),
    max_size=80,
).map(bytes)


@settings(max_examples=1500, deadline=None)
@given(
    prefix=run_bytes,
    sample=st.sampled_from([s.encode() for s in PII_SAMPLES]),
    suffix=run_bytes,
)
def test_counting_any_bytes_finds_what_find_pii_finds(prefix, sample, suffix):
    # Samples glued to random runs: the scanner's block edges, X handling and e-mail
    # neighbours are where a compiled rewrite could drift from the reference.
    for raw in (prefix + suffix, prefix + sample + suffix):
        assert count_pii(raw) == _kinds(raw.decode("latin-1"))


# --- the JSON walk ----------------------------------------------------------------------


def _filter(run_filter, customers, plan, doc) -> bytes:
    return run_filter(customers, plan, "application/json", orjson.dumps(doc)).body


def test_every_key_order_spelling_and_key_set_is_hidden(run_filter, customers, catalog):
    records = [
        {"id": 1, "credit_limit": 1001},
        {"credit_limit": 1002, "id": 2},  # same keys, other order
        {"id": 3, "Credit_Limit": 1003},
        {"CREDIT_LIMIT": 1004},
        {"id": 5, "name": "n", "credit_limit": 1005},
        {"id": 6, "credit_limit": 1006},  # a shape seen before
    ]
    plan = plan_hiding("customer", catalog, "credit_limit")
    body = _filter(run_filter, customers, plan, {"data": records})
    assert not any(str(1000 + i).encode() in body for i in range(1, 7))


def test_more_shapes_than_the_memo_holds_are_still_hidden(run_filter, customers, catalog):
    records = [{f"extra_{i}": i, "credit_limit": 700000 + i} for i in range(1500)]
    plan = plan_hiding("customer", catalog, "credit_limit")
    body = _filter(run_filter, customers, plan, {"data": records})
    assert b"7000" not in body and body.count(b"[REDACTED]") == 1500


def test_an_object_with_many_keys_is_hidden_without_the_memo(run_filter, customers, catalog):
    record = {f"k{i}": i for i in range(500)} | {"credit_limit": 424242}
    plan = plan_hiding("customer", catalog, "credit_limit")
    assert b"424242" not in _filter(run_filter, customers, plan, {"data": [record]})


@pytest.mark.parametrize(
    "doc",
    [
        # braces inside strings: more '{' than containers, so the full walk runs
        {"data": [{"note": "{[", "credit_limit": 1}], "credit_limit": 2},
        # one record with a nested object among flat ones
        {"data": [{"id": 1}, {"id": 2, "sub": {"credit_limit": 3}}, {"credit_limit": 4}]},
        # a nested copy in the envelope, next to flat records
        {"data": [{"id": 1}], "meta": {"credit_limit": 5}, "credit_limit": 6},
        # flat records, the hidden key in the envelope itself
        {"credit_limit": 7, "data": [{"id": 1, "credit_limit": 8}]},
        # records that are arrays and scalars
        {"data": [[{"credit_limit": 9}], "text", 10]},
    ],
)
def test_flat_and_nested_bodies_hide_the_same(run_filter, customers, catalog, doc):
    plan = plan_hiding("customer", catalog, "credit_limit")
    out = orjson.loads(_filter(run_filter, customers, plan, doc))
    hidden_values = set()

    def collect(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "credit_limit":
                    hidden_values.add(value)
                collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(out)
    assert hidden_values == {"[REDACTED]"}


def test_duplicate_keys_whose_first_copy_is_an_object(run_filter, customers, catalog):
    body = b'{"data":[{"x":{"credit_limit":111},"x":1,"credit_limit":222}]}'
    plan = plan_hiding("customer", catalog, "credit_limit")
    out = run_filter(customers, plan, "application/json", body).body
    assert b"111" not in out and b"222" not in out


def test_pii_masking_masks_only_the_values_that_hold_pii(run_filter, customers):
    record = {
        "id": 1,
        "note": "call +86 138 0013 8000",
        "remark": "nothing here",
        "tags": ["vip", "card 4111 1111 1111 1111", 42],
        "other": "id 11010519491231002x",
    }
    plan = FieldPlan("customer", mask_pii=True)
    result = run_filter(customers, plan, "application/json", orjson.dumps({"data": [record]}))
    out = orjson.loads(result.body)["data"][0]
    assert "0013" not in out["note"] and out["note"].endswith("8000")
    assert out["remark"] == "nothing here"
    assert out["tags"][0] == "vip" and "1111 1111 1111" not in out["tags"][1]
    assert out["tags"][2] == 42
    assert "19491231" not in out["other"]
    assert result.pii_hits == {"cn_mobile": 1, "bank_card": 1, "cn_resident_id": 1}


def test_pii_is_counted_in_hidden_fields_too(run_filter, customers, catalog):
    plan = plan_hiding("customer", catalog, "phone", "id_number", "email")
    doc = {"data": [{"phone": "13800138000", "id_number": "11010519491231002X", "email": "a@b.cn"}]}
    result = run_filter(customers, plan, "application/json", orjson.dumps(doc))
    assert result.pii_hits == {"cn_mobile": 1, "cn_resident_id": 1, "email": 1}
    assert b"13800138000" not in result.body


# Flat records are hidden a key at a time over records with the same keys (``run_flat``);
# a nested object anywhere sends the same records through the node-by-node walk.
FLAT_NAMES = ["id", "phone", "Phone", "note", "email", "password", "credit_limit"]
flat_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.text(max_size=8),
    st.sampled_from(PII_SAMPLES),
)  # fmt: skip
flat_shapes = st.lists(st.sampled_from(FLAT_NAMES), max_size=5, unique=True)
flat_plans = st.builds(
    lambda hidden, mask: FieldPlan(
        "thing", hidden={n: HideRule(n, a, 1, 2) for n, a in hidden.items()}, mask_pii=mask
    ),
    st.dictionaries(st.sampled_from(FLAT_NAMES), st.sampled_from(list(HideAction)), max_size=4),
    st.booleans(),
)


@st.composite
def flat_records(draw):
    shapes = draw(st.lists(flat_shapes, min_size=1, max_size=3))  # few shapes: runs repeat
    records = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["object", "object", "object", "scalar", "list"]))
        if kind == "object":
            records.append({k: draw(flat_values) for k in draw(st.sampled_from(shapes))})
        elif kind == "scalar":
            records.append(draw(flat_values))
        else:
            records.append(draw(st.lists(flat_values, max_size=3)))
    return records


@settings(max_examples=300, deadline=None)
@given(records=flat_records(), plan=flat_plans)
def test_flat_records_are_hidden_as_the_full_walk_hides_them(catalog, masker, records, plan):
    resource = Resource("u", "thing", "json", "$.data[*]", json_path=parse_json_path("$.data[*]"))

    def run(doc: dict) -> FilterResult:
        return filter_response(
            resource, plan, "application/json", None, json.dumps(doc).encode(),
            masker=masker, catalog=catalog, max_bytes=1 << 20,
        )  # fmt: skip

    flat = run({"data": records})
    nested = run({"data": records, "meta": {"n": [1]}})  # only the full walk takes this
    assert json.loads(flat.body)["data"] == json.loads(nested.body)["data"]
    assert (flat.records, flat.masked_fields) == (nested.records, nested.masked_fields)

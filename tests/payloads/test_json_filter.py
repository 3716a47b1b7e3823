"""JSON responses: hidden fields never leave, in any spelling, at any depth, in any copy."""

from __future__ import annotations

import orjson
import pytest

from gateway.errors import UpstreamUnavailable
from gateway.fieldplan import FieldPlan, HideAction
from gateway.masking import REDACTED

from .helpers import plan_hiding

SECRET_ID = "11010519491231002X"


def envelope(*records: dict, **extra: object) -> bytes:
    return orjson.dumps({"data": list(records), "page": 1, "page_size": 50, "total": 2, **extra})


def customer(i: int = 1, **overrides: object) -> dict:
    record = {
        "id": i,
        "name": f"Acme {i}",
        "contact_name": "Li Lei",
        "phone": "13800138000",
        "id_number": SECRET_ID,
        "email": "li@example.com",
        "credit_limit": 50000,
        "owner": "sales1",
    }
    return record | overrides


def test_hide_actions_follow_the_catalog(run_filter, customers, catalog):
    plan = plan_hiding("customer", catalog, "id_number", "phone", "credit_limit")
    result = run_filter(customers, plan, "application/json", envelope(customer(1), customer(2)))
    doc = orjson.loads(result.body)
    assert doc["data"][0]["id_number"] == "110105********002X"
    assert doc["data"][0]["phone"] == "138****8000"
    assert doc["data"][1]["credit_limit"] == REDACTED
    assert doc["data"][0]["name"] == "Acme 1" and doc["total"] == 2
    assert result.records == 2
    assert result.masked_fields == ("credit_limit", "id_number", "phone")
    assert result.content_encoding is None


def test_remove_hash_and_null(run_filter, customers, catalog, masker):
    plan = plan_hiding(
        "customer", catalog, "email", "owner", "contact_name",
        email=HideAction.REMOVE, owner=HideAction.HASH, contact_name=HideAction.NULL,
    )  # fmt: skip
    doc = orjson.loads(run_filter(customers, plan, "application/json", envelope(customer())).body)
    record = doc["data"][0]
    assert "email" not in record
    assert record["owner"] == masker.hash("sales1") and record["owner"].startswith("h:")
    assert record["contact_name"] is None


def test_single_record_body(run_filter, resources, catalog):
    resource = resources.match("crm", "PATCH", "/api/customers/7", {}, None)
    plan = plan_hiding("customer", catalog, "credit_limit")
    result = run_filter(resource, plan, "application/json", orjson.dumps(customer(7)))
    assert orjson.loads(result.body)["credit_limit"] == REDACTED
    assert result.records == 1


@pytest.mark.parametrize(
    "raw_key",
    ["credit\\u005flimit", "Credit_Limit", "CREDIT_LIMIT", "\\u0063redit_limit"],
)
def test_spellings_of_a_hidden_key_are_hidden(run_filter, customers, catalog, raw_key):
    body = b'{"data":[{"id":1,"%s":99999}]}' % raw_key.encode()
    plan = plan_hiding("customer", catalog, "credit_limit")
    result = run_filter(customers, plan, "application/json", body)
    assert b"99999" not in result.body


def test_duplicate_keys_never_let_a_copy_through(run_filter, customers, catalog):
    body = b'{"data":[{"id":1,"credit_limit":11111,"credit_limit":22222,"Credit_limit":33333}]}'
    plan = plan_hiding("customer", catalog, "credit_limit")
    result = run_filter(customers, plan, "application/json", body)
    for value in (b"11111", b"22222", b"33333"):
        assert value not in result.body


def test_hidden_field_deep_inside_arrays_of_arrays(run_filter, customers, catalog):
    nested = {"history": [[{"credit_limit": 77777}], [[{"x": {"credit_limit": 88888}}]]]}
    plan = plan_hiding("customer", catalog, "credit_limit")
    result = run_filter(customers, plan, "application/json", envelope(customer(**nested)))
    assert b"77777" not in result.body and b"88888" not in result.body


def test_hidden_field_copied_into_the_envelope_is_hidden(run_filter, customers, catalog):
    body = envelope(customer(), summary={"credit_limit": 31337})
    result = run_filter(
        customers, plan_hiding("customer", catalog, "credit_limit"), "application/json", body
    )
    assert b"31337" not in result.body


def test_safety_net_outside_records_and_for_undeclared_names(run_filter, customers, catalog):
    body = envelope(customer(password="hunter2"), debug={"api_key": "sk-live-1", "CostPrice": 5})
    plan = FieldPlan("customer")  # the plan hides nothing
    result = run_filter(customers, plan, "application/json", body)
    for leaked in (b"hunter2", b"sk-live-1", b'"CostPrice":5'):
        assert leaked not in result.body
    assert set(result.masked_fields) == {"password", "api_key", "CostPrice"}


def test_plan_decides_for_declared_safety_net_fields_inside_records(run_filter, customers, catalog):
    body = envelope(customer(), meta={"id_number": "110105194912310021"})
    result = run_filter(customers, FieldPlan("customer"), "application/json", body)
    doc = orjson.loads(result.body)
    assert doc["data"][0]["id_number"] == SECRET_ID  # the role is allowed to read it
    assert doc["meta"]["id_number"] == REDACTED  # outside the record: safety net


def test_unmapped_json_gets_the_safety_net_only(run_filter):
    body = orjson.dumps({"user": {"name": "x", "Password": "p4ss", "items": [{"secret": "s"}]}})
    result = run_filter(None, None, "application/json; charset=utf-8", body)
    assert b"p4ss" not in result.body and b'"s"' not in result.body
    assert orjson.loads(result.body)["user"]["name"] == "x"
    assert result.records == 0


def test_unmapped_other_types_pass_untouched(run_filter):
    body = b"password=hunter2"
    result = run_filter(None, None, "text/plain", body, encoding="identity")
    assert result.body == body and result.content_encoding == "identity"


def test_pii_is_counted_always_and_masked_when_the_plan_says(run_filter, customers, catalog):
    record = customer(note="call 13912345678 or mail boss@acme.cn")
    counted = run_filter(customers, FieldPlan("customer"), "application/json", envelope(record))
    assert counted.pii_hits == {"cn_mobile": 2, "cn_resident_id": 1, "email": 2}
    assert b"13912345678" in counted.body
    masked = run_filter(
        customers, FieldPlan("customer", mask_pii=True), "application/json", envelope(record)
    )
    note = orjson.loads(masked.body)["data"][0]["note"]
    assert "13912345678" not in note and "boss@" not in note
    # declared fields are the plan's business, not the PII masker's
    assert orjson.loads(masked.body)["data"][0]["phone"] == "13800138000"


@pytest.mark.parametrize(
    "body",
    [b'{"data":[{"credit_limit":1}', b"not json", b'{"a":1}garbage', b"\xff\xfe{}"],
)
def test_unparseable_body_is_refused_not_passed(run_filter, customers, catalog, body):
    with pytest.raises(UpstreamUnavailable) as err:
        run_filter(
            customers, plan_hiding("customer", catalog, "credit_limit"), "application/json", body
        )
    assert err.value.reason_id == "response_unfilterable"


def test_deep_nesting_is_refused(run_filter, customers, catalog):
    body = b'{"data":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    with pytest.raises(UpstreamUnavailable):
        run_filter(customers, FieldPlan("customer"), "application/json", body)


def test_nesting_inside_the_serialiser_limit_is_filtered(run_filter, customers, catalog):
    body = b'{"data":[' + b'{"a":' * 200 + b'{"credit_limit":424242}' + b"}" * 200 + b"]}"
    plan = plan_hiding("customer", catalog, "credit_limit")
    result = run_filter(customers, plan, "application/json", body)
    assert b"424242" not in result.body


def test_content_type_must_match_the_resource(run_filter, customers):
    with pytest.raises(UpstreamUnavailable) as err:
        run_filter(customers, FieldPlan("customer"), "text/html", envelope(customer()))
    assert err.value.reason_id == "response_unfilterable"


def test_body_over_the_cap_is_refused(run_filter, customers):
    with pytest.raises(UpstreamUnavailable) as err:
        run_filter(
            customers, FieldPlan("customer"), "application/json", envelope(customer()), max_bytes=64
        )
    assert err.value.reason_id == "response_too_large"


def test_missing_records_path_counts_zero_and_still_hides(run_filter, customers, catalog):
    body = orjson.dumps({"error": "oops", "credit_limit": 5})
    result = run_filter(
        customers, plan_hiding("customer", catalog, "credit_limit"), "application/json", body
    )
    assert result.records == 0 and orjson.loads(result.body)["credit_limit"] == REDACTED


@pytest.mark.parametrize("content_type", ["application/json", ""])
def test_empty_body_passes(run_filter, customers, content_type):
    # e.g. 204 No Content or a HEAD answer, which often carry no content type at all
    result = run_filter(customers, FieldPlan("customer"), content_type, b"")
    assert result.body == b"" and result.records == 0


def test_nesting_beyond_orjsons_writer_is_still_filtered(run_filter, customers, catalog):
    body = b'{"data":[' + b'{"a":' * 600 + b'{"credit_limit":424242}' + b"}" * 600 + b"]}"
    result = run_filter(
        customers, plan_hiding("customer", catalog, "credit_limit"), "application/json", body
    )
    assert b"424242" not in result.body and result.records == 1


def test_big_integers_stay_exact(run_filter, customers):
    body = b'{"data":[{"id":123456789012345678901234567890}],"total":1}'
    result = run_filter(customers, FieldPlan("customer"), "application/json", body)
    assert b"123456789012345678901234567890" in result.body


@pytest.mark.parametrize(
    "body",
    [b'{"data":[{"credit_limit":NaN}]}', '{"data":[]}'.encode("utf-16"), b'{"data":[Infinity]}'],
    ids=["nan", "utf16", "infinity"],
)
def test_non_json_extensions_are_refused(run_filter, customers, body):
    with pytest.raises(UpstreamUnavailable):
        run_filter(customers, FieldPlan("customer"), "application/json", body)

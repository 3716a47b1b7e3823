"""The unmapped-route fast path: a byte scan may skip parsing only when no safety-net name
can occur in any spelling; every spelling the parser would mask must still be masked."""

from __future__ import annotations

import pytest

SECRET = "s3cr3t-value-9431"


def test_a_clean_unmapped_body_passes_byte_for_byte(run_filter):
    body = '{"data": [{"id": 1, "name": "上海恒信", "phone": "13812345678"}]}'.encode()
    result = run_filter(None, None, "application/json", body)
    assert result.body is body  # not parsed, not re-serialised
    assert result.records == 0 and result.masked_fields == ()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"password": "%s"}'),
        ("application/json", b'{"PassWord": "%s"}'),
        ("application/json", b'{"pass\\u0077ord": "%s"}'),  # JSON escape
        ("application/json", '{"ſecret": "%s"}'.encode()),  # long s case-folds to s
        ("application/json", b'[[{"a": {"Bank_Account": "%s"}}]]'),
        ("text/xml", b"<r><x:CostPrice xmlns:x='urn:x'>%s</x:CostPrice></r>"),
        ("text/xml", b"<r><COSTPRICE>%s</COSTPRICE></r>"),
    ],
)
def test_every_spelling_of_a_safety_net_name_is_still_masked(run_filter, content_type, body):
    doc = body.replace(b"%s", SECRET.encode())
    result = run_filter(None, None, content_type, doc)
    assert SECRET.encode() not in result.body
    assert result.masked_fields


def test_utf16_xml_is_parsed_not_skipped(run_filter):
    doc = f'<?xml version="1.0" encoding="UTF-16"?><r><CostPrice>{SECRET}</CostPrice></r>'
    result = run_filter(None, None, "text/xml", doc.encode("utf-16"))
    assert SECRET.encode() not in result.body
    assert SECRET.encode("utf-16-le") not in result.body

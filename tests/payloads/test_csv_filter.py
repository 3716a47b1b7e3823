"""CSV exports: hidden columns removed or masked in every row, quoting and line ends kept."""

from __future__ import annotations

import csv
import io

import pytest

from gateway.errors import UpstreamUnavailable
from gateway.fieldplan import FieldPlan, HideAction
from gateway.masking import REDACTED

from .helpers import plan_hiding

HEADER = "id,name,contact_name,phone,id_number,email,credit_limit,owner"


@pytest.fixture
def export(resources):
    return resources.match("crm", "GET", "/api/customers/export.csv", {}, None)


def rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_columns_masked_and_removed(run_filter, export, catalog):
    body = (
        f"{HEADER}\r\n"
        '1,"Acme, Inc.",Li,13800138000,11010519491231002X,a@x.cn,5000,s1\r\n'
        '2,"Say ""hi""\nthere",Wu,13900139000,110105194912310021,b@x.cn,7000,s2\r\n'
    ).encode()
    plan = plan_hiding(
        "customer", catalog, "phone", "credit_limit", "email", email=HideAction.REMOVE
    )
    result = run_filter(export, plan, "text/csv; charset=utf-8", body)
    table = rows(result.body)
    assert table[0] == ["id", "name", "contact_name", "phone", "id_number", "credit_limit", "owner"]
    assert table[1] == [
        "1",
        "Acme, Inc.",
        "Li",
        "138****8000",
        "11010519491231002X",
        REDACTED,
        "s1",
    ]
    assert table[2][1] == 'Say "hi"\nthere'
    assert b"a@x.cn" not in result.body and b"7000" not in result.body
    assert result.records == 2 and b"\r\n" in result.body
    assert set(result.masked_fields) == {"phone", "credit_limit", "email"}


def test_bom_lf_and_header_case(run_filter, export, catalog):
    body = ("\ufeffID,Name,CREDIT_LIMIT\n1,A,5000\n\n2,B,6000\n").encode()
    result = run_filter(export, plan_hiding("customer", catalog, "credit_limit"), "text/csv", body)
    assert result.body.startswith("\ufeff".encode()) and b"\r\n" not in result.body
    assert b"5000" not in result.body and b"6000" not in result.body
    assert result.records == 2


def test_undeclared_safety_net_column_is_masked(run_filter, export):
    body = b"id,name,password\n1,A,hunter2\n"
    result = run_filter(export, FieldPlan("customer"), "text/csv", body)
    assert b"hunter2" not in result.body


@pytest.mark.parametrize(
    "body",
    [
        b"id,credit_limit\n1,5000,extra\n",
        b"id,credit_limit\n1\n",
        b"id,credit_limit\n\xff\xfe,1\n",
        b'id,credit_limit\n1,"5000\n',
    ],
    ids=["long-row", "short-row", "not-utf8", "unterminated-quote"],
)
def test_malformed_csv_is_refused(run_filter, export, catalog, body):
    with pytest.raises(UpstreamUnavailable) as err:
        run_filter(export, plan_hiding("customer", catalog, "credit_limit"), "text/csv", body)
    assert err.value.reason_id == "response_unfilterable"


def test_unmapped_csv_passes_untouched(run_filter):
    body = b"password\nhunter2\n"
    assert run_filter(None, None, "text/csv", body).body == body


def test_pii_masked_in_undeclared_columns(run_filter, export):
    body = b"id,phone,note\n1,13800138000,call 13912345678\n"
    result = run_filter(export, FieldPlan("customer", mask_pii=True), "text/csv", body)
    assert rows(result.body)[1] == ["1", "13800138000", "call *******5678"]
    assert result.pii_hits == {"cn_mobile": 2}

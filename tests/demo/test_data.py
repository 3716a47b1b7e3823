"""The demo data: realistic, valid identifiers, and the same on every run."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import orjson
import pytest

from gateway.demo import data

ROOT = Path(__file__).resolve().parents[2]
CJK = re.compile(r"[\u4e00-\u9fff]+")


def gb11643_ok(number: str) -> bool:
    """Independent GB 11643-1999 check: weights are 2^(17-i) mod 11, ISO 7064 MOD 11-2."""
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return False
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(number[:17]))
    expected = (12 - total % 11) % 11
    return number[17] == ("X" if expected == 10 else str(expected))


def luhn_ok(number: str) -> bool:
    """Independent Luhn check over the whole number, check digit included."""
    digits = [int(c) for c in number]
    odd = digits[-1::-2]
    even = [sum(divmod(2 * d, 10)) for d in digits[-2::-2]]
    return (sum(odd) + sum(even)) % 10 == 0


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("11010519491231002X", True),  # the standard's own example
        ("110105194912310021", False),
        ("440524188001010014", True),
        ("440524188001010015", False),
        ("11010519491331002X", False),  # month 13
    ],
)
def test_the_resident_id_validator_itself_is_right(number: str, valid: bool) -> None:
    assert gb11643_ok(number) is valid


@pytest.mark.parametrize(
    ("number", "valid"),
    [("79927398713", True), ("79927398710", False), ("4111111111111111", True)],
)
def test_the_luhn_validator_itself_is_right(number: str, valid: bool) -> None:
    assert luhn_ok(number) is valid


def test_collection_sizes() -> None:
    assert len(data.customers()) == 30_000
    assert len(data.orders()) == 60_000
    assert len(data.products()) == 500
    assert len(data.invoices()) == 5_000


def test_customers_look_like_chinese_companies_and_people() -> None:
    customers = data.customers()
    assert [c["id"] for c in customers] == list(range(1, 30_001))
    assert all(tuple(c) == data.CUSTOMER_FIELDS for c in customers)
    names = [c["name"] for c in customers]
    assert len(set(names)) == len(names)
    assert all(CJK.fullmatch(n) and n.endswith("有限公司") for n in names)
    assert all(CJK.fullmatch(c["contact_name"]) for c in customers)
    assert all(2 <= len(c["contact_name"]) <= 4 for c in customers)
    assert all(re.fullmatch(r"[\w.]+@[\w.-]+\.[a-z]+", c["email"]) for c in customers)
    assert {c["owner"] for c in customers} == {f"sales{n:02d}" for n in range(1, 13)}
    assert all(isinstance(c["credit_limit"], int) and c["credit_limit"] > 0 for c in customers)


def test_phones_come_in_both_formats_and_are_mainland_mobiles() -> None:
    spaced = re.compile(r"\+86 1[3-9]\d \d{4} \d{4}")
    plain = re.compile(r"1[3-9]\d{9}")
    phones = [c["phone"] for c in data.customers()]
    assert all(spaced.fullmatch(p) or plain.fullmatch(p) for p in phones)
    share_spaced = sum(1 for p in phones if spaced.fullmatch(p)) / len(phones)
    assert 0.3 < share_spaced < 0.7


def test_every_resident_id_passes_gb11643_and_x_check_chars_occur() -> None:
    numbers = [c["id_number"] for c in data.customers()]
    bad = [n for n in numbers if not gb11643_ok(n)]
    assert bad == []
    assert sum(n.endswith("X") for n in numbers) > 1000  # about 1 in 11


def test_orders_belong_to_customers() -> None:
    orders = data.orders()
    assert [o["id"] for o in orders] == list(range(1, 60_001))
    assert all(1 <= o["customer_id"] <= 30_000 for o in orders)
    assert {o["status"] for o in orders} == {"pending", "paid", "shipped", "delivered", "cancelled"}
    assert all(isinstance(o["amount"], float) and o["amount"] > 0 for o in orders)
    stamps = [datetime.fromisoformat(o["created_at"]) for o in orders]
    assert all(s.utcoffset() is not None for s in stamps)


def test_products_have_codes_names_and_a_cost_below_the_list_price() -> None:
    products = data.products()
    assert [p["Code"] for p in products] == [f"P-{n:06d}" for n in range(1, 501)]
    assert all(tuple(p) == data.PRODUCT_FIELDS for p in products)
    assert all(CJK.search(p["Name"]) and CJK.search(p["Warehouse"]) for p in products)
    assert all(re.fullmatch(r"\d+\.\d\d", p["ListPrice"]) for p in products)
    assert all(0 < float(p["CostPrice"]) < float(p["ListPrice"]) for p in products)
    assert all(p["Stock"].isdigit() for p in products)


def test_every_bank_account_is_a_valid_unionpay_number() -> None:
    accounts = [i["BankAccount"] for i in data.invoices()]
    assert all(re.fullmatch(r"62\d{14,17}", a) for a in accounts)
    assert [a for a in accounts if not luhn_ok(a)] == []
    assert {len(a) for a in accounts} == {16, 17, 18, 19}


def test_invoices_are_billed_to_demo_customers() -> None:
    invoices = data.invoices()
    customer_names = {c["name"] for c in data.customers()}
    assert all(i["CustomerName"] in customer_names for i in invoices)
    numbers = [i["Number"] for i in invoices]
    assert len(set(numbers)) == len(numbers)
    assert all(re.fullmatch(r"\d{20}", n) for n in numbers)
    assert all(date.fromisoformat(i["IssuedAt"]) for i in invoices)


def _fingerprint() -> str:
    everything = (data.customers(), data.orders(), data.products(), data.invoices())
    return hashlib.sha256(orjson.dumps(everything)).hexdigest()


_FINGERPRINT_SCRIPT = """
import hashlib, orjson
from gateway.demo import data
everything = (data.customers(), data.orders(), data.products(), data.invoices())
print(hashlib.sha256(orjson.dumps(everything)).hexdigest())
"""


def test_the_data_is_identical_in_another_process_with_another_hash_seed() -> None:
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", _FINGERPRINT_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert other.stdout.strip() == _fingerprint()


def test_generating_again_gives_equal_data_and_another_seed_gives_other_data() -> None:
    assert data.generate_customers() == data.customers()
    assert data.generate_invoices() == data.invoices()
    other = data.generate_customers(seed=7, count=100)
    assert other != data.customers()[:100]
    assert other == data.generate_customers(seed=7, count=100)

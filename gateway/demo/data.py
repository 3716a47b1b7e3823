"""Deterministic demo data: Chinese customers, orders, products and invoices.

Every collection comes from its own ``random.Random`` seeded with ``"<seed>:<name>"``, so
the data is identical in every process and on every machine (string seeds do not depend
on ``PYTHONHASHSEED``), and one collection never shifts when another changes.

The cached accessors (``customers()``, ``orders()``, ``products()``, ``invoices()``) build
each collection once, on first use, and hand out the same tuple afterwards. The records
are plain dicts so they serialise straight through orjson; they are shared, so callers
treat them as read-only and copy before changing (the demo upstreams keep their edits in
a per-app overlay, see ``records.py``).

CRM records (JSON) carry typed values. ERP records (SOAP) carry the exact text of their
XML elements: money as ``"1280.00"``, stock as ``"120"``.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from functools import cache
from operator import mul
from typing import Any

from gateway.demo import names

DEFAULT_SEED = 20261126
CUSTOMER_COUNT = 30_000
ORDER_COUNT = 60_000
PRODUCT_COUNT = 500
INVOICE_COUNT = 5_000
SALES_OWNERS: tuple[str, ...] = tuple(f"sales{n:02d}" for n in range(1, 13))
CUSTOMER_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "contact_name",
    "phone",
    "id_number",
    "email",
    "credit_limit",
    "owner",
)
PRODUCT_FIELDS: tuple[str, ...] = (
    "Code",
    "Name",
    "ListPrice",
    "CostPrice",
    "Stock",
    "Warehouse",
)
INVOICE_FIELDS: tuple[str, ...] = ("Number", "CustomerName", "Amount", "IssuedAt", "BankAccount")

Record = dict[str, Any]

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_BIRTH_FIRST = date(1960, 1, 1).toordinal()
_BIRTH_SPAN_DAYS = date(2003, 12, 31).toordinal() - _BIRTH_FIRST
_CHINA_TZ = timezone(timedelta(hours=8))
_ORDERS_FIRST = datetime(2024, 1, 1, tzinfo=_CHINA_TZ)
_ORDERS_SPAN_S = 2 * 365 * 86_400
_INVOICES_FIRST = date(2024, 1, 1)


def _rng(seed: int, collection: str) -> random.Random:
    # Demo data, not secrets: a reproducible generator is the point.
    return random.Random(f"{seed}:{collection}")  # noqa: S311


def _resident_id_check_char(first17: str) -> str:
    """The GB 11643-1999 check character (``0``–``9`` or ``X``) for 17 leading digits."""
    total = sum(map(mul, map(int, first17), _ID_WEIGHTS))
    return _ID_CHECK_CHARS[total % 11]


def _luhn_check_digit(payload: str) -> str:
    """The Luhn (ISO/IEC 7812) digit that makes ``payload + digit`` valid."""
    total = 0
    # Walking right to left, the digit next to the (future) check digit is doubled.
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def _resident_id(region: str, born: date, sequence: int) -> str:
    first17 = f"{region}{born.year}{born.month:02d}{born.day:02d}{sequence:03d}"
    return first17 + _resident_id_check_char(first17)


def _phone(prefix: str, digits: int, spaced: bool) -> str:
    # Half the contacts were typed in by hand, half came from a system that adds +86.
    if spaced:
        return f"+86 {prefix} {digits // 10_000:04d} {digits % 10_000:04d}"
    return f"{prefix}{digits:08d}"


def generate_customers(seed: int = DEFAULT_SEED, count: int = CUSTOMER_COUNT) -> tuple[Record, ...]:
    """``count`` CRM customers with ids 1..count; company names are unique."""
    rng = _rng(seed, "customers")
    cities, brands, industries = names.CITIES, names.BRANDS, names.INDUSTRIES
    n_brand_industry = len(brands) * len(industries)
    combos = len(cities) * n_brand_industry
    if count > combos:
        raise ValueError(f"at most {combos} distinct company names; asked for {count}")
    # Every random column is drawn in bulk: choices(k=…) costs a fraction of a call per value.
    companies = rng.sample(range(combos), count)
    suffixes = rng.choices(names.COMPANY_SUFFIXES, k=count)
    surname_weights = [len(names.SURNAMES) - i for i in range(len(names.SURNAMES))]
    surnames = rng.choices(names.SURNAMES, weights=surname_weights, k=count)
    given = rng.choices(names.GIVEN_NAMES, k=count)
    prefixes = rng.choices(names.MOBILE_PREFIXES, k=count)
    phone_digits = rng.choices(range(100_000_000), k=count)
    spaced = rng.choices((True, False), k=count)
    region_picks = rng.choices(range(1_000), k=count)
    birthdays = rng.choices(range(_BIRTH_FIRST, _BIRTH_FIRST + _BIRTH_SPAN_DAYS), k=count)
    sequences = rng.choices(range(1, 1_000), k=count)
    personal = rng.choices((True, False), weights=(1, 3), k=count)
    mail_domains = rng.choices(names.PERSONAL_MAIL_DOMAINS, k=count)
    mail_numbers = rng.choices(range(1, 1_000), k=count)
    credit_limits = rng.choices(range(10_000, 5_000_000, 5_000), k=count)
    owners = rng.choices(SALES_OWNERS, k=count)
    out: list[Record] = []
    for i, combo in enumerate(companies):
        city, city_py, regions = cities[combo // n_brand_industry]
        brand, brand_py = brands[combo % n_brand_industry // len(industries)]
        industry, industry_py = industries[combo % len(industries)]
        surname, surname_py = surnames[i]
        given_name, given_py = given[i]
        if personal[i]:
            email = f"{surname_py}{given_py}{mail_numbers[i]}@{mail_domains[i]}"
        else:
            email = f"{given_py}.{surname_py}@{brand_py}-{industry_py}-{city_py}.com.cn"
        region = regions[region_picks[i] % len(regions)]
        out.append(
            {
                "id": i + 1,
                "name": f"{city}{brand}{industry}{suffixes[i]}",
                "contact_name": surname + given_name,
                "phone": _phone(prefixes[i], phone_digits[i], spaced[i]),
                "id_number": _resident_id(region, date.fromordinal(birthdays[i]), sequences[i]),
                "email": email,
                "credit_limit": credit_limits[i],
                "owner": owners[i],
            }
        )
    return tuple(out)


def generate_orders(
    seed: int = DEFAULT_SEED, count: int = ORDER_COUNT, customer_count: int = CUSTOMER_COUNT
) -> tuple[Record, ...]:
    """``count`` orders with ids 1..count in time order, each for an existing customer id."""
    rng = _rng(seed, "orders")
    customer_ids = rng.choices(range(1, customer_count + 1), k=count)
    statuses = rng.choices(names.ORDER_STATUSES, weights=names.ORDER_STATUS_WEIGHTS, k=count)
    # Amounts in fen: mostly a few thousand yuan, a long tail up to a few hundred thousand.
    amounts = rng.choices(range(50_000, 50_000_000), k=count)
    shrink = rng.choices((1, 4, 16, 64), weights=(1, 3, 4, 2), k=count)
    seconds = sorted(rng.choices(range(_ORDERS_SPAN_S), k=count))
    first = _ORDERS_FIRST.timestamp()
    return tuple(
        {
            "id": i + 1,
            "customer_id": customer_ids[i],
            "amount": amounts[i] // shrink[i] / 100,
            "status": statuses[i],
            "created_at": datetime.fromtimestamp(first + seconds[i], _CHINA_TZ).isoformat(),
        }
        for i in range(count)
    )


def generate_products(seed: int = DEFAULT_SEED, count: int = PRODUCT_COUNT) -> tuple[Record, ...]:
    """``count`` ERP products coded ``P-000001``…; cost is 55–85 % of the list price."""
    rng = _rng(seed, "products")
    out: list[Record] = []
    for index in range(count):
        family, specs, (low, high) = rng.choice(names.PRODUCT_FAMILIES)
        list_price = rng.uniform(low, high)
        out.append(
            {
                "Code": f"P-{index + 1:06d}",
                "Name": f"{family} {rng.choice(specs)}",
                "ListPrice": f"{list_price:.2f}",
                "CostPrice": f"{list_price * rng.uniform(0.55, 0.85):.2f}",
                "Stock": str(rng.randrange(0, 5_000)),
                "Warehouse": rng.choice(names.WAREHOUSES),
            }
        )
    return tuple(out)


def _unionpay_account(rng: random.Random) -> str:
    length = rng.randrange(16, 20)
    payload = "62" + "".join(str(rng.randrange(10)) for _ in range(length - 3))
    return payload + _luhn_check_digit(payload)


def generate_invoices(
    seed: int = DEFAULT_SEED,
    count: int = INVOICE_COUNT,
    customer_names: tuple[str, ...] | None = None,
) -> tuple[Record, ...]:
    """``count`` invoices billed to demo customers, each paid into a UnionPay account."""
    rng = _rng(seed, "invoices")
    if customer_names is None:
        customer_names = tuple(c["name"] for c in customers(seed))
    days = sorted(rng.randrange(2 * 365) for _ in range(count))
    out: list[Record] = []
    for index in range(count):
        issued = _INVOICES_FIRST + timedelta(days=days[index])
        province = rng.choice(names.INVOICE_PROVINCES)
        out.append(
            {
                "Number": f"{issued:%y}{province}2{index + 1:015d}",
                "CustomerName": rng.choice(customer_names),
                "Amount": f"{rng.lognormvariate(10, 1.0):.2f}",
                "IssuedAt": issued.isoformat(),
                "BankAccount": _unionpay_account(rng),
            }
        )
    return tuple(out)


@cache
def customers(seed: int = DEFAULT_SEED) -> tuple[Record, ...]:
    """The shared, read-only demo customers (built once per seed)."""
    return generate_customers(seed)


@cache
def orders(seed: int = DEFAULT_SEED) -> tuple[Record, ...]:
    """The shared, read-only demo orders (built once per seed)."""
    return generate_orders(seed)


@cache
def products(seed: int = DEFAULT_SEED) -> tuple[Record, ...]:
    """The shared, read-only demo products (built once per seed)."""
    return generate_products(seed)


@cache
def invoices(seed: int = DEFAULT_SEED) -> tuple[Record, ...]:
    """The shared, read-only demo invoices (built once per seed)."""
    return generate_invoices(seed)

"""Measure the response filters: throughput, small-body cost and peak memory.

Run: ``.venv/bin/python bench/filters_bench.py [--repeat N]``. Prints medians.

Targets (issue 3): 10,000-record JSON (~5 MB) through a plan with 5 hidden fields
>= 100 MB/s per core; SOAP >= 30 MB/s; peak memory <= 4x the body (tracemalloc); a 2 KB JSON
body with 2 hidden fields <= 60 us extra.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import orjson

from gateway.catalog import FieldCatalog
from gateway.fieldplan import FieldPlan, HideAction, HideRule
from gateway.masking import Masker, count_pii
from gateway.payloads import FilterResult, filter_response
from gateway.resources import ResourceMap

ROOT = Path(__file__).resolve().parent.parent
CATALOG = FieldCatalog.load(ROOT / "policies" / "fields.yaml")
RESOURCES = ResourceMap.load(ROOT / "policies" / "resources.yaml")
MASKER = Masker(b"bench-key-0123456789abcdef")
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
ERP_NS = "http://demo.wardgate.dev/erp"


def customers_json(count: int, note_len: int) -> bytes:
    note = ("Regular customer, prefers delivery on weekdays. " * 20)[:note_len]
    data = [
        {
            "id": i,
            "name": f"Customer {i} Trading Co., Ltd.",
            "contact_name": f"Contact Person {i}",
            "phone": f"1380013{i % 10000:04d}",
            "id_number": "11010519491231002X",
            "email": f"buyer{i}@example.com",
            "credit_limit": 50000 + i,
            "owner": f"sales{i % 17}",
            "notes": note,
        }
        for i in range(count)
    ]
    return orjson.dumps({"data": data, "page": 1, "page_size": count, "total": count})


def products_soap(count: int) -> bytes:
    items = "".join(
        f"<e:Product><e:Code>P{i:06d}</e:Code><e:Name>Industrial widget model {i} with a long"
        f" descriptive name for the catalogue</e:Name><e:ListPrice>{100 + i % 50}.50</e:ListPrice>"
        f"<e:CostPrice>{60 + i % 40}.25</e:CostPrice><e:Stock>{i % 500}</e:Stock>"
        f"<e:Warehouse>Shanghai Pudong Distribution Centre {i % 9}</e:Warehouse></e:Product>"
        for i in range(count)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP_NS}"><s:Body>'
        f'<e:GetProductsResponse xmlns:e="{ERP_NS}"><e:Products>{items}</e:Products>'
        "</e:GetProductsResponse></s:Body></s:Envelope>"
    ).encode()


def hide(*names: str, entity: str) -> FieldPlan:
    specs = CATALOG.fields(entity)
    rules = {n: specs[n].hide if n in specs else HideRule(n, HideAction.REDACT) for n in names}
    return FieldPlan(entity, hidden=rules)


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median (wall seconds, CPU seconds of this process) over ``repeat`` runs."""
    fn()  # warm the plan cache and the key memo
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return statistics.median(wall), statistics.median(cpu)


def peak_ratio(fn: Callable[[], FilterResult], size: int) -> float:
    """Peak traced allocation during one run, as a multiple of the body size."""
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    customers = RESOURCES.match("crm", "GET", "/api/customers", {}, None)
    products = RESOURCES.match(
        "erp", "POST", "/soap", {"SOAPAction": f"{ERP_NS}/GetProducts"}, None
    )
    assert customers is not None and products is not None
    big_json = customers_json(10_000, 400)
    json_plan = hide(
        "id_number", "credit_limit", "phone", "email", "contact_name", entity="customer"
    )
    soap = products_soap(10_000)
    soap_plan = hide("CostPrice", entity="product")
    small_json = customers_json(4, 200)
    small_plan = hide("id_number", "credit_limit", entity="customer")

    def run_json() -> FilterResult:
        return filter_response(
            customers, json_plan, "application/json", None, big_json,
            masker=MASKER, catalog=CATALOG, max_bytes=64 << 20,
        )  # fmt: skip

    def run_soap() -> FilterResult:
        return filter_response(
            products, soap_plan, "text/xml; charset=utf-8", None, soap,
            masker=MASKER, catalog=CATALOG, max_bytes=64 << 20,
        )  # fmt: skip

    def run_small() -> FilterResult:
        return filter_response(
            customers, small_plan, "application/json", None, small_json,
            masker=MASKER, catalog=CATALOG, max_bytes=64 << 20,
        )  # fmt: skip

    for name, fn, body in (
        ("json 10k records, 5 hidden", run_json, big_json),
        ("soap 10k records, 1 hidden", run_soap, soap),
    ):
        wall, cpu = timed(fn, args.repeat)
        _, pii = timed(lambda body=body: count_pii(body), args.repeat)
        mb = len(body) / 1e6
        print(
            f"{name}: {mb:.2f} MB; median wall {wall * 1e3:.1f} ms, CPU {cpu * 1e3:.1f} ms"
            f" = {mb / cpu:.0f} MB/s per core (of which PII counting {pii * 1e3:.1f} ms;"
            f" {mb / max(cpu - pii, 1e-9):.0f} MB/s without it);"
            f" peak memory {peak_ratio(fn, len(body)):.2f}x body"
        )
    wall, cpu = timed(run_small, 3000)
    print(
        f"json {len(small_json)} B, 2 hidden fields: median wall {wall * 1e6:.1f} us,"
        f" CPU {cpu * 1e6:.1f} us"
    )


if __name__ == "__main__":
    main()

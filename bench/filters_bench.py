"""Measure the response filters: throughput, small-body cost and peak memory.

Run: ``.venv/bin/python bench/filters_bench.py [--repeat N] [--no-write]``. Prints a markdown
table of medians and writes it into BENCHMARKS.md between the ``<!-- bench:filters -->``
markers (other sections of that file are left as they are).

Targets (issue 3): 10,000-record JSON (~6 MB) through a plan with 5 hidden fields
>= 100 MB/s per core; SOAP >= 30 MB/s; peak memory <= 4x the body; a 2 KB JSON body with
2 hidden fields <= 60 us extra. Speeds are CPU time of this process (``process_time``), so
other load on the machine inflates them less than wall time would.

Peak memory is the growth of the resident set while one body is filtered, measured in a
fresh child process (Linux ``/proc/self/clear_refs`` resets the high-water mark). It is not
``tracemalloc``'s peak: that counts bytes requested, and orjson's parser (yyjson) requests a
worst-case buffer of about 12x the input that it mostly never touches.
"""

from __future__ import annotations

import argparse
import fcntl
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import NamedTuple

import msgspec
import orjson
from lxml import etree

from gateway.catalog import FieldCatalog
from gateway.fieldplan import FieldPlan, HideAction, HideRule
from gateway.masking import Masker
from gateway.payloads import FilterResult, filter_response
from gateway.pii import count_pii
from gateway.resources import Resource, ResourceMap

ROOT = Path(__file__).resolve().parent.parent

CATALOG = FieldCatalog.load(ROOT / "policies" / "fields.yaml")
RESOURCES = ResourceMap.load(ROOT / "policies" / "resources.yaml")
MASKER = Masker(b"bench-key-0123456789abcdef")
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
ERP_NS = "http://demo.wardgate.dev/erp"
MARKER = "filters"


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


def hide(*names: str, entity: str, mask_pii: bool = False) -> FieldPlan:
    specs = CATALOG.fields(entity)
    rules = {n: specs[n].hide if n in specs else HideRule(n, HideAction.REDACT) for n in names}
    return FieldPlan(entity, hidden=rules, mask_pii=mask_pii)


class Case(NamedTuple):
    """One measured filter call: a resource, a plan and a body."""

    name: str
    resource: Resource
    plan: FieldPlan
    content_type: str
    body: bytes

    def run(self) -> FilterResult:
        return filter_response(
            self.resource, self.plan, self.content_type, None, self.body,
            masker=MASKER, catalog=CATALOG, max_bytes=64 << 20,
        )  # fmt: skip


def cases() -> dict[str, Case]:
    customers = RESOURCES.match("crm", "GET", "/api/customers", {}, None)
    products = RESOURCES.match(
        "erp", "POST", "/soap", {"SOAPAction": f"{ERP_NS}/GetProducts"}, None
    )
    assert customers is not None and products is not None, "policies/resources.yaml changed"
    big_json = customers_json(10_000, 400)
    five = ("id_number", "credit_limit", "phone", "email", "contact_name")
    return {
        "json": Case("JSON 10k records, 5 hidden", customers,
                     hide(*five, entity="customer"), "application/json", big_json),
        "json_masking": Case("JSON 10k records, 5 hidden + PII masking", customers,
                             hide(*five, entity="customer", mask_pii=True),
                             "application/json", big_json),
        "soap": Case("SOAP 10k records, 1 hidden", products, hide("CostPrice", entity="product"),
                     "text/xml; charset=utf-8", products_soap(10_000)),
        "small": Case("JSON 2 KB, 2 hidden", customers,
                      hide("id_number", "credit_limit", entity="customer"),
                      "application/json", customers_json(4, 200)),
    }  # fmt: skip


def cpu_medians(*calls: Callable[[], object], repeat: int) -> list[float]:
    """Median CPU seconds of each call over ``repeat`` rounds, the calls made in turn within
    a round so that all see the same machine (these shared machines change speed by half
    within an hour); one warm-up call each first (plan cache, key memos)."""
    for call in calls:
        call()
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(repeat):
        for call, spent in zip(calls, times, strict=True):
            start = time.process_time()
            call()
            spent.append(time.process_time() - start)
    return [statistics.median(spent) for spent in times]


def parse_and_write(case: Case) -> Callable[[], object]:
    """The case's body parsed and written back with nothing filtered: the floor under any
    parse-and-rewrite filter, and the machine's speed in this run."""
    body = case.body
    if case.content_type == "application/json":
        decode = msgspec.json.Decoder().decode
        return lambda: orjson.dumps(decode(body))
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return lambda: etree.tostring(etree.fromstring(body, parser))


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_in_child(key: str) -> float:
    """Peak resident growth while filtering ``key``'s body once, as a multiple of the body."""
    out = subprocess.run(
        [sys.executable, __file__, "--peak-of", key], check=True, capture_output=True, text=True
    )
    return float(out.stdout)


def measure_peak(key: str) -> float:
    case = cases()[key]
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to now
    before = _status_bytes("VmRSS")
    case.run()
    return (_status_bytes("VmHWM") - before) / len(case.body)


class Row(NamedTuple):
    case: str
    result: str
    vs_reference: str
    peak: str
    target: str
    met: str


def measure(repeat: int) -> tuple[list[Row], list[str]]:
    every = cases()
    rows, notes = [], []

    def throughput(key: str, target: float | None) -> None:
        case = every[key]
        mb = len(case.body) / 1e6
        spent, reference = cpu_medians(case.run, parse_and_write(case), repeat=repeat)
        speed = mb / spent
        peak = peak_in_child(key)
        misses = [] if target is None or speed >= target else ["speed"]
        misses += [] if target is None or peak <= 4 else ["memory"]
        met = "—" if target is None else f"no ({', '.join(misses)})" if misses else "yes"
        goal = "—" if target is None else f"≥ {target:.0f} MB/s, ≤ 4×"
        rows.append(Row(f"{case.name} ({mb:.2f} MB)", f"{speed:.0f} MB/s",
                        f"{spent / reference:.2f}×", f"{peak:.2f}×", goal, met))  # fmt: skip
        [pii] = cpu_medians(lambda: count_pii(case.body), repeat=repeat)
        notes.append(
            f"{case.name}: parse + write alone {mb / reference:.0f} MB/s in this run;"
            f" PII counting {pii * 1e3:.1f} ms of the filter's {spent * 1e3:.1f} ms"
        )

    throughput("json", 100)
    throughput("json_masking", None)
    throughput("soap", 30)
    small = every["small"]
    spent, reference = cpu_medians(small.run, parse_and_write(small), repeat=3000)
    micros = spent * 1e6
    rows.append(Row(f"{small.name} ({len(small.body)} B)", f"{micros:.1f} µs",
                    f"{spent / reference:.2f}×", "—", "≤ 60 µs",
                    "yes" if micros <= 60 else "no"))  # fmt: skip
    return rows, notes


def table(rows: list[Row], notes: list[str], repeat: int) -> str:
    lines = [
        f"Response filters, median CPU time per core over {repeat} runs (2 KB case: 3000 runs);"
        " × parse + write = the filter's time over the same body parsed and written back"
        " unfiltered, in turn with it (msgspec + orjson, lxml); peak = resident growth in a"
        f" fresh process ({date.today().isoformat()}).",
        "",
        "| case | speed | × parse + write | peak × body | target | met? |",
        "|---|---:|---:|---:|---|---|",
        *(
            f"| {r.case} | {r.result} | {r.vs_reference} | {r.peak} | {r.target} | {r.met} |"
            for r in rows
        ),
        "",
        *(f"- {note}" for note in notes),
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace (or append) this script's section of BENCHMARKS.md, nothing else."""
    path = ROOT / "BENCHMARKS.md"
    start, end = f"<!-- bench:{MARKER} -->", f"<!-- /bench:{MARKER} -->"
    block = f"{start}\n{text}\n{end}"
    with path.open("a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # another bench script may be writing its section
        handle.seek(0)
        doc = handle.read() or "# Benchmarks\n"
        if start in doc and end in doc:
            pattern = re.escape(start) + ".*?" + re.escape(end)
            doc = re.sub(pattern, lambda _: block, doc, count=1, flags=re.S)
        else:
            doc = doc.rstrip("\n") + "\n\n" + block + "\n"
        handle.seek(0)
        handle.truncate()
        handle.write(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--peak-of", help=argparse.SUPPRESS)  # the child of peak_in_child
    args = parser.parse_args()
    if args.peak_of:
        print(measure_peak(args.peak_of))
        return
    rows, notes = measure(args.repeat)
    text = table(rows, notes, args.repeat)
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()

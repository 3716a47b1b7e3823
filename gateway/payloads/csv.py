"""Filter a CSV export by its header row: hidden columns removed or masked in every row.

The header names are matched like JSON keys (casefolded, BOM stripped). Quoting follows
the ``csv`` module's defaults (RFC 4180: quoted fields may hold commas, quotes and line
breaks); the original line ending (CRLF or LF) and BOM are kept. Every data row is a
record. A body that is not UTF-8 is refused rather than guessed.
"""

from __future__ import annotations

import csv
import io

from gateway.fieldplan import HideAction, HideRule
from gateway.masking import Masker, mask_pii
from gateway.payloads.json import Unfilterable
from gateway.payloads.plan import COVERED, CompiledPlan

_BOM = "\ufeff"


def filter_csv(
    body: bytes, mapped: bool, plan: CompiledPlan, masker: Masker
) -> tuple[bytes, int, set[str]]:
    """(new body, data rows, names hidden). Unmapped CSV is not filtered by the dispatcher."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Unfilterable("the CSV body is not UTF-8") from None
    bom = text.startswith(_BOM)
    text = text.removeprefix(_BOM)
    newline = "\r\n" if "\r\n" in text[: text.find("\n") + 1 or len(text)] else "\n"
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise Unfilterable(f"the CSV body cannot be parsed ({exc})") from None
    if not rows:
        return body, 0, set()
    table = plan.inside if mapped else plan.outside
    header = rows[0]
    rules = [table.lookup(name.strip()) for name in header]
    keep = [i for i, rule in enumerate(rules) if not (rule and rule.action is HideAction.REMOVE)]
    masked = {r.field for r in rules if r is not None and r is not COVERED}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow([header[i] for i in keep])
    width = len(header)
    records = 0
    for row in rows[1:]:
        if not row:
            continue  # a blank line is not a record
        records += 1
        if len(row) != width:
            raise Unfilterable(f"a CSV row has {len(row)} fields, the header has {width}")
        writer.writerow([_cell(row[i], rules[i], masker, plan.mask_pii) for i in keep])
    return ((_BOM if bom else "") + out.getvalue()).encode(), records, masked


def _cell(value: str, rule: HideRule | None, masker: Masker, pii: bool) -> str:
    if rule is None:
        return mask_pii(value)[0] if pii and value else value
    if rule is COVERED:
        return value
    return masker.hide_text(rule, value)

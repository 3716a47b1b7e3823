"""Filter a JSON response: hide fields in records, apply the safety net everywhere else.

The body is parsed, edited in place in one iterative walk (no recursion limit to hit) and
serialised again, so nothing of the original bytes survives unexamined:

- duplicate keys: the parser keeps the last copy, the walk hides it, the output has one
  copy; no earlier copy can slip through;
- escaped keys (``"cost\\u005fprice"``) are compared after unescaping, case-insensitively;
- a hidden name is hidden at any depth (objects in arrays of arrays included).

Parsing uses the standard library: as fast as orjson on string-heavy bodies, but its peak
memory is about 3x the body where orjson's is about 14x, and integers stay exact. orjson
writes the result; what it cannot write (integers beyond 64 bits, lone surrogates, nesting
deeper than 254) falls back to the standard library. Anything that cannot be parsed
(invalid UTF-8, NaN, nesting deeper than the interpreter's recursion limit) is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from gateway.fieldplan import HideAction
from gateway.masking import Masker, mask_pii
from gateway.payloads.plan import COVERED, CompiledPlan, NameTable

if TYPE_CHECKING:  # resources imports payloads.safexml: a runtime import would be circular
    from gateway.resources import PathStep


class Unfilterable(Exception):
    """The body cannot be filtered; the dispatcher turns this into a 502."""


def locate_records(doc: Any, steps: tuple[PathStep, ...]) -> list[Any]:
    """The values the records path selects (``$`` alone: the document itself)."""
    current = [doc]
    for kind, key in steps:
        selected: list[Any] = []
        for node in current:
            if kind == "key":
                if type(node) is dict and key in node:
                    selected.append(node[key])
            elif type(node) is dict:
                selected.extend(node.values())
            elif type(node) is list:
                selected.extend(node)
        current = selected
    return current


class _Walk:
    """One response's walk: edits containers in place and remembers what it hid."""

    def __init__(self, masker: Masker, mask_pii: bool) -> None:
        self.masker = masker
        self.mask_pii = mask_pii
        self.masked: set[str] = set()

    def run(self, root: Any, table: NameTable, skip: frozenset[int] = frozenset()) -> None:
        """Hide by ``table`` everywhere below ``root``, except inside containers in ``skip``."""
        stack = [root]
        while stack:
            node = stack.pop()
            if skip and id(node) in skip:
                continue
            children: Iterable[Any]
            if type(node) is dict:
                self._hide_keys(node, table)
                children = node.values()
            elif type(node) is list:
                if self.mask_pii:
                    node[:] = [mask_pii(v)[0] if type(v) is str else v for v in node]
                children = node
            else:
                continue
            stack.extend(v for v in children if type(v) is dict or type(v) is list)

    def _hide_keys(self, node: dict[str, Any], table: NameTable) -> None:
        # Set operations run in C: most objects have no key to hide and no unseen spelling.
        keys = node.keys()
        hits = keys & table.hiding
        for key in keys - table.memo.keys():
            rule = table.lookup(key)
            if rule is not None and rule is not COVERED:
                hits.add(key)  # also when the memo is full and did not keep it
        for key in hits:
            rule = table.lookup(key)
            assert rule is not None
            self.masked.add(rule.field)
            if rule.action is HideAction.REMOVE:
                del node[key]
            else:
                node[key] = self.masker.hider(rule)(node[key])
        if self.mask_pii:
            for key, value in node.items():
                if type(value) is str and table.lookup(key) is None:
                    node[key] = mask_pii(value)[0]


def filter_json(
    body: bytes,
    steps: tuple[PathStep, ...] | None,
    plan: CompiledPlan,
    masker: Masker,
) -> tuple[bytes, int, set[str]]:
    """(new body, records, names hidden). ``steps`` None: unmapped, safety net only."""
    try:
        doc = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Unfilterable(f"the JSON body cannot be parsed ({exc})") from None
    walk = _Walk(masker, plan.mask_pii)
    records: list[Any] = []
    if steps is not None:
        records = locate_records(doc, steps)
        for record in records:
            walk.run(record, plan.inside)
    containers = frozenset(id(r) for r in records if type(r) is dict or type(r) is list)
    walk.run(doc, plan.outside, containers)
    return _dump(doc), len(records), walk.masked


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _dump(doc: Any) -> bytes:
    try:
        return orjson.dumps(doc)
    except orjson.JSONEncodeError:
        pass  # big integers, lone surrogates, deep nesting: the slower exact writer
    try:
        return json.dumps(doc, separators=(",", ":")).encode()
    except (ValueError, RecursionError) as exc:
        raise Unfilterable(f"the filtered JSON cannot be written ({exc})") from None

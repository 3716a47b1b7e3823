"""A field plan compiled for the filters, and the result every filter returns.

Compiled once per (plan, catalog) object pair and cached by identity, so the per-record
work is one dict lookup per key (per object, for JSON: ``NameTable.shape``). Names are
casefolded: ``Cost_Price``, ``COST_PRICE`` and
``cost\\u005fprice`` (after JSON unescaping) are all ``cost_price``.

Two tables:
- ``inside`` (within a mapped record): the plan's hidden fields, plus the always-mask names
  the entity does not declare (redacted); declared, allowed fields are marked ``COVERED``
  (shown as they are, and exempt from PII masking).
- ``outside`` (everything else in the body): the plan's hidden fields and every always-mask
  name. Hidden fields are hidden wherever they appear: over-hiding outside a record is
  harmless, a copy of a record's field in an envelope would be a leak.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from gateway.catalog import FieldCatalog
from gateway.fieldplan import FieldPlan, HideAction, HideRule

COVERED: Final = HideRule("", HideAction.REDACT)  # sentinel: a declared field the plan allows
_MEMO_LIMIT = 4096  # distinct key spellings remembered per table (upstream keys repeat)
_SHAPE_LIMIT = 1024  # distinct key sets remembered per table ...
_SHAPE_KEYS_LIMIT = 64  # ... each of at most this many keys (records, not big maps)
_CACHE_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class FilterResult:
    """What a filter made of one response body.

    ``content_encoding`` is the encoding of ``body`` (``None`` = identity): the proxy sets
    ``Content-Encoding`` and ``Content-Length`` from it. ``masked_fields`` names fields that
    were hidden at least once (never their values); ``pii_hits`` counts PII found in the
    upstream's body by kind, masked or not.
    """

    body: bytes
    records: int
    masked_fields: tuple[str, ...] = ()
    pii_hits: dict[str, int] = field(default_factory=dict)
    content_encoding: str | None = None


@dataclass(frozen=True, slots=True)
class Shape:
    """What a table does to an object with these exact keys (in this order)."""

    hits: tuple[tuple[str, HideRule], ...]  # (key, rule) for every key to hide
    plain: tuple[str, ...]  # keys no rule names: their strings are masked for PII on request


@dataclass(frozen=True, slots=True)
class NameTable:
    """Casefolded name -> rule (``COVERED`` or a ``HideRule``); memos for exact spellings.

    Records of one response nearly always share their keys, so the JSON filter looks up a
    whole object's keys at once (``shape``): one dict lookup per object, not one per key.
    """

    rules: dict[str, HideRule]
    memo: dict[str, HideRule | None] = field(default_factory=dict)
    tag_memo: dict[str, HideRule | None] = field(default_factory=dict)
    shapes: dict[tuple[str, ...], Shape] = field(default_factory=dict)

    def lookup(self, name: str) -> HideRule | None:
        """The rule for this exact spelling (memoised), ``None`` when it is a plain name."""
        try:
            return self.memo[name]
        except KeyError:
            rule = self.rules.get(name.casefold())
            if len(self.memo) < _MEMO_LIMIT:
                self.memo[name] = rule
            return rule

    def shape(self, keys: tuple[str, ...]) -> Shape:
        """The ``Shape`` for an object's keys (memoised while the memo has room)."""
        try:
            return self.shapes[keys]
        except KeyError:
            hits, plain = [], []
            for key in keys:
                rule = self.lookup(key)
                if rule is None:
                    plain.append(key)
                elif rule is not COVERED:
                    hits.append((key, rule))
            shape = Shape(tuple(hits), tuple(plain))
            if len(self.shapes) < _SHAPE_LIMIT and len(keys) <= _SHAPE_KEYS_LIMIT:
                self.shapes[keys] = shape
            return shape

    def lookup_tag(self, tag: str) -> HideRule | None:
        """The rule for an lxml tag or attribute name (``{namespace}local``): by local name."""
        try:
            return self.tag_memo[tag]
        except KeyError:
            rule = self.rules.get(tag.rpartition("}")[2].casefold())
            if len(self.tag_memo) < _MEMO_LIMIT:
                self.tag_memo[tag] = rule
            return rule


@dataclass(frozen=True, slots=True)
class CompiledPlan:
    """The filters' view of a ``FieldPlan`` (or of no plan: safety net only)."""

    inside: NameTable
    outside: NameTable
    mask_pii: bool
    write_denied: frozenset[str]  # casefolded


_cache: dict[tuple[int, int], tuple[FieldPlan | None, FieldCatalog, CompiledPlan]] = {}


def compile_plan(plan: FieldPlan | None, catalog: FieldCatalog) -> CompiledPlan:
    """The compiled plan, cached on the identity of ``plan`` and ``catalog``."""
    key = (id(plan), id(catalog))
    hit = _cache.get(key)
    if hit is not None and hit[0] is plan and hit[1] is catalog:
        return hit[2]
    compiled = _compile(plan, catalog)
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()  # plans are recompiled per policy version; a full reset is cheap
    _cache[key] = (plan, catalog, compiled)  # holding the objects keeps their ids unique
    return compiled


def _compile(plan: FieldPlan | None, catalog: FieldCatalog) -> CompiledPlan:
    hidden = {name.casefold(): rule for name, rule in (plan.hidden.items() if plan else ())}
    declared = catalog.declared(plan.entity) if plan else frozenset()
    safety = {
        name.casefold(): HideRule(name, HideAction.REDACT) for name in sorted(catalog.always_mask)
    }
    inside: dict[str, HideRule] = dict.fromkeys(declared, COVERED)
    inside.update({name: rule for name, rule in safety.items() if name not in declared})
    inside.update(hidden)
    outside = {**safety, **hidden}
    return CompiledPlan(
        inside=NameTable(inside),
        outside=NameTable(outside),
        mask_pii=bool(plan and plan.mask_pii),
        write_denied=frozenset(n.casefold() for n in plan.write_denied) if plan else frozenset(),
    )

"""Compiled field plans: how one set of roles sees and writes one entity.

The authorize stage compiles a ``FieldPlan`` once per (roles, upstream, entity, policy
version) from Casbin's field rules and the field catalog (``policies/fields.yaml``). The
payload filters only read it: no Casbin call per record or per field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class HideAction(StrEnum):
    """How a field the roles may not read is hidden (``fields.yaml`` ``hide:``)."""

    REMOVE = "remove"  # the key / element disappears
    REDACT = "redact"  # replaced by a fixed marker
    PARTIAL = "partial"  # first/last N characters kept, the rest replaced by '*'
    HASH = "hash"  # keyed HMAC-SHA256, stable per deployment so joins still work
    NULL = "null"  # JSON null / empty element


@dataclass(frozen=True, slots=True)
class HideRule:
    """One hidden field and how to hide it."""

    field: str
    action: HideAction
    keep_first: int = 0
    keep_last: int = 0


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """What a set of roles may read and write of one entity.

    ``hidden`` maps a field name (as spelled in the catalog) to how it is hidden.
    ``write_denied`` names the fields a write must not touch.
    ``mask_pii`` asks the filter to mask PII found in string fields the catalog does not
    cover (PII hits are always counted).
    """

    entity: str
    hidden: dict[str, HideRule] = field(default_factory=dict)
    write_denied: frozenset[str] = frozenset()
    mask_pii: bool = False

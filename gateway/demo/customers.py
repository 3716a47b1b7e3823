"""Validating and applying changes to a demo CRM customer (merge patch and JSON Patch).

Pure functions, no HTTP: the CRM app turns ``PatchError`` into a 400. A patch is checked
completely before anything is applied, so a rejected patch changes nothing.
"""

from __future__ import annotations

import math
from typing import Any

from gateway.demo.data import CUSTOMER_FIELDS, Record

MAX_TEXT = 200
_TEXT_FIELDS = frozenset({"name", "contact_name", "phone", "id_number", "email", "owner"})
_NUMBER_FIELDS = frozenset({"credit_limit"})
_READ_ONLY = frozenset({"id"})


class PatchError(ValueError):
    """The patch cannot be applied; the message names the field or operation and the fix."""


def merge_patch_changes(patch: Any) -> dict[str, Any]:
    """The field changes of an RFC 7396 merge patch (a JSON object of field → new value)."""
    if not isinstance(patch, dict):
        raise PatchError("a merge patch must be a JSON object of field names to new values")
    return _checked(patch)


def json_patch_changes(operations: Any) -> dict[str, Any]:
    """The field changes of an RFC 6902 JSON Patch made only of ``replace`` operations."""
    if not isinstance(operations, list) or not operations:
        raise PatchError("a JSON Patch must be a non-empty JSON array of operations")
    changes: dict[str, Any] = {}
    for number, operation in enumerate(operations):
        if not isinstance(operation, dict) or operation.get("op") != "replace":
            raise PatchError(f"operation {number}: only {{'op': 'replace', …}} is supported")
        if set(operation) != {"op", "path", "value"}:
            raise PatchError(f"operation {number}: needs exactly 'op', 'path' and 'value'")
        changes[_pointer_field(operation["path"], number)] = operation["value"]
    return _checked(changes)


def apply_changes(customer: Record, changes: dict[str, Any]) -> Record:
    """A new record: ``customer`` with ``changes`` (already checked) applied."""
    return {**customer, **changes}


def _pointer_field(pointer: Any, number: int) -> str:
    # A customer is flat, so only "/<field>" makes sense; "~1" and "~0" are RFC 6901 escapes.
    if not isinstance(pointer, str) or not pointer.startswith("/") or pointer.count("/") != 1:
        raise PatchError(f"operation {number}: path must look like '/email', got {pointer!r}")
    return pointer[1:].replace("~1", "/").replace("~0", "~")


def _checked(changes: dict[str, Any]) -> dict[str, Any]:
    if not changes:
        raise PatchError("the patch changes nothing; name at least one field")
    for field, value in changes.items():
        if field in _READ_ONLY:
            raise PatchError(f"field {field!r} is read-only")
        if field not in CUSTOMER_FIELDS:
            known = ", ".join(f for f in CUSTOMER_FIELDS if f not in _READ_ONLY)
            raise PatchError(f"unknown field {field!r}; customers have: {known}")
        if value is None:
            raise PatchError(f"field {field!r} cannot be removed; send a new value instead")
        if field in _TEXT_FIELDS and not _is_text(value):
            raise PatchError(f"field {field!r} must be non-empty text of at most {MAX_TEXT}")
        if field in _NUMBER_FIELDS and not _is_amount(value):
            raise PatchError(f"field {field!r} must be a finite number of 0 or more")
    return changes


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and len(value.strip()) > 0 and len(value) <= MAX_TEXT


def _is_amount(value: Any) -> bool:
    # bool is an int subclass; true/false is not a credit limit.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value >= 0

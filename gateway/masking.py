"""Hiding values: the catalog's hide actions, and PII masked inside free text.

``Masker.hide(rule, value)`` applies a catalog hide action to one JSON/XML/CSV value
(``remove`` is structural and done by the filters); ``Masker.hider(rule)`` is that action as
a function, built once per rule, for the filters to map over many values.
``mask_pii`` masks what the detectors in ``gateway.pii`` find in a string.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from gateway._partialmask import PartialMask
from gateway.fieldplan import HideAction, HideRule
from gateway.pii import find_pii

REDACTED = "[REDACTED]"


class Masker:
    """Applies hide actions; ``hash`` is keyed HMAC-SHA256 so joins work but guesses do not."""

    def __init__(self, hash_key: bytes) -> None:
        if len(hash_key) < 16:
            raise ValueError("the field hash key must be at least 16 bytes")
        self._key = hash_key
        self._hiders: dict[HideRule, Callable[[Any], Any]] = {}

    def __repr__(self) -> str:
        return "Masker(hash_key=[secure])"

    def hide(self, rule: HideRule, value: Any) -> Any:
        """The value as the rule shows it; structures (objects, lists) are redacted whole."""
        return self.hider(rule)(value)

    def hider(self, rule: HideRule) -> Callable[[Any], Any]:
        """A function applying ``rule`` to one value, built once per rule."""
        try:
            return self._hiders[rule]
        except KeyError:
            hider = self._hiders[rule] = self._build(rule)
            return hider

    def _build(self, rule: HideRule) -> Callable[[Any], Any]:
        action, first, last = rule.action, rule.keep_first, rule.keep_last
        if action is HideAction.NULL:
            return lambda value: None
        if action is HideAction.REDACT or action is HideAction.REMOVE:
            return lambda value: None if value is None else REDACTED
        if action is HideAction.PARTIAL:
            return _partial_hider(first, last)
        shown = self.hash
        return lambda value: shown(value) if type(value) is str else _hide_other(value, shown)

    def hide_text(self, rule: HideRule, text: str) -> str:
        """For XML and CSV, where every value is text: ``null`` becomes empty."""
        hidden = self.hide(rule, text)
        return "" if hidden is None else hidden

    def hash(self, text: str) -> str:
        return "h:" + hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()


def _hide_other(value: Any, shown: Callable[[str], str]) -> Any:
    """A non-string value: null stays null, structures are redacted whole, scalars as text."""
    if value is None:
        return None
    if isinstance(value, dict | list):
        return REDACTED
    if isinstance(value, bool):
        return shown("true" if value else "false")
    return shown(str(value))


def partial(text: str, keep_first: int, keep_last: int) -> str:
    """Keep the first/last characters (code points), '*' between; short values all '*'."""
    return _partial_hider(keep_first, keep_last)(text)


@lru_cache(maxsize=256)
def _partial_hider(first: int, last: int) -> Callable[[Any], Any]:
    # Compiled (gateway/_partialmask.c): the JSON filter calls it once per hidden value.
    return PartialMask(first, last, _hide_other)


def mask_pii(text: str) -> tuple[str, dict[str, int]]:
    """Mask every PII occurrence (keeping the last 4 characters, the e-mail's domain)."""
    hits = find_pii(text)
    if not hits:
        return text, {}
    out: list[str] = []
    pos = 0
    for hit in hits:
        out.append(text[pos : hit.start])
        found = text[hit.start : hit.end]
        if hit.kind == "email":
            local, _, domain = found.partition("@")
            out.append("*" * len(local) + "@" + domain)
        else:
            out.append(partial(found, 0, 4))
        pos = hit.end
    out.append(text[pos:])
    return "".join(out), dict(Counter(hit.kind for hit in hits))

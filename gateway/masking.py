"""Hiding one value, and finding PII in text.

``Masker.hide(rule, value)`` applies a catalog hide action to one JSON/XML/CSV value
(``remove`` is structural and done by the filters). The PII detectors are pure functions
over compiled regexes; every candidate is validated (check digit, date, Luhn) so that
random digit runs are not flagged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from datetime import date
from typing import Any, Literal, NamedTuple

from gateway.fieldplan import HideAction, HideRule

REDACTED = "[REDACTED]"
PiiKind = Literal["cn_resident_id", "cn_mobile", "bank_card", "email"]


class Masker:
    """Applies hide actions; ``hash`` is keyed HMAC-SHA256 so joins work but guesses do not."""

    def __init__(self, hash_key: bytes) -> None:
        if len(hash_key) < 16:
            raise ValueError("the field hash key must be at least 16 bytes")
        self._key = hash_key

    def __repr__(self) -> str:
        return "Masker(hash_key=[secure])"

    def hide(self, rule: HideRule, value: Any) -> Any:
        """The value as the rule shows it; structures (objects, lists) are redacted whole."""
        action = rule.action
        if action is HideAction.NULL or value is None:
            return None
        if action is HideAction.REDACT or action is HideAction.REMOVE:
            return REDACTED
        if isinstance(value, dict | list):
            return REDACTED
        text = value if isinstance(value, str) else _scalar_text(value)
        if action is HideAction.PARTIAL:
            return partial(text, rule.keep_first, rule.keep_last)
        return self.hash(text)

    def hide_text(self, rule: HideRule, text: str) -> str:
        """For XML and CSV, where every value is text: ``null`` becomes empty."""
        hidden = self.hide(rule, text)
        return "" if hidden is None else hidden

    def hash(self, text: str) -> str:
        return "h:" + hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def partial(text: str, keep_first: int, keep_last: int) -> str:
    """Keep the first/last characters (code points), '*' between; short values all '*'."""
    if len(text) <= keep_first + keep_last:  # nothing left to hide: hide it all
        return "*" * len(text)
    return (
        text[:keep_first]
        + "*" * (len(text) - keep_first - keep_last)
        + text[len(text) - keep_last :]
    )


# --- PII detectors -------------------------------------------------------------------


class PiiHit(NamedTuple):
    kind: PiiKind
    start: int
    end: int


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{16}[0-9Xx](?![0-9A-Za-z])", re.ASCII)
_MOBILE = re.compile(r"(?<![\d+])(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)", re.ASCII)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])", re.ASCII)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}")
_DIGITS = re.compile(r"\d{11}|\d[ -]\d", re.ASCII)  # every digit-based kind has one of these
_SEPARATORS = str.maketrans("", "", " -")


def is_resident_id(candidate: str) -> bool:
    """GB 11643: 17 digits + check character, with a real birth date at positions 7-14."""
    if len(candidate) != 18 or not candidate[:17].isascii() or not candidate[:17].isdigit():
        return False
    try:
        born = date(int(candidate[6:10]), int(candidate[10:12]), int(candidate[12:14]))
    except ValueError:
        return False
    if born.year < 1900 or born > date.today():
        return False
    total = sum(int(d) * w for d, w in zip(candidate[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == candidate[17].upper()


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_unionpay(digits: str) -> bool:
    """UnionPay cards start with 62 and have 16-19 digits (flagged as such in audits)."""
    return digits.startswith("62") and 16 <= len(digits) <= 19


def is_bank_card(digits: str) -> bool:
    """13-19 digits passing Luhn."""
    return 13 <= len(digits) <= 19 and digits.isdigit() and luhn_valid(digits)


def find_pii(text: str) -> list[PiiHit]:
    """Every validated PII occurrence, in text order; overlapping candidates count once."""
    hits: list[PiiHit] = []
    if "@" in text:
        hits.extend(PiiHit("email", m.start(), m.end()) for m in _EMAIL.finditer(text))
    if _DIGITS.search(text):
        hits.extend(
            PiiHit("cn_resident_id", m.start(), m.end())
            for m in _RESIDENT_ID.finditer(text)
            if is_resident_id(m.group())
        )
        hits.extend(PiiHit("cn_mobile", m.start(), m.end()) for m in _MOBILE.finditer(text))
        hits.extend(
            PiiHit("bank_card", m.start(), m.end())
            for m in _CARD.finditer(text)
            if is_bank_card(m.group().translate(_SEPARATORS))
        )
    return _without_overlaps(hits)


def _without_overlaps(hits: list[PiiHit]) -> list[PiiHit]:
    # An ID that also passes Luhn, or a mobile inside a card number, is reported once:
    # the earlier, then the longer, then the more specific kind (list order) wins.
    order = {"email": 0, "cn_resident_id": 1, "cn_mobile": 2, "bank_card": 3}
    kept: list[PiiHit] = []
    for hit in sorted(hits, key=lambda h: (h.start, -(h.end - h.start), order[h.kind])):
        if not kept or hit.start >= kept[-1].end:
            kept.append(hit)
    return kept


def count_pii(text: str) -> Counter[str]:
    return Counter(hit.kind for hit in find_pii(text))


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

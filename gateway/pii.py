"""PII detectors: find, count and pre-screen personal data in text.

Mainland China resident IDs (GB 11643 check digit and a real birth date), +86 mobile numbers,
bank card numbers (Luhn; UnionPay ``62`` also without it) and e-mail addresses. Candidates
are found by compiled regexes first and validated after, so that random digit runs are not
flagged. ``find_pii`` is the reference; ``count_pii`` counts the same hits over a whole
response body without decoding it, and ``may_hold_pii`` is a prefilter that can only say
"certainly none".
"""

from __future__ import annotations

import calendar
import re
import time
from collections import Counter
from datetime import date
from functools import lru_cache
from operator import attrgetter
from typing import Literal, NamedTuple

from gateway._piiscan import scan

PiiKind = Literal["cn_resident_id", "cn_mobile", "bank_card", "email"]


class PiiHit(NamedTuple):
    kind: PiiKind
    start: int
    end: int


# Per weighted sum mod 11, the check character (as byte values, X in either case).
_ID_CHECK = tuple(frozenset(c.encode() + c.lower().encode()) for c in "10X98765432")
# Candidates first, validation after: a digit run of 10+ characters (every digit-based kind
# is at least that long) and an '@' followed by a domain. Both patterns start with something
# the regex engine can skip to quickly; the exact patterns then run only inside candidates.
_DIGIT_RUN = re.compile(r"\d[\d \-]{8,}[\dXx]", re.ASCII)
_EMAIL_DOMAIN = re.compile(r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![A-Za-z0-9-])")
_EMAIL_LOCAL_REVERSED = re.compile(r"[A-Za-z0-9._%+-]+")
_RESIDENT_ID = re.compile(r"(?<!\d)[1-9]\d{16}[0-9Xx](?![\dXx])", re.ASCII)
_MOBILE = re.compile(r"(?<![\d+])(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)", re.ASCII)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])", re.ASCII)
_SEPARATORS = str.maketrans("", "", " -")


def is_resident_id(candidate: str) -> bool:
    """GB 11643: 17 digits + check character, with a real birth date at positions 7-14."""
    return len(candidate) == 18 and candidate.isascii() and _is_resident_id(candidate.encode())


def _is_resident_id(run: bytes) -> bool:
    """``is_resident_id`` of 18 bytes."""
    body = run[:17]
    if not body.isdigit():
        return False
    # The date first, as fixed-width digit strings: it rejects most random digit runs
    # without building a date object.
    born = run[6:14]
    month_day = born[4:]
    if month_day not in _MONTH_DAYS or born < b"19000101":
        return False
    if born > _LOADED_ON and born > _today(int(time.time()) // 86400):
        return False  # born after today (dates before the import day need no clock)
    if month_day == b"0229" and not calendar.isleap(int(born[:4])):
        return False
    # The weights are 2**(17-i) mod 11, and 13 = 2 (mod 11): the weighted sum is congruent
    # to twice the digits read in base 13, which int() computes in C.
    return run[17] in _ID_CHECK[2 * int(body, 13) % 11]


# Every MMDD of a leap year; 29 February is checked against the year separately.
_MONTH_DAYS = frozenset(
    b"%02d%02d" % (month, day)
    for month in range(1, 13)
    for day in range(1, calendar.monthrange(2000, month)[1] + 1)
)


@lru_cache(maxsize=1)
def _today(_day: int) -> bytes:
    # Cached per UTC day number: date.today() is slow in a hot loop.
    return date.today().strftime("%Y%m%d").encode()


_LOADED_ON = _today(int(time.time()) // 86400)


# Luhn's doubled digit (2d, minus 9 above 9) as a bytes.translate table over ASCII digits.
_LUHN_DOUBLED = bytes.maketrans(
    b"0123456789", bytes(d * 2 - 9 if d > 4 else d * 2 for d in range(10))
)
_LUHN_PLAIN = bytes.maketrans(b"0123456789", bytes(range(10)))


def _luhn_valid(raw: bytes) -> bool:
    return (
        sum(raw[-1::-2].translate(_LUHN_PLAIN)) + sum(raw[-2::-2].translate(_LUHN_DOUBLED))
    ) % 10 == 0


def is_unionpay(digits: str) -> bool:
    """UnionPay: 62 followed by 14-17 digits. Not every UnionPay card carries a Luhn digit."""
    return digits.startswith("62") and 16 <= len(digits) <= 19


def is_bank_card(digits: str) -> bool:
    """13-19 ASCII digits passing Luhn, or a UnionPay number (flagged even without Luhn)."""
    return digits.isascii() and _is_bank_card(digits.encode())


def _is_bank_card(raw: bytes) -> bool:
    size = len(raw)
    return (
        13 <= size <= 19
        and raw.isdigit()
        and (_luhn_valid(raw) or (size >= 16 and raw.startswith(b"62")))
    )


def find_pii(text: str) -> list[PiiHit]:
    """Every validated PII occurrence, in text order; overlapping candidates count once."""
    digits, emails = _scan(text)
    if not digits or not emails:
        return digits or emails
    return sorted(emails + digits, key=_START)


def may_hold_pii(text: str) -> bool:
    """False only when ``find_pii`` would find nothing: no '@' and no candidate digit run.

    A prefilter for masking: one regex search over several values joined by a character
    no detector matches (``"\0".join(values)``) clears them all at once.
    """
    if "@" in text:
        return True
    if len(text) < 64:
        return _DIGIT_RUN.search(text) is not None
    # Longer text: the zeroed-digits copy lets the regex engine skip ahead by a literal.
    zeroed = text.encode("utf-8", "surrogatepass").translate(_SHADOW)
    return _SHADOW_RUN.search(zeroed) is not None


def count_pii(data: str | bytes) -> Counter[str]:
    """PII occurrences by kind, exactly as ``find_pii`` finds them in the same text.

    Built for whole response bodies: ``bytes`` (UTF-8, or any ASCII-compatible encoding:
    every pattern is ASCII) are scanned without decoding, by compiled code
    (``gateway/_piiscan.c``): it counts e-mails and the bare digit runs it can
    classify. What it leaves undecided (runs with separators, hits whose neighbours could
    make them part of an e-mail) is decided here, with the e-mails' positions.
    """
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    *found, undecided = scan(raw, _today(int(time.time()) // 86400))
    counts: Counter[str] = Counter(
        {kind: n for kind, n in zip(_SCANNED_KINDS, found, strict=True) if n}
    )
    near_email: list[PiiHit] = []  # hits that may lie inside an e-mail: decided below
    for code, start, end in undecided:
        if code < 0:  # a run with separators
            near_email.extend(_window_hits(raw, start, end))
        else:
            near_email.append(PiiHit(_SCANNED_KINDS[code], start, end))
    if near_email:
        counts.update(hit.kind for hit in _outside_emails(raw, near_email, _email_ats(raw)))
    return counts


# What the scanner counts, in its order (undecided hits carry the index of their kind).
_SCANNED_KINDS: tuple[PiiKind, ...] = ("cn_mobile", "cn_resident_id", "bank_card", "email")


def _window_hits(raw: bytes, start: int, end: int) -> list[PiiHit]:
    """``_digit_hits`` for a run with separators, at offsets into ``raw``."""
    if start and raw[start - 1] == _PLUS:
        start -= 1  # the '+' of +86 belongs to the number
    # A latin-1 window maps bytes to characters one to one: offsets stay valid, and the
    # byte before the run is there for the detectors' look-behind.
    base = max(0, start - 1)
    window = raw[base:end].decode("latin-1")
    return [
        PiiHit(hit.kind, hit.start + base, hit.end + base)
        for hit in _digit_hits(window, start - base, end - base)
    ]


_SPAN = re.Match.span
_SHADOW = bytes.maketrans(b"123456789", b"000000000")
_SHADOW_RUN = re.compile(_DIGIT_RUN.pattern.replace(r"\d", "0").encode())
# An e-mail's '@', with a local-part character before it, then its domain. The look-behind
# comes after the '@' so that the pattern still starts with a literal the engine skips to.
_EMAIL_BYTES = re.compile(b"@(?<=[A-Za-z0-9._%+-]@)" + _EMAIL_DOMAIN.pattern[1:].encode())
_EMAIL_LOCAL_BYTES = re.compile(_EMAIL_LOCAL_REVERSED.pattern.encode())
_LOCAL_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-"
_PLUS = ord("+")


def _email_ats(raw: bytes) -> list[tuple[int, int]]:
    """(position of '@', end of domain) of every e-mail ``_emails`` would find.

    ``_emails`` skips an '@' with no local part before it; such a candidate spans no other
    '@', so skipping it in the pattern instead finds the same later candidates.
    """
    return list(map(_SPAN, _EMAIL_BYTES.finditer(raw)))


def _outside_emails(raw: bytes, hits: list[PiiHit], emails: list[tuple[int, int]]) -> list[PiiHit]:
    """``_outside(hits, e-mail spans)``; a local part is measured only when a hit touches it."""
    kept = []
    i = 0
    for hit in hits:
        while i < len(emails) and emails[i][1] <= hit.start:
            i += 1
        if i == len(emails):
            kept.append(hit)
            continue
        at = emails[i][0]
        if hit.end <= at - 64 or (hit.end < at and raw[hit.end : at].strip(_LOCAL_BYTES)):
            kept.append(hit)  # far off, or a byte no local part has lies between
            continue
        local = _EMAIL_LOCAL_BYTES.match(raw[max(0, at - 64) : at][::-1])
        if local is None or hit.end <= at - local.end():
            kept.append(hit)
    return kept


_START = attrgetter("start")


def _scan(text: str) -> tuple[list[PiiHit], list[PiiHit]]:
    """(digit-based hits, e-mail hits), each in text order; a digit hit inside an e-mail
    (``13800138000@qq.com``) is the e-mail's."""
    digits: list[PiiHit] = []
    for run in _DIGIT_RUN.finditer(text):
        start, end = run.span()
        found = run.group()
        # The common case, a bare run: only the whole run can be a hit.
        kind = _bare_run_kind(found.encode())
        if kind is not None:
            digits.append(PiiHit(kind, start, end))
        elif " " in found or "-" in found:
            if start and text[start - 1] == "+":
                start -= 1  # the '+' of +86 belongs to the number
            digits.extend(_digit_hits(text, start, end))
    if "@" not in text:
        return digits, []
    emails = _emails(text)
    return (_outside(digits, emails) if digits and emails else digits), emails


def _emails(text: str) -> list[PiiHit]:
    found = []
    for domain in _EMAIL_DOMAIN.finditer(text):
        at = domain.start()
        # The local part, read backwards from the '@' (at most 64 characters).
        local = _EMAIL_LOCAL_REVERSED.match(text[max(0, at - 64) : at][::-1])
        if local:
            found.append(PiiHit("email", at - local.end(), domain.end()))
    return found


def _outside(hits: list[PiiHit], spans: list[PiiHit]) -> list[PiiHit]:
    """The hits that overlap none of ``spans`` (both sorted, each without overlaps)."""
    kept = []
    i = 0
    for hit in hits:
        while i < len(spans) and spans[i].end <= hit.start:
            i += 1
        if i == len(spans) or hit.end <= spans[i].start:
            kept.append(hit)
    return kept


def _digit_hits(text: str, start: int, end: int) -> list[PiiHit]:
    """Hits inside a run with separators (``+86 138-0013-8000``, ``6222 0200 …``)."""
    hits = [
        PiiHit("cn_resident_id", m.start(), m.end())
        for m in _RESIDENT_ID.finditer(text, start, end)
        if is_resident_id(m.group())
    ]
    hits.extend(PiiHit("cn_mobile", m.start(), m.end()) for m in _MOBILE.finditer(text, start, end))
    hits.extend(
        PiiHit("bank_card", m.start(), m.end())
        for m in _CARD.finditer(text, start, end)
        if is_bank_card(m.group().translate(_SEPARATORS))
    )
    return _without_overlaps(hits) if len(hits) > 1 else hits


def _bare_run_kind(run: bytes) -> PiiKind | None:
    """The kind of a run of ASCII digits without separators (only an ID ends in X);
    ``None`` for anything else, a run with separators included."""
    size = len(run)
    if size == 18 and _is_resident_id(run):
        return "cn_resident_id"
    if not run.isdigit():
        return None
    if (size == 11 and run[0] == _ONE and run[1] in _MOBILE_SECOND) or (
        size == 13 and run.startswith(b"861") and run[3] in _MOBILE_SECOND
    ):
        return "cn_mobile"
    if 13 <= size <= 19 and _is_bank_card(run):
        return "bank_card"
    return None


_ONE = ord("1")
_MOBILE_SECOND = frozenset(b"3456789")


def _without_overlaps(hits: list[PiiHit]) -> list[PiiHit]:
    # A card number that contains a mobile, or an ID that also passes Luhn, is reported
    # once: the earlier, then the longer, then the more specific kind wins.
    order = {"cn_resident_id": 0, "cn_mobile": 1, "bank_card": 2}
    kept: list[PiiHit] = []
    for hit in sorted(hits, key=lambda h: (h.start, h.start - h.end, order[h.kind])):
        if not kept or hit.start >= kept[-1].end:
            kept.append(hit)
    return kept

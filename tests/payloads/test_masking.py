"""Hide actions on single values, and the PII detectors on valid and invalid samples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.fieldplan import HideAction, HideRule
from gateway.masking import REDACTED, Masker, mask_pii, partial
from gateway.pii import find_pii, is_unionpay


@pytest.mark.parametrize(
    "text,first,last,expected",
    [
        ("11010519491231002X", 6, 4, "110105********002X"),
        ("13800138000", 3, 4, "138****8000"),
        ("张三丰先生你好", 1, 1, "张*****好"),
        ("abc", 2, 2, "***"),
        ("abcd", 2, 2, "****"),
        ("", 1, 1, ""),
        ("secret", 0, 0, "******"),
    ],
)
def test_partial(text, first, last, expected):
    assert partial(text, first, last) == expected


def _partial_reference(text: str, first: int, last: int) -> str:
    hidden = len(text) - first - last
    if hidden <= 0:
        return "*" * len(text)
    return text[:first] + "*" * hidden + text[len(text) - last :]


@settings(max_examples=500, deadline=None)
@given(
    text=st.text(st.characters(codec=None, exclude_categories=()), max_size=40),
    first=st.integers(0, 12),
    last=st.integers(0, 12),
)
def test_partial_matches_the_rule_for_any_text(text, first, last):
    # The compiled action builds strings itself: they must be equal (and hash equal) to the
    # same text built by Python, whatever characters are kept or hidden (1-4 byte wide).
    shown = partial(text, first, last)
    expected = _partial_reference(text, first, last)
    assert shown == expected and hash(shown) == hash(expected)
    assert {shown: 1}[expected] == 1


def test_hide_actions():
    masker = Masker(b"Z" * 32)
    assert masker.hide(HideRule("f", HideAction.REDACT), "x") == REDACTED
    assert masker.hide(HideRule("f", HideAction.NULL), "x") is None
    assert masker.hide(HideRule("f", HideAction.PARTIAL, 1, 1), 123456) == "1****6"
    assert masker.hide(HideRule("f", HideAction.PARTIAL, 1, 1), {"nested": "v"}) == REDACTED
    assert masker.hide_text(HideRule("f", HideAction.NULL), "x") == ""
    hashed = masker.hash("13800138000")
    assert hashed.startswith("h:") and len(hashed) == 66 and hashed == masker.hash("13800138000")
    assert Masker(b"other-key-0123456789").hash("13800138000") != hashed
    assert "ZZZZ" not in repr(masker)
    with pytest.raises(ValueError):
        Masker(b"short")


VALID = [
    ("11010519491231002X", "cn_resident_id"),
    ("身份证号440301199003071230。", "cn_resident_id"),
    ("13800138000", "cn_mobile"),
    ("+86 138 0013 8000", "cn_mobile"),
    ("+86-139-1234-5678", "cn_mobile"),
    ("86 19912345678", "cn_mobile"),
    ("tel:15012345678;", "cn_mobile"),
    ("4111111111111111", "bank_card"),
    ("4111 1111 1111 1111", "bank_card"),
    ("6222021234567890128", "bank_card"),
    ("6222021234567890123", "bank_card"),  # UnionPay without a valid Luhn digit
    ("li.lei+crm@example.com.cn", "email"),
]


@pytest.mark.parametrize("text,kind", VALID)
def test_detects_valid_samples(text, kind):
    assert [hit.kind for hit in find_pii(text)] == [kind]


@pytest.mark.parametrize(
    "text",
    [
        "110105194912310022",  # wrong check digit
        "123456789012345678",  # random 18 digits
        "110105194913310021",  # month 13 (check digit fixed up would still be a bad date)
        "12800138000",  # 12x is not a mobile prefix
        "1380013800X",  # ten digits and an X: neither a mobile nor an ID
        "1380013800",  # 10 digits
        "138001380001",  # 12 digits, no valid card either
        "4111111111111112",  # Luhn fails
        "order 2024-01-15 amount 50000",
        "not an email@",
        "user@localhost",
    ],
)
def test_ignores_invalid_samples(text):
    assert find_pii(text) == []


def test_random_18_digit_numbers_are_mostly_not_ids():
    import random

    rng = random.Random(7)
    flagged = sum(
        any(h.kind == "cn_resident_id" for h in find_pii(str(rng.randrange(10**17, 10**18))))
        for _ in range(2000)
    )
    assert flagged == 0  # random digits almost never carry a valid birth date and check digit


def test_mask_pii_masks_and_counts():
    text = "Call 13800138000 or +86 139 1234 5678, mail li@acme.cn, id 11010519491231002X."
    masked, hits = mask_pii(text)
    assert hits == {"cn_mobile": 2, "email": 1, "cn_resident_id": 1}
    for secret in ("13800138000", "139 1234", "li@", "110105194912"):
        assert secret not in masked
    assert masked.startswith("Call *******8000") and "@acme.cn" in masked


def test_overlapping_candidates_count_once():
    assert [h.kind for h in find_pii("13800138000@qq.com")] == ["email"]


def test_unionpay_flag():
    assert is_unionpay("6222021234567890128") and not is_unionpay("4111111111111111")

"""normalise_path: every rule, accepted and refused spellings, with the reason a client sees."""

from __future__ import annotations

import pytest

from gateway.errors import BadRequest
from gateway.pathnorm import MAX_PATH_BYTES, NormalisedPath, encode_path, normalise_path


@pytest.mark.parametrize(
    ("raw", "decoded", "encoded"),
    [
        (b"/", "/", "/"),
        (b"/crm/customers", "/crm/customers", "/crm/customers"),
        (b"/crm/customers/", "/crm/customers", "/crm/customers"),
        (b"//crm///customers//", "/crm/customers", "/crm/customers"),
        (b"/crm/./customers", "/crm/customers", "/crm/customers"),
        (b"/crm/orders/../customers", "/crm/customers", "/crm/customers"),
        (b"/crm/a/b/../../customers/.", "/crm/customers", "/crm/customers"),
        (b"/crm/%2e%2E/crm/customers", "/crm/customers", "/crm/customers"),
        (b"/crm/%63ustomers", "/crm/customers", "/crm/customers"),
        (
            b"/crm/customers/v1.2/file.json",
            "/crm/customers/v1.2/file.json",
            "/crm/customers/v1.2/file.json",
        ),
        (b"/crm/..x/.y", "/crm/..x/.y", "/crm/..x/.y"),
        (b"/a/caf%c3%a9", "/a/café", "/a/caf%C3%A9"),
        (b"/a/caf\xc3\xa9", "/a/café", "/a/caf%C3%A9"),
        (b"/a/x%20y", "/a/x y", "/a/x%20y"),
        (b"/a/%3Cb%3E%22%7B%7D%7C%5E%60", '/a/<b>"{}|^`', "/a/%3Cb%3E%22%7B%7D%7C%5E%60"),
        (
            b"/a/b@c:d,e!f$g&h'i(j)k*l+m=n~o_p-q",
            "/a/b@c:d,e!f$g&h'i(j)k*l+m=n~o_p-q",
            "/a/b@c:d,e!f$g&h'i(j)k*l+m=n~o_p-q",
        ),
        (b"/a/%2A%3a%40", "/a/*:@", "/a/*:@"),
    ],
)
def test_accepted_paths_have_one_decoded_and_one_encoded_spelling(
    raw: bytes, decoded: str, encoded: str
) -> None:
    assert normalise_path(raw) == NormalisedPath(decoded, encoded)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "path_invalid"),
        (b"crm/customers", "path_invalid"),
        (b"*", "path_invalid"),
        (b"http://evil/crm", "path_invalid"),
        # malformed escapes
        (b"/crm/%", "path_invalid"),
        (b"/crm/%4", "path_invalid"),
        (b"/crm/%zz", "path_invalid"),
        (b"/crm/%+1", "path_invalid"),
        (b"/crm/%_1", "path_invalid"),
        (b"/crm/%u0041", "path_invalid"),
        # encoded separators
        (b"/crm/a%2fb", "path_ambiguous"),
        (b"/crm/a%2Fb", "path_ambiguous"),
        (b"/crm/a%5cb", "path_ambiguous"),
        (b"/crm/a%3fb", "path_ambiguous"),
        (b"/crm/a%23b", "path_ambiguous"),
        # double encoding, and a '%' that survives decoding
        (b"/crm/%252e%252e/x", "path_ambiguous"),
        (b"/crm/%2541", "path_ambiguous"),
        (b"/crm/100%25", "path_ambiguous"),
        # literal separators other servers honour
        (b"/crm\\admin", "path_ambiguous"),
        (b"/crm/a#b", "path_ambiguous"),
        (b"/crm/a?b", "path_ambiguous"),
        # strict UTF-8
        (b"/crm/%c0%af", "path_invalid"),
        (b"/crm/%c0%ae%c0%ae", "path_invalid"),
        (b"/crm/%e0%80%af", "path_invalid"),
        (b"/crm/%f0%80%80%af", "path_invalid"),
        (b"/crm/%ed%a0%80", "path_invalid"),
        (b"/crm/%ff", "path_invalid"),
        (b"/crm/%c3", "path_invalid"),
        (b"/crm/\xff", "path_invalid"),
        # control, invisible and unassigned characters
        (b"/crm/a%00", "path_invalid"),
        (b"/crm/a\x00b", "path_invalid"),
        (b"/crm/a%09b", "path_invalid"),
        (b"/crm/a%0ab", "path_invalid"),
        (b"/crm/a%7fb", "path_invalid"),
        (b"/crm/a%c2%80b", "path_invalid"),
        (b"/crm/a%c2%9fb", "path_invalid"),
        (b"/crm/a%e2%80%8bb", "path_invalid"),
        (b"/crm/a%e2%80%aeb", "path_invalid"),
        (b"/crm/a%e2%80%a8b", "path_invalid"),
        (b"/crm/a%ee%80%80b", "path_invalid"),
        (b"/crm/a%f4%8f%bf%bfb", "path_invalid"),
        # NFKC-unstable text
        (b"/crm/\xef\xbc\x8fadmin", "path_ambiguous"),
        (b"/crm/\xef\xbc\x8e\xef\xbc\x8e/x", "path_ambiguous"),
        (b"/crm/%ef%bd%81dmin", "path_ambiguous"),
        (b"/crm/%e2%84%aa", "path_ambiguous"),
        (b"/crm/%ef%ac%81le", "path_ambiguous"),
        (b"/crm/a%c2%a0b", "path_ambiguous"),
        (b"/crm/e%cc%81", "path_ambiguous"),
        # matrix parameters
        (b"/crm/admin;x=1/users", "path_ambiguous"),
        (b"/crm/admin;", "path_ambiguous"),
        (b"/crm/..;/admin", "path_ambiguous"),
        (b"/crm/a%3bb", "path_ambiguous"),
        # trimmable segments
        (b"/crm/admin.", "path_ambiguous"),
        (b"/crm/admin../x", "path_ambiguous"),
        (b"/crm/.../x", "path_ambiguous"),
        (b"/crm/admin%20", "path_ambiguous"),
        (b"/crm/%20admin", "path_ambiguous"),
        (b"/crm/admin%2e", "path_ambiguous"),
        (b"/crm/%e1%9a%80admin", "path_ambiguous"),
        # climbing above the root
        (b"/..", "path_ambiguous"),
        (b"/../crm", "path_ambiguous"),
        (b"/crm/../..", "path_ambiguous"),
        (b"/crm/%2e%2e/%2e%2e/x", "path_ambiguous"),
    ],
)
def test_refused_paths_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(BadRequest) as refused:
        normalise_path(raw)
    assert refused.value.reason_id == reason
    assert refused.value.status == 400
    assert len(refused.value.detail) > 30  # a sentence that says what to do


def test_the_length_limit_is_8_kib_of_raw_path() -> None:
    at_limit = b"/" + b"a" * (MAX_PATH_BYTES - 1)
    assert normalise_path(at_limit).decoded == at_limit.decode()
    with pytest.raises(BadRequest) as refused:
        normalise_path(at_limit + b"a")
    assert refused.value.reason_id == "path_too_long"
    with pytest.raises(BadRequest) as refused:
        normalise_path(b"/a/.." * (MAX_PATH_BYTES // 5 + 1))
    assert refused.value.reason_id == "path_too_long"


@pytest.mark.parametrize(
    ("raw", "decoded", "encoded"),
    [
        (b"/CRM/Customers", "/crm/customers", "/crm/customers"),
        (b"/ERP/%43ustomers/", "/erp/customers", "/erp/customers"),
        (b"/erp/Caf%C3%89", "/erp/café", "/erp/caf%C3%A9"),
        (b"/erp/%C3%9Cbersicht", "/erp/übersicht", "/erp/%C3%BCbersicht"),
    ],
)
def test_case_insensitive_paths_are_lower_cased(raw: bytes, decoded: str, encoded: str) -> None:
    assert normalise_path(raw, case_insensitive=True) == NormalisedPath(decoded, encoded)
    assert normalise_path(raw).decoded != decoded  # the default keeps the case


@pytest.mark.parametrize(
    "raw", [b"/erp/ADMINI~1/users", b"/erp/admin/users~2", b"/erp/users::$DATA", b"/erp/x:$i30"]
)
def test_case_insensitive_paths_refuse_windows_aliases(raw: bytes) -> None:
    assert normalise_path(raw).decoded == raw.decode()  # a case-sensitive upstream: just a name
    with pytest.raises(BadRequest) as refused:
        normalise_path(raw, case_insensitive=True)
    assert refused.value.reason_id == "path_ambiguous"


def test_folding_keeps_the_other_rules() -> None:
    # U+0130 lower-cases to 'i' plus a combining dot: still a valid, stable spelling
    folded = normalise_path(b"/erp/%C4%B0d", case_insensitive=True)
    assert folded.decoded == "/erp/i\u0307d"
    assert normalise_path(folded.encoded.encode(), case_insensitive=True) == folded


@pytest.mark.parametrize(
    ("decoded", "encoded"),
    [
        ("/", "/"),
        ("/a/b", "/a/b"),
        ("/a b/ü/<x>", "/a%20b/%C3%BC/%3Cx%3E"),
        ("/a/%/;", "/a/%25/%3B"),
    ],
)
def test_encode_path_escapes_everything_but_plain_path_characters(
    decoded: str, encoded: str
) -> None:
    assert encode_path(decoded) == encoded

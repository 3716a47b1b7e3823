"""Properties over generated input: normalisation is stable and clean; matchers agree."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import BadRequest
from gateway.pathnorm import NormalisedPath, _normalise_slow, normalise_path
from gateway.routing import RouteTemplates, pattern_matches

# Pieces chosen to hit every rule often: separators, dots, escapes, case, non-ASCII, controls.
PIECES = [
    "/", "//", ".", "..", "%2e", "%2E%2e", "%2f", "%5c", "%25", "%3b", ";", "\\", "%00", "%20",
    " ", "a", "B", "crm", "Admin", "%41", "%c3%a9", "é", "%C4%B0", "İ", "ß", "%c0%af", "%e2%80%8b",
    "／", "．", "ａ", "K", "%ff", "%", "%4", "#", "?", "~", "-", "_", "*", ":", "@", "\t",
]  # fmt: skip
piece_paths = st.lists(st.sampled_from(PIECES), max_size=12).map(
    lambda p: ("/" + "".join(p)).encode()
)
text_paths = st.text(max_size=20).map(lambda t: ("/" + t).encode("utf-8", "surrogatepass"))
byte_paths = st.binary(max_size=20).map(lambda b: b"/" + b)
raw_paths = st.one_of(piece_paths, text_paths, byte_paths)
FORBIDDEN = ("//", "/./", "/../", ";", "\\", "\x00", "%")

fast = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _normalise_or_none(raw: bytes, case_insensitive: bool) -> NormalisedPath | None:
    try:
        return normalise_path(raw, case_insensitive=case_insensitive)
    except BadRequest as refused:
        assert refused.reason_id in ("path_invalid", "path_ambiguous")
        return None


@fast
@given(raw=raw_paths, case_insensitive=st.booleans())
def test_normalise_is_idempotent_and_its_output_is_clean(
    raw: bytes, case_insensitive: bool
) -> None:
    path = _normalise_or_none(raw, case_insensitive)
    if path is None:
        return
    again = normalise_path(path.encoded.encode("ascii"), case_insensitive=case_insensitive)
    assert again == path
    assert path.decoded.startswith("/")
    assert path.decoded == "/" or not path.decoded.endswith(("/", "/.", "/.."))
    for bad in FORBIDDEN:
        assert bad not in path.decoded, (raw, path)
    assert path.encoded.isascii()
    assert ";" not in path.encoded and "\\" not in path.encoded
    if case_insensitive:
        assert path.decoded == path.decoded.lower()


@fast
@given(raw=raw_paths)
def test_folding_is_the_only_difference_between_the_case_rules(raw: bytes) -> None:
    plain = _normalise_or_none(raw, False)
    folded = _normalise_or_none(raw, True)
    if plain is not None and folded is not None:
        assert folded.decoded == plain.decoded.lower()


@fast
@given(
    segments=st.lists(
        st.from_regex(r"[A-Za-z0-9\-_~!$&'()*+,=:@]{1,6}", fullmatch=True), max_size=6
    ),
    trailing=st.booleans(),
)
def test_the_fast_path_gives_what_the_full_rules_give(segments: list[str], trailing: bool) -> None:
    raw = ("/" + "/".join(segments) + ("/" if trailing and segments else "")).encode()
    assert normalise_path(raw) == _normalise_slow(raw)


SEGMENTS = ["a", "b", "c", ""]
PATTERN_SEGMENTS = ["a", "b", ":x", ":y"]
patterns = st.one_of(
    st.just("*"),
    st.builds(
        lambda segs, tail: "/" + "/".join([*segs, *(["*"] if tail else [])]),
        st.lists(st.sampled_from(PATTERN_SEGMENTS), max_size=4),
        st.booleans(),
    ),
)
paths = st.lists(st.sampled_from(SEGMENTS), max_size=6).map(lambda s: "/" + "/".join(s))


@fast
@given(
    pattern_list=st.lists(patterns, max_size=12), path_list=st.lists(paths, min_size=1, max_size=8)
)
def test_pattern_matches_agrees_with_the_trie(
    pattern_list: list[str], path_list: list[str]
) -> None:
    templates = RouteTemplates({"crm": pattern_list}, {"crm": False})
    for path in path_list:
        expected = tuple(sorted({p for p in pattern_list if pattern_matches(path, p)}))
        assert templates.match("crm", path) == expected

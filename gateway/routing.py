"""The route stage: which upstream a request is for, and which route templates it matches.

- ``Router.resolve(raw_path)`` normalises the path (``gateway.pathnorm``), picks the upstream
  by longest whole-segment prefix and says what to send it (``Route``).
- ``RouteTemplates.match(upstream, path)`` lists the policy path patterns a path matches:
  the *route template signature* that decisions are cached on. ``pattern_matches`` is the
  same test for one pattern, registered as a Casbin function; both give the same answers.
- ``check_method_override(headers, query)`` refuses method-override headers and ``_method``.

Pattern syntax (relative to the upstream): literal segments; ``:name`` = exactly one
non-empty segment; a final ``*`` = zero or more further segments (``/api/customers/*``
matches ``/api/customers``, ``/api/customers/7`` and ``/api/customers/7/orders``); ``*`` alone
matches every path.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn
from urllib.parse import unquote_to_bytes, urlsplit

from gateway.errors import BadRequest, ConfigError, NotFound
from gateway.pathnorm import NormalisedPath, encode_path, normalise_path
from gateway.settings import UpstreamSettings

__all__ = [
    "NormalisedPath",
    "Route",
    "RouteTemplates",
    "Router",
    "check_method_override",
    "normalise_path",
    "pattern_matches",
]


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes.

    ``public_path``: the normalised path as the client addressed it (lower-cased for
    case-insensitive upstreams). ``upstream_path``: the same path relative to the upstream
    (prefix removed when ``strip_prefix``), always starting with ``/``; policies match on it.
    ``upstream_target``: the percent-encoded path to send, base URL path included.
    """

    upstream: str
    public_path: str
    upstream_path: str
    upstream_target: str


@dataclass(frozen=True, slots=True)
class _Upstream:
    name: str
    prefix: str  # compared as is, or lower-cased for case-insensitive upstreams
    depth: int  # segments in the prefix
    case_insensitive: bool
    strip_prefix: bool
    base_path: str


class Router:
    """Longest whole-segment prefix match of normalised paths onto upstreams."""

    def __init__(self, upstreams: Mapping[str, UpstreamSettings]) -> None:
        if not upstreams:
            raise ConfigError("upstreams: at least one upstream is required")
        compiled = [_compile_upstream(name, settings) for name, settings in upstreams.items()]
        for upstream in (u for u in compiled if u.case_insensitive):
            for other in compiled:
                if other is not upstream and other.prefix.lower() == upstream.prefix:
                    raise ConfigError(
                        f"upstreams.{upstream.name}.prefix: case-insensitive prefix "
                        f"{upstream.prefix!r} also matches the prefix of upstream {other.name!r}; "
                        "give them prefixes that differ in more than case"
                    )
        self._exact = {u.prefix: u for u in compiled if not u.case_insensitive}
        self._folded = {u.prefix: u for u in compiled if u.case_insensitive}
        self._max_depth = max(_depth(p) for p in (*self._exact, *self._folded))

    def resolve(self, raw_path: bytes) -> Route:
        """Normalise ``raw_path`` (ASGI, still encoded) and route it; raise on no match."""
        path = normalise_path(raw_path)
        upstream = self._match(path.decoded)
        if upstream.case_insensitive:
            path = path.folded()
        public, encoded = path.decoded, path.encoded
        if upstream.strip_prefix and upstream.depth:
            rest = _without_segments(public, upstream.depth)
            # a path that needed no escapes has none after the prefix either
            rest_encoded = rest if public == encoded else encode_path(rest)
        else:
            rest, rest_encoded = public, encoded
        return Route(
            upstream=upstream.name,
            public_path=public,
            upstream_path=rest,
            upstream_target=upstream.base_path + rest_encoded,
        )

    def _match(self, decoded: str) -> _Upstream:
        parts = decoded.split("/", self._max_depth + 1)[: self._max_depth + 1]
        for depth in range(len(parts), 0, -1):
            candidate = "/".join(parts[:depth]) or "/"
            upstream = self._exact.get(candidate) or self._folded.get(candidate.lower())
            if upstream is not None:
                return upstream
        raise NotFound(
            "no upstream serves this path; check the first path segment against the "
            "gateway's upstream prefixes",
            reason_id="no_upstream",
        )


def _compile_upstream(name: str, settings: UpstreamSettings) -> _Upstream:
    prefix = settings.prefix
    problem = _not_normalised(prefix)
    if problem:
        raise ConfigError(
            f"upstreams.{name}.prefix: {prefix!r} is not a normalised path: {problem}"
        )
    base = urlsplit(settings.base_url)
    if base.query or base.fragment:
        raise ConfigError(
            f"upstreams.{name}.base_url: {settings.base_url!r} has a query or fragment; "
            "give scheme, host, port and path only"
        )
    folded = prefix.lower() if settings.case_insensitive else prefix
    return _Upstream(
        name, folded, _depth(prefix), settings.case_insensitive, settings.strip_prefix, base.path
    )


def _without_segments(path: str, count: int) -> str:
    """``path`` without its first ``count`` segments; still starts with '/'."""
    parts = path.split("/", count + 1)
    return "/" + parts[count + 1] if len(parts) > count + 1 else "/"


def _depth(prefix: str) -> int:
    return 0 if prefix == "/" else prefix.count("/")


def _not_normalised(decoded: str) -> str | None:
    """Why ``decoded`` is not a path in normalised form, or ``None`` if it is."""
    try:
        canonical = normalise_path(encode_path(decoded).encode("ascii")).decoded
    except BadRequest as exc:
        return exc.detail
    return None if canonical == decoded else f"its normalised form is {canonical!r}"


# ---- route templates -------------------------------------------------------------------

_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class _Pattern:
    """A parsed pattern: literal segments, ``None`` for a ``:name`` segment, and a final ``*``."""

    segments: tuple[str | None, ...]
    tail: bool


@functools.lru_cache(maxsize=65536)
def _parse_pattern(pattern: str) -> _Pattern:
    if pattern == "*":
        return _Pattern((), tail=True)
    if not pattern.startswith("/"):
        _bad_pattern(pattern, "it must be '*' or start with '/'")
    raw = [] if pattern == "/" else pattern[1:].split("/")
    tail = bool(raw) and raw[-1] == "*"
    if tail:
        raw.pop()
    return _Pattern(tuple(_parse_segment(pattern, s) for s in raw), tail)


def _parse_segment(pattern: str, segment: str) -> str | None:
    if segment.startswith(":"):
        if not _PARAM_NAME.fullmatch(segment[1:]):
            _bad_pattern(pattern, f"{segment!r}: a parameter is ':' followed by a name")
        return None
    if not segment:
        _bad_pattern(pattern, "it has an empty segment ('//' or a trailing '/')")
    if "*" in segment:
        _bad_pattern(pattern, "'*' may only be the whole last segment")
    problem = _not_normalised("/" + segment)
    if problem:
        _bad_pattern(pattern, f"segment {segment!r} can never match a normalised path: {problem}")
    return segment


def _bad_pattern(pattern: str, why: str) -> NoReturn:
    raise ConfigError(f"route pattern {pattern!r} is invalid: {why}")


def _path_segments(path: str) -> list[str] | None:
    if not path.startswith("/"):
        return None
    return [] if path == "/" else path[1:].split("/")


def pattern_matches(path: str, pattern: str) -> bool:
    """True if the upstream-relative ``path`` matches ``pattern`` (a Casbin custom function).

    Raises ``ConfigError`` for an invalid pattern, so a broken policy fails closed.
    """
    parsed = _parse_pattern(pattern)
    parts = _path_segments(path)
    if parts is None:
        return False
    want = parsed.segments
    if len(parts) < len(want) or (len(parts) > len(want) and not parsed.tail):
        return False
    return all(
        got == w if w is not None else got != "" for w, got in zip(want, parts, strict=False)
    )


@dataclass(slots=True)
class _Node:
    literals: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    exact: list[str] = field(default_factory=list)  # patterns ending here
    tail: list[str] = field(default_factory=list)  # patterns ending here with a final '*'


class RouteTemplates:
    """All policy path patterns per upstream, compiled once into one segment trie each."""

    def __init__(
        self,
        patterns_by_upstream: Mapping[str, Iterable[str]],
        case_insensitive: Mapping[str, bool],
    ) -> None:
        self._tries: dict[str, _Node] = {}
        for upstream, patterns in patterns_by_upstream.items():
            root = _Node()
            for pattern in sorted(set(patterns)):
                parsed = _parse_pattern(pattern)
                if case_insensitive.get(upstream, False):
                    _require_lower_case(upstream, pattern, parsed)
                _insert(root, pattern, parsed)
            self._tries[upstream] = root

    def match(self, upstream: str, upstream_path: str) -> tuple[str, ...]:
        """The sorted patterns of ``upstream`` that ``upstream_path`` matches (may be empty)."""
        root = self._tries.get(upstream)
        parts = _path_segments(upstream_path)
        if root is None or parts is None:
            return ()
        found: list[str] = []
        nodes = [root]
        for part in parts:
            following: list[_Node] = []
            for node in nodes:
                found += node.tail
                child = node.literals.get(part)
                if child is not None:
                    following.append(child)
                if node.param is not None and part:
                    following.append(node.param)
            nodes = following
            if not nodes:
                break
        for node in nodes:
            found += node.exact
            found += node.tail
        found.sort()
        return tuple(found)


def _insert(root: _Node, pattern: str, parsed: _Pattern) -> None:
    node = root
    for segment in parsed.segments:
        if segment is None:
            node.param = node.param or _Node()
            node = node.param
        else:
            node = node.literals.setdefault(segment, _Node())
    (node.tail if parsed.tail else node.exact).append(pattern)


def _require_lower_case(upstream: str, pattern: str, parsed: _Pattern) -> None:
    for segment in parsed.segments:
        if segment is not None and segment.lower() != segment:
            raise ConfigError(
                f"route pattern {pattern!r} of case-insensitive upstream {upstream!r}: paths "
                f"there are compared lower-cased; write {segment!r} as {segment.lower()!r}"
            )


# ---- method override -------------------------------------------------------------------

_OVERRIDE_HEADERS = frozenset({b"x-http-method-override", b"x-method-override", b"x-http-method"})
_QUERY_SPLIT = re.compile(rb"[&;]")


def check_method_override(headers: Sequence[tuple[bytes, bytes]], query_string: bytes) -> None:
    """Refuse any attempt to make the upstream see another method than the one authorised.

    Headers are matched in any case and with ``_`` for ``-`` (CGI/WSGI servers merge the two).
    A ``_method`` query key is matched after percent-decoding until stable, NFKC, lower-casing
    and PHP's key mangling (leading spaces dropped, ``' '``/``.`` read as ``_``, ``[...]``), in
    the query as sent and in the query decoded before splitting (as a double-decoding upstream
    would read it). Documented choice: an override is refused, never honoured.
    """
    for name, _value in headers:
        if name.lower().replace(b"_", b"-") in _OVERRIDE_HEADERS:
            _refuse_override(f"the {name.decode('latin-1')!r} header")
    if not query_string:
        return
    for query in (query_string, _fully_unquoted(query_string)):
        if any(_query_key(pair) == "_method" for pair in _QUERY_SPLIT.split(query)):
            _refuse_override("the '_method' query parameter")


def _fully_unquoted(data: bytes) -> bytes:
    for _ in range(8):  # one encoding layer per round, in case the upstream decodes twice
        decoded = unquote_to_bytes(data)
        if decoded == data:
            break
        data = decoded
    return data


def _query_key(pair: bytes) -> str:
    key = _fully_unquoted(pair.split(b"=", 1)[0].replace(b"+", b" "))
    text = unicodedata.normalize("NFKC", key.decode("utf-8", errors="replace"))
    return text.lstrip().split("[", 1)[0].lower().replace(" ", "_").replace(".", "_")


def _refuse_override(what: str) -> NoReturn:
    raise BadRequest(
        f"method override through {what} is refused; send the request with the real HTTP "
        "method instead",
        reason_id="method_override_refused",
    )

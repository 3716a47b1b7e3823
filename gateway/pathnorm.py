"""Path normalisation: one spelling per path, so no spelling reaches what the plain one may not.

Every later decision (upstream, policy, audit) is taken on ``NormalisedPath.decoded`` and the
upstream receives ``NormalisedPath.encoded``, the same path percent-encoded canonically. A
path that cannot be normalised without guessing is refused with ``BadRequest``; nothing is
ever "cleaned up" in a way another server might read differently.

Rules, in the order they are applied (reason id in brackets):

1. The raw path (ASGI ``raw_path``, percent-encoded, no query) must start with ``/``
   [path_invalid] and be at most 8 KiB [path_too_long].
2. Percent-escapes are decoded exactly once. ``%`` not followed by two hex digits
   [path_invalid]. An encoded ``/`` ``\\`` ``?`` ``#`` (``%2F %5C %3F %23``) would be a
   separator to one server and data to another [path_ambiguous].
3. The bytes must be strict UTF-8: overlong forms (``%C0%AF``, ``%E0%80%AF``), surrogates and
   stray bytes [path_invalid].
4. NUL, C0/C1 control characters, DEL, and invisible or unassigned characters (Unicode
   categories Cf, Co, Cn, Zl, Zp, e.g. a zero-width space) [path_invalid].
5. Text that changes under Unicode NFKC (fullwidth ``／`` ``．``, ligatures, the Kelvin sign)
   could be folded into another path by a downstream server [path_ambiguous].
6. A ``%`` left after decoding (``%25``: double encoding, IIS ``%uXXXX``), a literal ``\\``,
   ``;`` (matrix parameters, Tomcat's ``/admin;x=1/``), ``#`` or ``?`` [path_ambiguous].
7. Per segment: a segment ending in ``.`` (other than ``.`` and ``..``) or starting or ending
   in whitespace (IIS trims trailing dots and spaces, Spring trims spaces) [path_ambiguous].
8. ``.`` and ``..`` segments are resolved as RFC 3986 remove_dot_segments; ``..`` above the
   root [path_ambiguous]. Empty segments (``//``) are dropped, so is a trailing ``/``
   (``/`` itself stays).
9. ``case_insensitive=True`` (IIS-style upstreams): the path is lower-cased (``str.lower``).
   Windows aliases are refused there: 8.3 short names (``admini~1``) and NTFS streams
   (``users::$DATA``) name the same file as another spelling [path_ambiguous].

A plain ASCII path (letters, digits, ``-_~!$&'()*+,=:@``, no ``%``, ``.``, ``;`` or ``//``)
takes a fast path that skips all of the above: none of those rules can fire on it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import quote

from gateway.errors import BadRequest

MAX_PATH_BYTES = 8 * 1024

# pchar (RFC 3986) minus ';' (refused) and '%' (escape marker): kept literal when encoding.
_LITERAL_SAFE = "/!$&'()*+,=:@"
_FAST_PATH = re.compile(rb"/|(?:/[A-Za-z0-9\-_~!$&'()*+,=:@]+)+/?")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_ENCODED_SEPARATORS = {0x2F: "/", 0x5C: "\\", 0x3F: "?", 0x23: "#"}
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"})
_WINDOWS_ALIAS = re.compile(r"~\d|:\$")
_AMBIGUOUS_CHARS = re.compile(r"[%\\;#?]")
_AMBIGUOUS_CHAR_HELP = {
    "%": "an encoded '%' (%25) that a second decoder would read as another escape "
    "(double encoding); send the path percent-encoded exactly once",
    "\\": "a backslash, which some servers read as '/'; use '/' between segments",
    ";": "';' (matrix or path parameters such as /admin;x=1); remove the ';' part",
    "#": "'#', which starts a fragment; fragments are never sent to a server",
    "?": "'?' inside the path; send the query after an unencoded '?'",
}


@dataclass(frozen=True, slots=True)
class NormalisedPath:
    """A path in its one accepted spelling.

    ``decoded`` is the text every decision uses; ``encoded`` is the same path
    percent-encoded canonically (upper-case hex, UTF-8), as the upstream receives it.
    """

    decoded: str
    encoded: str

    def folded(self) -> NormalisedPath:
        """This path lower-cased, for case-insensitive (IIS-style) upstreams."""
        lowered = self.decoded.lower()
        if _WINDOWS_ALIAS.search(lowered):
            _ambiguous(
                "the path contains a Windows short name ('~1') or an NTFS stream (':$'), which "
                "names a file another path also names; use the file's full name"
            )
        if lowered == self.decoded:
            return self
        if not lowered.isascii():
            _check_characters(lowered)  # lower() of rare letters yields combining marks
        return NormalisedPath(lowered, encode_path(lowered))


def normalise_path(raw_path: bytes, *, case_insensitive: bool = False) -> NormalisedPath:
    """Normalise an ASGI ``raw_path``; raise ``BadRequest`` if it is ambiguous or invalid."""
    if len(raw_path) > MAX_PATH_BYTES:
        raise BadRequest(
            f"the path is longer than {MAX_PATH_BYTES} bytes; shorten it or move data into "
            "the query or body",
            reason_id="path_too_long",
        )
    if _FAST_PATH.fullmatch(raw_path):
        text = raw_path.decode("ascii")
        if len(text) > 1:
            text = text.rstrip("/")
        path = NormalisedPath(text, text)
    else:
        path = _normalise_slow(raw_path)
    return path.folded() if case_insensitive else path


def encode_path(decoded: str) -> str:
    """Percent-encode a decoded, normalised path canonically (the inverse of decoding)."""
    if decoded.isascii() and _FAST_PATH.fullmatch(decoded.encode("ascii")):
        return decoded
    return quote(decoded, safe=_LITERAL_SAFE)


def _normalise_slow(raw_path: bytes) -> NormalisedPath:
    if not raw_path.startswith(b"/"):
        _invalid("the path must start with '/'; send an absolute path such as /crm/customers")
    try:
        text = _percent_decode(raw_path).decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        _invalid(
            "the path is not valid UTF-8 (overlong forms such as %C0%AF, surrogates and stray "
            "bytes are refused); percent-encode the UTF-8 bytes of the characters you mean"
        )
    _check_characters(text)
    ambiguous = _AMBIGUOUS_CHARS.search(text)
    if ambiguous:
        _ambiguous(f"the path contains {_AMBIGUOUS_CHAR_HELP[ambiguous.group()]}")
    decoded = "/" + "/".join(_resolve_segments(text.split("/")))
    return NormalisedPath(decoded, encode_path(decoded))


def _percent_decode(raw_path: bytes) -> bytes:
    """Decode %XX escapes once; refuse malformed escapes and encoded separators."""
    if b"%" not in raw_path:
        return raw_path
    first, *rest = raw_path.split(b"%")
    out = bytearray(first)
    for chunk in rest:
        if len(chunk) < 2 or chunk[0] not in _HEX_DIGITS or chunk[1] not in _HEX_DIGITS:
            _invalid(
                "the path has a malformed percent-escape; every '%' must be followed by two "
                "hex digits"
            )
        value = int(chunk[:2], 16)
        if value in _ENCODED_SEPARATORS:
            char = _ENCODED_SEPARATORS[value]
            _ambiguous(
                f"the path contains an encoded {char!r} (%{value:02X}), which servers disagree "
                f"on; send '/' unencoded between segments and do not put {char!r} inside one"
            )
        out.append(value)
        out += chunk[2:]
    return bytes(out)


def _check_characters(text: str) -> None:
    """Refuse control, invisible and unassigned characters, and NFKC-unstable text."""
    if _ASCII_CONTROL.search(text):
        _invalid("the path contains a control character (NUL, TAB, CR, LF, DEL …); remove it")
    if text.isascii():
        return
    for char in text:
        if not char.isascii() and unicodedata.category(char) in _REFUSED_CATEGORIES:
            _invalid(
                f"the path contains the control, invisible or unassigned character "
                f"U+{ord(char):04X}; remove it"
            )
    if not unicodedata.is_normalized("NFKC", text):
        _ambiguous(
            "the path contains characters that Unicode NFKC changes (fullwidth or compatibility "
            "forms such as '／' or '．'); write them in their plain form"
        )


def _resolve_segments(segments: list[str]) -> list[str]:
    """RFC 3986 remove_dot_segments on segments; drop empty ones; refuse trimmable ones."""
    kept: list[str] = []
    for segment in segments:
        if not segment or segment == ".":
            continue
        if segment == "..":
            if not kept:
                _ambiguous("the path climbs above the root with '..'; remove the '..' segments")
            kept.pop()
        elif segment[-1] == "." or segment[-1].isspace() or segment[0].isspace():
            _ambiguous(
                "a path segment ends in '.' or starts or ends in whitespace, which some servers "
                "trim; remove the trailing dots and surrounding spaces"
            )
        else:
            kept.append(segment)
    return kept


def _invalid(detail: str) -> NoReturn:
    raise BadRequest(detail, reason_id="path_invalid")


def _ambiguous(detail: str) -> NoReturn:
    raise BadRequest(detail, reason_id="path_ambiguous")

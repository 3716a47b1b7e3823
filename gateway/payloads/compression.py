"""Decode a compressed response body under a hard size cap (decompression bombs).

Supported: ``gzip`` (and ``x-gzip``), ``deflate`` (zlib-wrapped or raw, both are seen in
the wild), ``br``, and ``identity``; several codings are undone last-applied first. The
filtered body is sent back as identity: re-compressing costs more CPU than the loopback or
LAN bandwidth it saves, and the proxy fixes ``Content-Encoding``/``Content-Length``.
"""

from __future__ import annotations

import zlib

import brotli

from gateway.errors import UpstreamUnavailable

_CHUNK = 64 * 1024


def too_large(max_bytes: int) -> UpstreamUnavailable:
    return UpstreamUnavailable(
        f"the upstream response is over the {max_bytes} byte limit for filtered responses;"
        " request a smaller page",
        reason_id="response_too_large",
    )


def unfilterable(why: str) -> UpstreamUnavailable:
    return UpstreamUnavailable(
        f"the upstream response cannot be filtered safely: {why}",
        reason_id="response_unfilterable",
    )


def decode_body(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The identity bytes of ``body``; never more than ``max_bytes`` are produced."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):
        try:
            body = _decode_one(body, coding, max_bytes)
        except zlib.error as exc:
            raise unfilterable(f"the {coding} body is corrupt ({exc})") from None
    if len(body) > max_bytes:
        raise too_large(max_bytes)
    return body


def _decode_one(body: bytes, coding: str, max_bytes: int) -> bytes:
    if coding == "identity":
        return body
    if coding in ("gzip", "x-gzip"):
        return _zlib(body, zlib.MAX_WBITS | 16, max_bytes)
    if coding == "deflate":
        try:
            return _zlib(body, zlib.MAX_WBITS, max_bytes)
        except zlib.error:
            return _zlib(body, -zlib.MAX_WBITS, max_bytes)
    if coding == "br":
        return _brotli(body, max_bytes)
    raise unfilterable(f"content encoding {coding!r} is not supported")


def _zlib(data: bytes, wbits: int, max_bytes: int) -> bytes:
    decoder = zlib.decompressobj(wbits)
    out = bytearray()
    pending = data
    while pending:
        out += decoder.decompress(pending, max_bytes + 1 - len(out))
        if len(out) > max_bytes:
            raise too_large(max_bytes)
        pending = decoder.unconsumed_tail
        if decoder.eof:
            break
    if not decoder.eof or decoder.unused_data:
        raise zlib.error("truncated stream, or data after its end")
    return bytes(out)


def _brotli(data: bytes, max_bytes: int) -> bytes:
    decoder = brotli.Decompressor()
    out = bytearray()
    try:
        out += decoder.process(data, output_buffer_limit=_CHUNK)
        while not decoder.is_finished() and not decoder.can_accept_more_data():
            if len(out) > max_bytes:
                raise too_large(max_bytes)
            out += decoder.process(b"", output_buffer_limit=_CHUNK)
    except brotli.error as exc:
        raise unfilterable(f"the brotli body is corrupt ({exc})") from None
    if len(out) > max_bytes:
        raise too_large(max_bytes)
    if not decoder.is_finished():
        raise unfilterable("the brotli body is truncated")
    return bytes(out)

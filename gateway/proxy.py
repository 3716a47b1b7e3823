"""The forward stage: send the authorised request to its upstream and hand back the answer.

aiohttp is the upstream client on the hot path: measured on this machine it costs a fraction of
httpx's per-request CPU (see BENCHMARKS.md); httpx stays the client for control-plane calls
(JWKS, webhooks). One pooled session per upstream, created once.

What the upstream receives is decided here and nowhere else:
- hop-by-hop headers (RFC 9110 §7.6.1, plus those named in ``Connection``) are dropped;
- Wardgate's own credentials (``Authorization``, ``X-API-Key``) are not passed on; an
  upstream that needs credentials gets them from its ``headers:`` setting;
- ``X-Wardgate-*`` and ``X-Forwarded-*`` / ``Forwarded`` from the client are dropped and set
  by Wardgate only, so a client cannot spoof an identity or an address.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass

import aiohttp
from yarl import URL

from gateway.errors import UpstreamTimeout, UpstreamUnavailable
from gateway.settings import UpstreamSettings

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Request headers the client may not pass on: ours to set, or ours to consume.
NOT_FROM_CLIENT = frozenset(
    {
        b"host",
        b"authorization",
        b"x-api-key",
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-real-ip",
        b"x-request-id",
    }
)
# Response headers recomputed by Wardgate (length may change when a body is filtered).
NOT_FROM_UPSTREAM = frozenset({b"content-length", b"server", b"date"})
_NOT_TO_CLIENT = HOP_BY_HOP | NOT_FROM_UPSTREAM
CHUNK = 64 * 1024


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    return tokens


def request_headers_for_upstream(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """Client headers minus hop-by-hop, credentials, identity and forwarding headers."""
    headers = list(headers)
    named = _connection_tokens(headers)
    out: Headers = []
    for name, value in headers:
        lname = name.lower()
        if (
            lname in HOP_BY_HOP
            or lname in NOT_FROM_CLIENT
            or lname in named
            or lname.startswith(b"x-wardgate-")
        ):
            continue
        out.append((lname, value))
    return out


def response_headers_for_client(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    lowered = [(name.lower(), value) for name, value in headers]
    named = _connection_tokens(lowered)
    dropped = _NOT_TO_CLIENT | named if named else _NOT_TO_CLIENT
    return [(name, value) for name, value in lowered if name not in dropped]


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: Headers
    _response: aiohttp.ClientResponse
    _timeout_s: float

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    async def read(self, limit: int) -> bytes | None:
        """The whole body, or ``None`` if it is larger than ``limit`` bytes."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.iter_chunks():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(CHUNK):
                yield chunk
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout(
                f"the upstream stopped sending for more than {self._timeout_s:g} s",
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(
                "the upstream connection broke while sending its answer; retry later"
            ) from exc

    def release(self) -> None:
        self._response.release()


class Forwarder:
    """One pooled aiohttp session per upstream."""

    def __init__(self, upstreams: Mapping[str, UpstreamSettings], pool_size: int = 256) -> None:
        self._upstreams = upstreams
        self._pool_size = pool_size
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    async def start(self) -> None:
        for name, up in self._upstreams.items():
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=up.connect_timeout_s, sock_read=up.timeout_s
            )
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, limit_per_host=self._pool_size, ttl_dns_cache=60
            )
            self._sessions[name] = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                auto_decompress=False,  # bytes pass through exactly as the upstream sent them
                # One session serves every caller: a cookie jar would replay one person's
                # upstream session cookie on everyone's later requests. Cookies pass through.
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
                raise_for_status=False,
            )

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self._sessions.values()))
        self._sessions.clear()

    async def send(
        self,
        upstream: str,
        method: str,
        target: str,
        query: str,
        headers: Headers,
        body: bytes | AsyncIterator[bytes] | None,
    ) -> UpstreamResponse:
        up = self._upstreams[upstream]
        url = up.base_url + target + ("?" + query if query else "")
        out_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
        out_headers.extend(up.headers.items())
        try:
            response = await self._sessions[upstream].request(
                method,
                URL(url, encoded=True),
                headers=out_headers,  # aiohttp builds its one CIMultiDict from the pairs
                data=body,
                allow_redirects=False,
            )
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout(
                f"upstream {upstream!r} did not answer within {up.timeout_s:g} s; "
                "retry later or ask its owners",
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(
                f"upstream {upstream!r} cannot be reached; retry later or ask its owners",
            ) from exc
        return UpstreamResponse(
            response.status,
            response_headers_for_client(response.raw_headers),
            response,
            up.timeout_s,
        )

"""Who the client is, behind any proxies in front of Wardgate (Werkzeug's ProxyFix idea).

The threat: ``X-Forwarded-For``, ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` are plain
request headers, and any client can send them with any value. Believing them blindly lets a
caller pick the address written to the audit trail, hide behind someone else's IP, or claim
HTTPS over plain HTTP.

So they are believed only through an explicit number of trusted proxies
(``trusted_proxies`` in the settings), never by looking at their content:

- ``0`` (the default): the headers are ignored entirely; the TCP peer is the client, the
  connection's scheme is the protocol and the ``Host`` header is the host.
- ``n > 0``: exactly ``n`` proxies, each appending to the headers, stand in front of Wardgate.
  The client is the ``n``-th entry from the right of ``X-Forwarded-For``; entries further
  left were written by the client and are dropped. Proto and host are read the same way. A
  request with fewer entries than ``n`` did not come through the proxies as configured: its
  headers are ignored as if ``n`` were 0. A trusted entry that is not an IP address (or not
  ``http``/``https``, or not a host name) is refused: it can only come from a broken proxy.

``ClientInfo.forwarded_for`` is what Wardgate sends on as ``X-Forwarded-For``: the trusted
entries followed by the peer, so the upstream sees the same chain Wardgate believed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from gateway.errors import BadRequest

UNKNOWN_PEER = "unknown"  # RFC 7239's word for a peer without an address (e.g. a Unix socket)

_FORWARDED = {b"x-forwarded-for": 0, b"x-forwarded-proto": 1, b"x-forwarded-host": 2}
_HOST = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
_IP_WITH_PORT = re.compile(r"\[(?P<v6>[^\]]+)\](?::\d{1,5})?|(?P<v4>[0-9.]+):\d{1,5}")


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """The client as Wardgate believes it.

    ``addr``: its IP address (``None`` if the peer has none); ``proto``: ``http`` or
    ``https``; ``host``: the host it addressed (``None`` if it sent none); ``forwarded_for``:
    the ``X-Forwarded-For`` value to send upstream (trusted chain + peer).
    """

    addr: str | None
    proto: str
    host: str | None
    forwarded_for: str


def client_info(
    peer: str | None,
    headers: Sequence[tuple[bytes, bytes]],
    trusted_proxies: int,
    scheme: str,
) -> ClientInfo:
    """Work out the client from the TCP peer and, through ``trusted_proxies`` hops, the headers."""
    hosts: list[str] = []
    forwarded: tuple[list[str], list[str], list[str]] = ([], [], [])
    for name, value in headers:
        name = name.lower()
        if name == b"host":
            hosts.append(value.decode("latin-1"))
        elif trusted_proxies and name in _FORWARDED:
            forwarded[_FORWARDED[name]].extend(value.decode("latin-1").split(","))
    if len(hosts) > 1:
        _refuse("the request has more than one Host header; send exactly one", "host_invalid")
    host = _checked_host(hosts[0], "Host") if hosts else None
    peer_entry = peer or UNKNOWN_PEER
    chain = forwarded[0][-trusted_proxies:] if trusted_proxies else []
    if len(chain) < trusted_proxies or not chain:
        return ClientInfo(peer, scheme, host, peer_entry)
    believed = [_checked_ip(entry) for entry in chain]
    return ClientInfo(
        addr=believed[0],
        proto=_trusted_proto(forwarded[1], trusted_proxies, scheme),
        host=_trusted_host(forwarded[2], trusted_proxies, host),
        forwarded_for=", ".join([*believed, peer_entry]),
    )


def _trusted_proto(values: list[str], trusted_proxies: int, default: str) -> str:
    if len(values) < trusted_proxies:
        return default
    proto = values[-trusted_proxies].strip().lower()
    if proto not in ("http", "https"):
        _refuse("X-Forwarded-Proto from a trusted proxy must be http or https")
    return proto


def _trusted_host(values: list[str], trusted_proxies: int, default: str | None) -> str | None:
    if len(values) < trusted_proxies:
        return default
    return _checked_host(values[-trusted_proxies].strip(), "X-Forwarded-Host")


def _checked_ip(entry: str) -> str:
    text = entry.strip()
    with_port = _IP_WITH_PORT.fullmatch(text)
    if with_port:
        text = with_port.group("v6") or with_port.group("v4")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        _refuse(
            "X-Forwarded-For has an entry from a trusted proxy that is not an IP address; "
            "check the proxies in front of Wardgate and the trusted_proxies setting"
        )


def _checked_host(value: str, header: str) -> str:
    if not _HOST.fullmatch(value):
        reason = "host_invalid" if header == "Host" else "forwarded_header_invalid"
        _refuse(f"the {header} header is not a host name or address with an optional port", reason)
    return value


def _refuse(detail: str, reason_id: str = "forwarded_header_invalid") -> NoReturn:
    raise BadRequest(detail, reason_id=reason_id)

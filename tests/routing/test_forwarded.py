"""client_info: forwarded headers are believed through exactly trusted_proxies hops."""

from __future__ import annotations

import pytest

from gateway.errors import BadRequest
from gateway.forwarded import ClientInfo, client_info

Headers = list[tuple[bytes, bytes]]

SPOOFED: Headers = [
    (b"host", b"gw.example"),
    (b"x-forwarded-for", b"10.9.9.9"),
    (b"x-forwarded-proto", b"https"),
    (b"x-forwarded-host", b"admin.example"),
]


def test_by_default_forwarded_headers_are_ignored() -> None:
    info = client_info("203.0.113.7", SPOOFED, 0, "http")
    assert info == ClientInfo("203.0.113.7", "http", "gw.example", "203.0.113.7")


def test_one_trusted_proxy_is_believed_for_its_own_entry_only() -> None:
    headers: Headers = [
        (b"host", b"gw.internal"),
        (b"X-Forwarded-For", b"10.9.9.9, 198.51.100.4"),  # the client faked the first entry
        (b"X-Forwarded-Proto", b"http, https"),
        (b"X-Forwarded-Host", b"evil.example, gw.example"),
    ]
    info = client_info("192.0.2.1", headers, 1, "http")
    assert info == ClientInfo("198.51.100.4", "https", "gw.example", "198.51.100.4, 192.0.2.1")


def test_two_trusted_proxies_read_two_from_the_right_across_header_lines() -> None:
    headers: Headers = [
        (b"x-forwarded-for", b"6.6.6.6"),
        (b"x-forwarded-for", b"198.51.100.4"),
        (b"x-forwarded-for", b"10.0.0.2"),
        (b"x-forwarded-proto", b"https,https"),
    ]
    info = client_info("10.0.0.3", headers, 2, "http")
    assert info.addr == "198.51.100.4"
    assert info.proto == "https"
    assert info.host is None
    assert info.forwarded_for == "198.51.100.4, 10.0.0.2, 10.0.0.3"


def test_too_few_entries_means_the_headers_are_not_believed() -> None:
    # expected two proxies, saw one entry: the request did not come through the proxies
    info = client_info("203.0.113.7", SPOOFED, 2, "http")
    assert info == ClientInfo("203.0.113.7", "http", "gw.example", "203.0.113.7")


def test_missing_proto_and_host_fall_back_to_the_connection() -> None:
    headers: Headers = [(b"host", b"gw.example:8443"), (b"x-forwarded-for", b"198.51.100.4")]
    info = client_info("192.0.2.1", headers, 1, "https")
    assert (info.addr, info.proto, info.host) == ("198.51.100.4", "https", "gw.example:8443")


@pytest.mark.parametrize(
    ("entry", "addr"),
    [
        (b"198.51.100.4:5678", "198.51.100.4"),
        (b"2001:DB8::1", "2001:db8::1"),
        (b"[2001:db8::1]", "2001:db8::1"),
        (b"[2001:db8::1]:443", "2001:db8::1"),
        (b" 198.51.100.4 ", "198.51.100.4"),
    ],
)
def test_addresses_are_parsed_and_canonicalised(entry: bytes, addr: str) -> None:
    info = client_info("192.0.2.1", [(b"x-forwarded-for", entry)], 1, "http")
    assert info.addr == addr
    assert info.forwarded_for == f"{addr}, 192.0.2.1"


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-forwarded-for", b"unknown")],
        [(b"x-forwarded-for", b"")],
        [(b"x-forwarded-for", b"198.51.100.4, ")],
        [(b"x-forwarded-for", b"198.51.100.4\r\nx-evil: 1")],
        [(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-proto", b"javascript")],
        [(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-host", b"a b")],
        [(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-host", b"evil/path")],
        [(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-host", b"x@evil")],
    ],
)
def test_malformed_trusted_entries_are_refused(headers: Headers) -> None:
    with pytest.raises(BadRequest) as refused:
        client_info("192.0.2.1", headers, 1, "http")
    assert refused.value.reason_id == "forwarded_header_invalid"


@pytest.mark.parametrize(
    "host", [b"gw.example", b"gw.example.", b"GW-1.example:8443", b"127.0.0.1:80", b"[::1]:8080"]
)
def test_ordinary_host_headers_pass(host: bytes) -> None:
    assert client_info("192.0.2.1", [(b"host", host)], 0, "http").host == host.decode()


@pytest.mark.parametrize("host", [b"a b", b"evil/x", b"", b"x\x00y", b".x", b"x:port", b"[::1"])
def test_a_malformed_host_header_is_refused(host: bytes) -> None:
    with pytest.raises(BadRequest) as refused:
        client_info("192.0.2.1", [(b"host", host)], 0, "http")
    assert refused.value.reason_id == "host_invalid"


def test_two_host_headers_are_refused() -> None:
    with pytest.raises(BadRequest) as refused:
        client_info("192.0.2.1", [(b"host", b"a.example"), (b"Host", b"b.example")], 0, "http")
    assert refused.value.reason_id == "host_invalid"


def test_a_peer_without_an_address_is_unknown() -> None:
    assert client_info(None, [], 0, "http") == ClientInfo(None, "http", None, "unknown")
    behind_proxy = client_info(None, [(b"x-forwarded-for", b"198.51.100.4")], 1, "http")
    assert behind_proxy.addr == "198.51.100.4"
    assert behind_proxy.forwarded_for == "198.51.100.4, unknown"

"""Compressed responses: decoded under a cap, filtered, sent back as identity."""

from __future__ import annotations

import gzip
import zlib

import brotli
import orjson
import pytest

from gateway.errors import UpstreamUnavailable

from .helpers import plan_hiding

BODY = orjson.dumps({"data": [{"id": 1, "credit_limit": 98765}], "total": 1})


@pytest.mark.parametrize(
    "encoding,encode",
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some servers send
        ("br", brotli.compress),
        ("gzip, br", lambda b: brotli.compress(gzip.compress(b))),
        ("identity", lambda b: b),
    ],
)
def test_compressed_bodies_are_filtered_and_sent_as_identity(
    run_filter, customers, catalog, encoding, encode
):
    result = run_filter(
        customers,
        plan_hiding("customer", catalog, "credit_limit"),
        "application/json",
        encode(BODY),
        encoding,
    )
    assert result.content_encoding is None
    assert orjson.loads(result.body)["data"][0]["credit_limit"] == "[REDACTED]"


@pytest.mark.parametrize(
    "encoding,encode",
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("br", brotli.compress)],
)
def test_decompression_bomb_is_refused(run_filter, customers, catalog, encoding, encode):
    bomb = encode(b'{"data":["' + b"0" * 20_000_000 + b'"]}')
    assert len(bomb) < 100_000
    with pytest.raises(UpstreamUnavailable) as err:
        run_filter(
            customers,
            plan_hiding("customer", catalog, "credit_limit"),
            "application/json",
            bomb,
            encoding,
            max_bytes=1 << 20,
        )
    assert err.value.reason_id == "response_too_large"


@pytest.mark.parametrize(
    "encoding,body",
    [
        ("gzip", gzip.compress(BODY)[:-10]),
        ("gzip", b"not gzip at all"),
        ("br", brotli.compress(BODY)[:-3]),
        ("zstd", BODY),
        ("gzip", gzip.compress(BODY) + b"trailing"),
    ],
    ids=["truncated-gzip", "garbage-gzip", "truncated-br", "unknown-coding", "trailing-data"],
)
def test_corrupt_or_unknown_encodings_are_refused(run_filter, customers, catalog, encoding, body):
    with pytest.raises(UpstreamUnavailable) as err:
        run_filter(
            customers,
            plan_hiding("customer", catalog, "credit_limit"),
            "application/json",
            body,
            encoding,
        )
    assert err.value.reason_id == "response_unfilterable"


def test_compressed_empty_body(run_filter, customers, catalog):
    plan = plan_hiding("customer", catalog, "credit_limit")
    result = run_filter(customers, plan, "application/json", gzip.compress(b""), "gzip")
    assert result.body == b"" and result.content_encoding is None

"""Prometheus metrics. Global state, fenced into this one module.

Label values are bounded: upstream names come from settings, decisions and reason ids from
code, status codes from HTTP. Never a subject or a path (unbounded cardinality, and personal).
"""

from __future__ import annotations

import functools
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "wardgate_requests_total",
    "Requests handled by the proxy listener",
    ("upstream", "decision", "reason", "status"),
    registry=REGISTRY,
)
LATENCY = Histogram(
    "wardgate_request_duration_seconds",
    "Time from request to the end of the response, by upstream",
    ("upstream",),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
RECORDS = Counter(
    "wardgate_records_returned_total",
    "Records that left through the proxy, by upstream and entity",
    ("upstream", "entity"),
    registry=REGISTRY,
)
AUDIT_QUEUE = Gauge(
    "wardgate_audit_queue_depth", "Audit events waiting to be written", registry=REGISTRY
)


# ``.labels(...)`` validates, converts and looks up under a lock on every call (a few µs); the
# label sets are bounded (see above), so each child is looked up once and kept. The cache
# bound is only a backstop against a label value that is not as bounded as it should be.
_CHILDREN = 4096


@functools.lru_cache(maxsize=_CHILDREN)
def _request_counter(upstream: str, decision: str, reason: str, status: int) -> Any:
    return REQUESTS.labels(upstream, decision, reason, str(status))


@functools.lru_cache(maxsize=_CHILDREN)
def _latency(upstream: str) -> Any:
    return LATENCY.labels(upstream)


@functools.lru_cache(maxsize=_CHILDREN)
def _records(upstream: str, entity: str) -> Any:
    return RECORDS.labels(upstream, entity)


def request_done(upstream: str, decision: str, reason: str, status: int, seconds: float) -> None:
    """Count one request handled by the proxy listener and observe how long it took."""
    _request_counter(upstream, decision, reason, status).inc()
    _latency(upstream).observe(seconds)


def records_returned(upstream: str, entity: str, records: int) -> None:
    _records(upstream, entity).inc(records)

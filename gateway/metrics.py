"""Prometheus metrics. Global state, fenced into this one module.

Label values are bounded: upstream names come from settings, decisions and reason ids from
code, status codes from HTTP. Never a subject or a path (unbounded cardinality, and personal).
"""

from __future__ import annotations

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

"""Bulk-export detection end to end: two gateways with tiny thresholds sharing Redis counters.

What is asserted is what the client received: the request that crosses a threshold is
refused and its records never arrive. Each test pages as a subject of its own (roles come
from the token), so the shared counters of one test never push another over a limit.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from gateway.demo import data
from tests.e2e.conftest import REPO, Gateway, Upstreams, launch_gateway
from tests.e2e.helpers import roles_from_token

REDIS_URL = "redis://127.0.0.1:6379/0"
BLOCK_AFTER = 25  # sales may read 25 customers per hour here; the 26th is refused
PAGE = 10
CRAWL_DEPTH, CRAWL_PAGES = 2, 4  # from page 3 on a page is deep; the 4th deep page is refused
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def detection_policy(key_prefix: str) -> dict[str, Any]:
    quiet = {"enabled": False}
    return {
        "timezone": "UTC",
        "working_hours": {"start": 0, "end": 24, "weekdays": ALL_DAYS},
        "throttle": "15m",
        "dedup": "1h",
        "counters": {"backend": "redis", "key_prefix": key_prefix},
        "detectors": {
            "volume": {
                "rules": [
                    {
                        "role": "sales",
                        "entity": "customer",
                        "window": "1h",
                        "max": BLOCK_AFTER,
                        "severity": "critical",
                        "action": "block",
                    },
                    {"role": "*", "entity": "*", "window": "1h", "max": 100_000},
                ]
            },
            "crawl": {
                "severity": "high",
                "action": "throttle",
                "window": "1h",
                "depth": CRAWL_DEPTH,
                "pages": CRAWL_PAGES,
                "records": 1,
            },
            "baseline": quiet,
            "peer": quiet,
            "off_hours": quiet,
            "departing": quiet,
            "first_access": quiet,
        },
    }


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, upstreams: Upstreams) -> Iterator[list[Gateway]]:
    """Two gateways (own databases) counting exports in one Redis under a fresh prefix."""
    prefix = f"wardgate:e2e:{uuid.uuid4().hex[:12]}:"
    base = tmp_path_factory.mktemp("detect")
    overrides = {**roles_from_token(upstreams), "redis_url": REDIS_URL}
    try:
        with ExitStack() as stack:
            gateways = []
            for name in ("a", "b"):
                tmp = base / name
                _policy_dir(tmp / "policies", detection_policy(prefix))
                gateways.append(
                    stack.enter_context(
                        launch_gateway(tmp, upstreams, overrides=overrides, sync=False)
                    )
                )
            yield gateways
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def _policy_dir(target: Path, detection: dict[str, Any]) -> None:
    shutil.copytree(REPO / "policies", target, ignore=shutil.ignore_patterns("tests"))
    (target / "detection.yaml").write_text(yaml.safe_dump(detection))


def salesperson(gateway: Gateway, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.token(subject, extra={'roles': ['sales']})}"}


def officer(gateway: Gateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.token('e2e-officer', extra={'roles': ['officer']})}"}


def page(gateway: Gateway, subject: str, number: int, size: int = PAGE) -> httpx.Response:
    return httpx.get(
        f"{gateway.url}/crm/api/customers?page={number}&page_size={size}",
        headers=salesperson(gateway, subject),
        timeout=10,
    )


def leaked(response: httpx.Response, number: int, size: int) -> list[int]:
    """Ids of the customers of page ``number`` whose data appears in the response."""
    rows = data.customers()[(number - 1) * size : number * size]
    return [
        c["id"]
        for c in rows
        if c["id_number"][:6] + "*" in response.text or c["name"] in response.text
    ]


def alerts(gateway: Gateway, subject: str) -> list[dict[str, Any]]:
    """The subject's alerts, once written (the guard writes them in the background)."""
    deadline = time.monotonic() + 5
    while True:
        r = httpx.get(
            f"{gateway.admin_url}/api/alerts", params={"subject": subject}, headers=officer(gateway)
        )
        assert r.status_code == 200, r.text
        found = r.json()["alerts"]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_paging_past_the_limit_is_blocked_and_those_records_never_arrive(pair: list[Gateway]):
    gw, subject = pair[0], f"e2e-crawler-{uuid.uuid4().hex[:8]}"
    for number in (1, 2):
        r = page(gw, subject, number)
        assert r.status_code == 200, r.text
        assert [c["id"] for c in r.json()["data"]] == list(range(number * 10 - 9, number * 10 + 1))
    crossing = page(gw, subject, 3)  # records 21..30: the 30th crosses 25
    assert crossing.status_code == 403, crossing.text
    assert crossing.headers["content-type"] == "application/problem+json"
    problem = crossing.json()
    assert problem["reason_id"] == "export_blocked" and problem["alert_ids"]
    assert leaked(crossing, 3, PAGE) == []
    later = page(gw, subject, 4)
    assert later.status_code == 403 and leaked(later, 4, PAGE) == []
    assert later.json()["reason_id"] == "export_blocked"
    assert page(gw, f"e2e-colleague-{uuid.uuid4().hex[:8]}", 1).status_code == 200


def test_alert_is_listed_acknowledged_and_resolved_by_an_officer(pair: list[Gateway]):
    gw, subject = pair[0], f"e2e-crawler-{uuid.uuid4().hex[:8]}"
    for number in (1, 2, 3):
        page(gw, subject, number)
    (alert,) = alerts(gw, subject)
    assert alert["detector"] == "volume" and alert["state"] == "open"
    assert alert["action"] == "block" and alert["severity"] == "critical"
    assert alert["count"] == 30 and alert["entity"] == "customer"
    base = f"{gw.admin_url}/api/alerts/{alert['id']}"
    listing = httpx.get(f"{gw.admin_url}/api/alerts", headers=salesperson(gw, subject))
    assert listing.status_code == 403 and "alerts" not in listing.json()
    assert httpx.get(base, headers=salesperson(gw, subject)).status_code == 403
    assert httpx.post(f"{base}/acknowledge", headers=salesperson(gw, subject)).status_code == 403
    assert (
        httpx.post(f"{base}/resolve", json={"verdict": "guilty"}, headers=officer(gw)).status_code
        == 400
    )
    taken = httpx.post(f"{base}/acknowledge", json={"note": "looking"}, headers=officer(gw))
    assert taken.status_code == 200, taken.text
    assert taken.json()["state"] == "acknowledged"
    closed = httpx.post(
        f"{base}/resolve",
        json={"verdict": "true_positive", "note": "bulk copy"},
        headers=officer(gw),
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["state"] == "resolved" and closed.json()["verdict"] == "true_positive"
    again = httpx.post(f"{base}/acknowledge", headers=officer(gw))
    assert again.status_code == 409
    detail = httpx.get(base, headers=officer(gw)).json()
    assert [t["to"] for t in detail["transitions"]][-2:] == ["acknowledged", "resolved"]


def test_a_crawl_split_across_two_gateways_is_caught(pair: list[Gateway]):
    subject = f"e2e-splitter-{uuid.uuid4().hex[:8]}"
    size = 2  # small pages: the crawl rule, not the volume rule, must be what fires
    last_allowed = CRAWL_DEPTH + CRAWL_PAGES - 1  # pages 3..5 are the first 3 deep pages
    for number in range(1, last_allowed + 1):
        r = page(pair[number % 2], subject, number, size)
        assert r.status_code == 200, (number, r.text)
    caught = page(pair[(last_allowed + 1) % 2], subject, last_allowed + 1, size)
    assert caught.status_code == 429, caught.text
    assert caught.json()["reason_id"] == "export_throttled"
    assert int(caught.headers["retry-after"]) > 0
    assert leaked(caught, last_allowed + 1, size) == []
    # each gateway alone saw at most 2 deep pages: only the shared count reaches 4
    (alert,) = alerts(pair[(last_allowed + 1) % 2], subject)
    assert alert["detector"] == "crawl" and alert["action"] == "throttle"
    other = page(pair[last_allowed % 2], subject, last_allowed + 2, size)
    assert other.status_code == 429 and leaked(other, last_allowed + 2, size) == []

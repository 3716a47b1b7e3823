"""A block holds across two real ``wardgate serve`` processes sharing PostgreSQL and Redis.

In ``pair`` counters are per process (memory), so every refusal that a gateway did not
raise itself can only come from the shared hold. A page past the end of the customer list
carries no records: it is refused only by a hold, never by a new threshold crossing.
``counted_pair`` counts in Redis too, as a production deployment of several replicas does:
there an officer's verdict given on one gateway ends the episode on the other.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.conftest import REPO, Gateway, Upstreams, launch_gateway
from tests.e2e.helpers import roles_from_token
from tests.support.postgres import schema_url, temporary_schema

pytestmark = pytest.mark.redis

LIMIT = 25  # sales may read 25 customers per hour; the page that passes it is blocked
EMPTY_PAGE = 10_000
CONVERGE_S = 1.0
QUIET = {"enabled": False}


def detection_policy(counters: dict[str, str]) -> dict[str, object]:
    return {
        "timezone": "UTC",
        "throttle": "15m",
        "dedup": "1h",
        "counters": counters,
        "detectors": {
            "volume": {
                "rules": [
                    {
                        "role": "sales",
                        "entity": "customer",
                        "window": "1h",
                        "max": LIMIT,
                        "severity": "critical",
                        "action": "block",
                    },
                    {"role": "*", "entity": "*", "window": "1h", "max": 100_000},
                ]
            },
            **{
                name: QUIET
                for name in ("crawl", "baseline", "peer", "off_hours", "departing", "first_access")
            },
        },
    }


@contextmanager
def two_gateways(
    base: Path, upstreams: Upstreams, counters: dict[str, str]
) -> Iterator[list[Gateway]]:
    """Two gateways on one PostgreSQL schema and one Redis, as two replicas of one chart."""
    with temporary_schema("wg_holds_e2e") as schema, ExitStack() as stack:
        overrides = {
            **roles_from_token(upstreams),
            "redis_url": "redis://127.0.0.1:6379/0",
            "database_url": schema_url(schema),
        }
        gateways = []
        for name in ("a", "b"):
            policies = base / name / "policies"
            shutil.copytree(REPO / "policies", policies, ignore=shutil.ignore_patterns("tests"))
            (policies / "detection.yaml").write_text(yaml.safe_dump(detection_policy(counters)))
            gateways.append(
                stack.enter_context(
                    launch_gateway(base / name, upstreams, overrides=overrides, sync=False)
                )
            )
        yield gateways


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, upstreams: Upstreams) -> Iterator[list[Gateway]]:
    with two_gateways(tmp_path_factory.mktemp("holds"), upstreams, {"backend": "memory"}) as pair:
        yield pair


@pytest.fixture(scope="module")
def counted_pair(
    tmp_path_factory: pytest.TempPathFactory, upstreams: Upstreams
) -> Iterator[list[Gateway]]:
    counters = {"backend": "redis", "key_prefix": f"wg-e2e-{uuid.uuid4().hex[:8]}:"}
    with two_gateways(tmp_path_factory.mktemp("counted"), upstreams, counters) as pair:
        yield pair


def token(gateway: Gateway, subject: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.token(subject, extra={'roles': [role]})}"}


def page(gateway: Gateway, subject: str, number: int) -> httpx.Response:
    return httpx.get(
        f"{gateway.url}/crm/api/customers?page={number}&page_size=10",
        headers=token(gateway, subject, "sales"),
        timeout=10,
    )


def resolve(
    gateway: Gateway, alert_id: str, headers: dict[str, str], verdict: str = "true_positive"
) -> httpx.Response:
    return httpx.post(
        f"{gateway.admin_url}/api/alerts/{alert_id}/resolve",
        json={"verdict": verdict, "note": "e2e"},
        headers=headers,
        timeout=10,
    )


def crawl_until_blocked(gateway: Gateway, subject: str) -> str:
    """Page until the block; return the id of the alert that holds it."""
    for number in (1, 2):
        assert page(gateway, subject, number).status_code == 200
    crossing = page(gateway, subject, 3)  # records 21..30 pass the limit of 25
    assert crossing.status_code == 403, crossing.text
    assert crossing.json()["reason_id"] == "export_blocked"
    (alert_id,) = crossing.json()["alert_ids"]
    return str(alert_id)


def within(seconds: float, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not converged within {seconds} s"
        time.sleep(0.02)


def refused(gateway: Gateway, subject: str) -> bool:
    return page(gateway, subject, EMPTY_PAGE).status_code == 403


def test_a_block_holds_on_both_until_an_officer_resolves_it_on_either(pair: list[Gateway]):
    a, b = pair
    subject = f"e2e-holder-{uuid.uuid4().hex[:8]}"
    alert_id = crawl_until_blocked(a, subject)

    within(CONVERGE_S, lambda: refused(b, subject))
    on_b = page(b, subject, 1)  # B alone has counted nothing for this person
    assert on_b.status_code == 403 and on_b.json()["alert_ids"] == [alert_id]
    assert on_b.headers["content-type"] == "application/problem+json" and "data" not in on_b.json()
    assert page(b, f"e2e-bystander-{uuid.uuid4().hex[:8]}", 1).status_code == 200

    # the person cannot lift their own block, not even on the replica that did not raise it
    own = resolve(b, alert_id, token(b, subject, "sales"))
    assert own.status_code == 403 and own.json()["reason_id"] == "officer_role_required"
    # an officer resolving someone else's alert releases nothing
    other = crawl_until_blocked(b, f"e2e-other-{uuid.uuid4().hex[:8]}")
    assert resolve(b, other, token(b, "e2e-officer", "officer")).status_code == 200
    time.sleep(0.6)  # more than two refresh intervals
    assert refused(a, subject) and refused(b, subject)

    done = resolve(b, alert_id, token(b, "e2e-officer", "officer"))
    assert done.status_code == 200, done.text
    assert page(b, subject, 1).status_code == 200  # released at once where it was resolved
    within(CONVERGE_S, lambda: not refused(a, subject))


def test_a_benign_verdict_on_one_gateway_ends_the_episode_on_the_other(
    counted_pair: list[Gateway],
) -> None:
    a, b = counted_pair
    subject = f"e2e-cleared-{uuid.uuid4().hex[:8]}"
    officer = token(b, "e2e-officer", "officer")
    alert_id = crawl_until_blocked(a, subject)
    # the person cannot end their own episode
    own = resolve(b, alert_id, token(b, subject, "sales"), verdict="benign")
    assert own.status_code == 403
    done = resolve(b, alert_id, officer, verdict="benign")
    assert done.status_code == 200, done.text
    within(CONVERGE_S, lambda: not refused(a, subject))
    # the 30 records read before the verdict no longer count, on A either
    assert page(a, subject, 1).status_code == 200
    assert page(b, subject, 2).status_code == 200
    # what is read after the verdict still adds up across both, and blocks again
    again = page(a, subject, 3)
    assert again.status_code == 403 and again.json()["reason_id"] == "export_blocked"

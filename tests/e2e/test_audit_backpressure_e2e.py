"""Audit back-pressure end to end: a saturated trail refuses before anything is forwarded.

A gateway on PostgreSQL with a tiny audit queue (``when_full: reject``), in fast and in strict
mode. The trail is stalled the way production stalls it: another session holds a lock on
``audit_events`` (a long migration, a ``VACUUM FULL``), so the writer's insert waits and its
queue fills. Requests then get 503 + Retry-After *before* the upstream sees them, and every
request that was answered with data has its audit event once the lock is gone.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import orjson
import psycopg
import pytest

from tests.e2e.conftest import Gateway, Upstreams, launch_gateway
from tests.e2e.helpers import roles_from_token

PG_ADMIN_URL = "postgresql://root@127.0.0.1:5432/test"
QUEUE_SIZE = 3
BATCH_SIZE = 2  # the stalled writer holds at most one batch besides the queue
READ = "/crm/echo"  # unmapped: no detector reads the trail on this path

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module", params=["fast", "strict"])
def tiny_trail(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, upstreams: Upstreams
) -> Iterator[Gateway]:
    name = f"wg_e2e_bp_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        overrides = {
            **roles_from_token(upstreams),
            "database_url": f"postgresql://root@127.0.0.1:5432/{name}",
            "audit": {
                "durability": request.param,
                "queue_size": QUEUE_SIZE,
                "when_full": "reject",
                "batch_size": BATCH_SIZE,
                "batch_interval_ms": 5,
            },
        }
        tmp = tmp_path_factory.mktemp(f"bp-{request.param}")
        with launch_gateway(tmp, upstreams, overrides=overrides, sync=False) as gw:
            yield gw
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def as_tester(gw: Gateway, agent: str) -> dict[str, str]:
    token = gw.token("bp-tester", extra={"roles": ["tester"]})
    return {"Authorization": f"Bearer {token}", "User-Agent": agent}


def marker() -> str:
    return f"e2e-bp-{uuid.uuid4().hex[:12]}"


@contextmanager
def stalled_trail(gw: Gateway) -> Iterator[None]:
    """Another session locks ``audit_events`` until the block ends."""
    with psycopg.connect(gw.db_url) as conn:
        conn.execute("LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.rollback()


def recorded(gw: Gateway, agent: str) -> dict[str, int]:
    """request_id → status of the stored events sent with User-Agent ``agent``."""
    with psycopg.connect(gw.db_url) as conn:
        rows = conn.execute(
            "SELECT request_id, status FROM audit_events WHERE user_agent = %s", (agent,)
        ).fetchall()
    return dict(rows)


def wait_for_events(gw: Gateway, agent: str, count: int) -> None:
    wait_until(lambda: len(recorded(gw, agent)) >= count)
    assert len(recorded(gw, agent)) == count


def wait_until(condition: Callable[[], bool], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {within_s} s"
        time.sleep(0.02)


def forwarded_ids(gw: Gateway, agent: str) -> set[str | None]:
    """Request ids of what the upstream received from this test."""
    requests = gw.recorder.requests("crm")
    return {r.header("x-request-id") for r in requests if r.header("user-agent") == agent}


def unrecorded_in_log(gw: Gateway) -> set[str]:
    """Request ids the gateway logged as answered without an audit event."""
    lines = (gw.config.parent / "gateway.log").read_text().splitlines()
    return {orjson.loads(x)["request_id"] for x in lines if "audit event not recorded" in x}


def test_a_stalled_trail_refuses_before_forwarding_and_every_answer_is_recorded(
    tiny_trail: Gateway,
) -> None:
    gw, agent, total = tiny_trail, marker(), 12
    headers = as_tester(gw, agent)
    with ThreadPoolExecutor(total) as pool, stalled_trail(gw):
        calls = [
            pool.submit(httpx.get, f"{gw.url}{READ}", headers=headers, timeout=30)
            for _ in range(total)
        ]
        # every request is either refused (fast) or has reached the upstream; strict answers
        # are held until their event is durable, so they finish only after the lock is gone
        wait_until(
            lambda: (
                sum(c.done() and c.result().status_code == 503 for c in calls)
                + len(forwarded_ids(gw, agent))
                == total
            )
        )
    answers = [c.result() for c in calls]

    refused = [a for a in answers if a.status_code == 503]
    served = [a for a in answers if a.status_code == 200]
    assert len(refused) + len(served) == total, [a.status_code for a in answers]
    assert len(served) <= QUEUE_SIZE + BATCH_SIZE and len(refused) >= total - len(served) > 0
    for answer in refused:
        assert answer.headers["retry-after"] == "1"
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["reason_id"] == "audit_backpressure"
    served_ids = {a.headers["x-request-id"] for a in served}
    refused_ids = {a.headers["x-request-id"] for a in refused}
    assert forwarded_ids(gw, agent) == served_ids  # a refused request never left Wardgate

    wait_until(lambda: served_ids <= recorded(gw, agent).keys())
    assert recorded(gw, agent) == dict.fromkeys(served_ids, 200)
    # a refusal for a full trail cannot be in that trail: it is in the log, never silent
    wait_until(lambda: refused_ids <= unrecorded_in_log(gw))
    again = httpx.get(f"{gw.url}{READ}", headers=headers, timeout=10)
    assert again.status_code == 200  # the trail is back: so is the service


def _raw(gw: Gateway, request: bytes, *, read: bool) -> None:
    """Send ``request`` on a socket of its own; read a little of the answer or not; close."""
    host, port = gw.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        if read:
            sock.recv(512)


def test_every_way_a_forwarded_request_can_end_gives_its_slot_back(tiny_trail: Gateway) -> None:
    """Each path below ends after the slot was taken (a failed upstream call, a body found
    too large while streaming, a client that hung up); done more often than there are
    slots, a slot kept by any of them would refuse everything afterwards."""
    gw, agent = tiny_trail, marker()
    headers = as_tester(gw, agent)
    auth = headers["Authorization"].encode()
    head = f"Host: gw\r\nUser-Agent: {agent}\r\nAuthorization: ".encode() + auth + b"\r\n"
    endings: dict[str, Callable[[], object]] = {
        "upstream down": lambda: httpx.get(f"{gw.url}/down/x", headers=headers, timeout=10),
        "body over the limit while streaming": lambda: httpx.post(
            f"{gw.url}/crm/echo",
            headers=headers,
            content=iter([b"x" * 16384] * 8),  # chunked: the limit is found mid-stream
            timeout=10,
        ),
        "client gone mid-upload": lambda: _raw(
            gw,
            b"POST /crm/echo HTTP/1.1\r\n" + head + b"Content-Length: 5000\r\n\r\n" + b"x" * 100,
            read=False,
        ),
        "client gone mid-answer": lambda: _raw(
            gw,
            b"GET /crm/stream?chunks=20&delay_ms=10 HTTP/1.1\r\n" + head + b"\r\n",
            read=True,
        ),
    }
    rounds = QUEUE_SIZE + 1
    done = 0
    for ending in endings.values():
        for _ in range(rounds):
            ending()
            done += 1
            # one at a time (a client that hung up does not wait for the gateway to finish):
            # concurrent requests could use up the tiny queue by themselves
            wait_for_events(gw, agent, done)

    answers = [httpx.get(f"{gw.url}{READ}", headers=headers, timeout=10) for _ in range(10)]
    assert [a.status_code for a in answers] == [200] * 10
    wait_for_events(gw, agent, done + len(answers))


def test_a_client_gone_before_its_body_was_read_is_recorded_as_gone(tiny_trail: Gateway) -> None:
    """SOAP bodies are read before the decision: a client hanging up there is a 499 in the
    trail, not an internal error."""
    gw, agent = tiny_trail, marker()
    auth = as_tester(gw, agent)["Authorization"].encode()
    _raw(
        gw,
        b"POST /erp/soap HTTP/1.1\r\nHost: gw\r\nContent-Type: text/xml\r\n"
        + f"User-Agent: {agent}\r\nContent-Length: 5000\r\n".encode()
        + b"Authorization: "
        + auth
        + b"\r\n\r\n<soap:Envelope",
        read=False,
    )
    wait_for_events(gw, agent, 1)
    assert list(recorded(gw, agent).values()) == [499]

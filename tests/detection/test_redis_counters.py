"""Shared counting across replicas on the real Redis, and what happens when Redis fails."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from audit.alerts import AlertStore
from audit.counters import RedisCounters
from tests.detection.conftest import WEDNESDAY_10H as T
from tests.detection.conftest import GuardFactory, obs

pytestmark = pytest.mark.redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = f"wardgate-test:{uuid.uuid4().hex}:"
    yield name
    client = Redis.from_url("redis://127.0.0.1:6379")
    keys = [k async for k in client.scan_iter(match=f"{name}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_two_replicas_sharing_redis_catch_a_crawl_split_across_both(
    make_guard: GuardFactory, prefix: str
) -> None:
    counters = [
        RedisCounters.from_url("redis://127.0.0.1:6379", key_prefix=prefix) for _ in range(2)
    ]
    replicas = [make_guard(counters=c) for c in counters]
    actions = []
    for page in range(1, 22):
        replica = replicas[page % 2]  # a load balancer alternating between the two
        verdict = await replica.observe(obs(T + page * 20, 100, query={"page": str(page)}))
        actions.append(verdict.action)
    # neither replica saw more than 8 deep pages (6..20); together they saw 15 at page 20
    assert actions[:19] == ["none"] * 19 and actions[19] == "throttle"
    assert not any(c.degraded for c in counters)
    for replica in replicas:
        await replica.aclose()


async def test_redis_unreachable_keeps_serving_and_raises_one_degradation_alert(
    make_guard: GuardFactory, store: AlertStore
) -> None:
    counters = RedisCounters.from_url(f"redis://127.0.0.1:{free_port()}", key_prefix="x:")
    guard = make_guard(counters=counters)
    verdicts = [await guard.observe(obs(T + i, 300)) for i in range(8)]
    assert counters.degraded
    # detection still works on local counts: 2,400 records crossed the hourly limit
    assert verdicts[-1].action == "throttle"
    await guard.drain()
    degraded = store.list_alerts(detector="counters_degraded")
    assert len(degraded) == 1 and "Redis" in degraded[0]["explanation"]
    await guard.aclose()


@pytest.fixture
def private_redis() -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    """A throwaway redis-server on a free port; the list holds the current process."""
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    yield port, procs
    for proc in procs:
        proc.terminate()
        proc.wait(5)


async def start_redis(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            "/usr/bin/redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    client = Redis.from_url(f"redis://127.0.0.1:{port}")
    for _ in range(200):
        try:
            await client.ping()
            break
        except (OSError, RedisError):  # refused until it listens
            await asyncio.sleep(0.02)
    await client.aclose()
    return proc


async def test_redis_outage_and_recovery(
    make_guard: GuardFactory,
    store: AlertStore,
    private_redis: tuple[int, list[subprocess.Popen[bytes]]],
) -> None:
    port, procs = private_redis
    procs.append(await start_redis(port))
    counters = RedisCounters.from_url(f"redis://127.0.0.1:{port}", key_prefix="p:", retry_s=0.2)
    guard = make_guard(counters=counters)
    await guard.observe(obs(T, 10))
    assert not counters.degraded

    procs[0].terminate()
    procs[0].wait(5)
    for i in range(5):
        await guard.observe(obs(T + i, 10))
    assert counters.degraded

    procs[0] = await start_redis(port)
    await asyncio.sleep(0.25)
    await guard.observe(obs(T + 10, 10))
    assert not counters.degraded
    client = Redis.from_url(f"redis://127.0.0.1:{port}")
    assert await client.keys("p:*")
    await client.aclose()
    await guard.drain()
    assert len(store.list_alerts(detector="counters_degraded")) == 1
    await guard.aclose()

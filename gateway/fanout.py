"""Keep a memory mirror of a table fresh on every replica: poll, plus a Redis nudge.

A mirror (people's access status, alert holds) re-reads its table every ``refresh_s`` and at
once when another replica publishes on the mirror's Redis channel after a change. Polling
alone is enough to converge; the channel only makes it faster. While the database or Redis
is away the mirror keeps what it last read and the failure is logged once per outage.

    fanout = Fanout("holds", "wardgate:holds", redis_url, mirror.refresh, refresh_s=0.25)
    await fanout.start()       # background poll (and listener when there is a Redis URL)
    await fanout.announce()    # after a change: the other replicas re-read at once
    await fanout.close()       # bounded: a redis-py pubsub close can hang (redis/redis-py#3941)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog
from redis.asyncio import Redis

__all__ = ["Fanout"]

CLOSE_S = 1.0  # how long closing waits for the listener and the Redis client
log = structlog.get_logger(__name__)


class Fanout:
    """Run ``refresh`` every ``refresh_s`` and whenever ``channel`` carries a message.

    Log events are named after ``name``: ``<name>_refresh_failed``,
    ``<name>_refresh_recovered``, ``<name>_channel_lost``, ``<name>_announce_failed``.
    """

    def __init__(
        self,
        name: str,
        channel: str,
        redis_url: str | None,
        refresh: Callable[[], Awaitable[None]],
        *,
        refresh_s: float,
    ) -> None:
        self._name = name
        self._channel = channel
        self._redis_url = redis_url
        self._refresh = refresh
        self._refresh_s = refresh_s
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: Redis | None = None

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._poll_forever(), name=f"{self._name}-poll"))
        if self._redis_url:
            # a dead Redis host must not stall the caller that announces a change
            self._redis = Redis.from_url(self._redis_url, socket_connect_timeout=CLOSE_S)
            self._tasks.append(
                asyncio.create_task(self._listen_forever(self._redis), name=f"{self._name}-listen")
            )

    async def announce(self, message: str = "1") -> None:
        """Tell the other replicas to re-read now (they still poll if this fails)."""
        if self._redis is None:
            return
        try:
            await self._redis.publish(self._channel, message)
        except Exception as exc:  # the others still poll within refresh_s
            log.warning(f"{self._name}_announce_failed", error=type(exc).__name__)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CLOSE_S)
        self._tasks.clear()
        if self._redis is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._redis.aclose(), CLOSE_S)
            self._redis = None

    async def _poll_forever(self) -> None:
        failing = False
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._refresh_s)
            self._wake.clear()
            try:
                await self._refresh()
            except Exception as exc:  # keep the last known state; say so once per outage
                if not failing:
                    log.error(f"{self._name}_refresh_failed", error=type(exc).__name__)
                failing = True
            else:
                if failing:
                    log.info(f"{self._name}_refresh_recovered")
                failing = False

    async def _listen_forever(self, redis: Redis) -> None:
        while True:
            try:
                async with redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._wake.set()
            except Exception as exc:  # polling still covers us; retry the channel
                log.warning(f"{self._name}_channel_lost", error=type(exc).__name__)
                await asyncio.sleep(1.0)

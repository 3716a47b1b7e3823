"""Bucketed record counters behind every detector.

A series is a ring of fixed-width time buckets (e.g. 60 one-minute buckets = one sliding
hour). ``add`` bumps the current bucket of every series of one observation and returns all
of their buckets, oldest first, in one call (one Redis round trip).

``MemoryCounters`` is the default (one process). ``RedisCounters`` gives one count across
replicas: per-bucket keys bumped with pipelined INCRBY + EXPIRE and read back with MGET. If
Redis fails it counts locally, reports ``degraded`` (the guard raises one
``counters_degraded`` alert) and keeps serving; it retries Redis every ``retry_s`` and
returns to shared counting once Redis answers. Counts made while degraded stay local.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from audit.detectors.base import Need

log = structlog.get_logger(__name__)

_SWEEP_EVERY = 50_000  # adds between sweeps of idle memory series


class Counters(Protocol):
    """Where detectors count; see the module docstring."""

    @property
    def degraded(self) -> bool:
        """True while shared counting is unavailable and counts are local only."""
        ...

    async def add(self, now: float, needs: Sequence[Need]) -> list[list[int]]: ...

    async def aclose(self) -> None: ...


def bucket_of(now: float, need: Need) -> int:
    return int(now + need.offset_s) // need.bucket_s


class _Ring:
    """One series' buckets, oldest first: the newest bucket is always the last item, so a
    reading is one copy and moving on is one C-level shift (no modulo, no rotation)."""

    __slots__ = ("bucket_s", "newest", "values")

    def __init__(self, size: int, bucket_s: int, newest: int) -> None:
        self.values = [0] * size
        self.bucket_s = bucket_s
        self.newest = newest

    def bump(self, idx: int, amount: int) -> list[int]:
        values = self.values
        gap = idx - self.newest
        if gap > 0:
            size = len(values)
            if gap >= size:
                values[:] = [0] * size
            else:
                del values[:gap]
                values.extend([0] * gap)
            self.newest = idx
            gap = 0
        if amount and gap > -len(values):  # late events land in their own bucket
            values[gap - 1] += amount
        return values[:]


class MemoryCounters:
    """In-process counters (the default, and the fallback of ``RedisCounters``)."""

    degraded = False

    def __init__(self) -> None:
        self._rings: dict[str, _Ring] = {}
        self._adds = 0

    async def add(self, now: float, needs: Sequence[Need]) -> list[list[int]]:
        return self.add_now(now, needs)

    def add_now(self, now: float, needs: Sequence[Need]) -> list[list[int]]:
        """The synchronous core of ``add``."""
        self._adds += 1
        if self._adds % _SWEEP_EVERY == 0:
            self._sweep(now)
        out = []
        rings = self._rings
        for key, bucket_s, buckets, amount, offset_s in needs:
            idx = int(now + offset_s) // bucket_s
            ring = rings.get(key)
            if ring is None:
                ring = rings[key] = _Ring(buckets, bucket_s, idx)
            out.append(ring.bump(idx, amount))
        return out

    def _sweep(self, now: float) -> None:
        """Forget series with no bucket left inside their window (bounded memory)."""
        stale = [
            key
            for key, ring in self._rings.items()
            if (ring.newest + len(ring.values)) * ring.bucket_s < now - 86400
        ]
        for key in stale:
            del self._rings[key]

    async def aclose(self) -> None:
        self._rings.clear()


class RedisCounters:
    """Shared counters in Redis with a local fallback; see the module docstring."""

    def __init__(
        self,
        redis: Redis,
        *,
        key_prefix: str,
        retry_s: float = 5.0,
    ) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._retry_s = retry_s
        self._local = MemoryCounters()
        self._retry_at = 0.0
        self._degraded = False

    @classmethod
    def from_url(
        cls, url: str, *, key_prefix: str, timeout_s: float = 0.25, retry_s: float = 5.0
    ) -> RedisCounters:
        """A client that fails fast: no retries, short socket timeouts (it is on the hot path)."""
        client = Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client, key_prefix=key_prefix, retry_s=retry_s)

    @property
    def degraded(self) -> bool:
        return self._degraded

    async def add(self, now: float, needs: Sequence[Need]) -> list[list[int]]:
        if self._degraded and time.monotonic() < self._retry_at:
            return self._local.add_now(now, needs)
        try:
            readings = await self._add_shared(now, needs)
        except (RedisError, OSError, TimeoutError) as exc:
            if not self._degraded:
                log.warning("counters_degraded", error=type(exc).__name__, counting="local")
            self._degraded = True
            self._retry_at = time.monotonic() + self._retry_s
            return self._local.add_now(now, needs)
        if self._degraded:
            log.info("counters_recovered")
            self._degraded = False
        self._local.add_now(now, needs)  # keep the fallback warm for the next outage
        return readings

    async def _add_shared(self, now: float, needs: Sequence[Need]) -> list[list[int]]:
        pipe = self._redis.pipeline(transaction=False)
        for need in needs:
            idx = bucket_of(now, need)
            base = f"{self._prefix}{need.key}:"
            if need.amount:
                key = f"{base}{idx}"
                pipe.incrby(key, need.amount)
                pipe.expire(key, need.bucket_s * (need.buckets + 1))
            pipe.mget([f"{base}{i}" for i in range(idx - need.buckets + 1, idx + 1)])
        results = await pipe.execute()
        readings: list[list[int]] = []
        pos = 0
        for need in needs:
            pos += 2 if need.amount else 0
            readings.append([int(v) if v else 0 for v in results[pos]])
            pos += 1
        return readings

    async def aclose(self) -> None:
        await self._redis.aclose()

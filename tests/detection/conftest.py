"""Helpers for detection tests: a guard on in-memory SQLite, a fake directory, crafted traffic."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import Engine
from sqlalchemy.pool import StaticPool

from audit.alerts import AlertStore
from audit.counters import Counters, MemoryCounters
from audit.detect import ExportGuard, Observation
from audit.detectors.config import DetectionConfig, detection_config_from_dict
from audit.notify import Notifier
from audit.store import make_engine

POLICY = Path(__file__).resolve().parents[2] / "policies" / "detection.yaml"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> float:
    """Unix time of 2026-11-<day> hour:minute in Shanghai (Nov 2, 9, 16, 23 are Mondays)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).timestamp()


WEDNESDAY_10H = at(25, 10)


def policy_dict() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(POLICY.read_text(encoding="utf-8")))


def config(**changes: Any) -> DetectionConfig:
    """The shipped policy with ``detectors__crawl__pages=5``-style changes applied."""
    raw = policy_dict()
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    return detection_config_from_dict(raw)


class FakePeople:
    """A directory stand-in: remembers who is departing and what was done to whom."""

    def __init__(self) -> None:
        self.departing: set[str] = set()
        self.calls: list[tuple[str, str, str]] = []

    def is_departing(self, subject: str) -> bool:
        return subject in self.departing

    async def suspend(self, subject: str, *, by: str, reason: str) -> None:
        self.calls.append(("suspend", subject, by))

    async def reinstate(self, subject: str, *, by: str, reason: str) -> None:
        self.calls.append(("reinstate", subject, by))

    async def mark_departing(self, subject: str, *, last_day: str | None, by: str) -> None:
        self.departing.add(subject)
        self.calls.append(("departing", subject, by))


class Clock:
    def __init__(self, now: float = WEDNESDAY_10H) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def obs(
    time: float,
    records: int,
    *,
    subject: str = "sales07",
    roles: tuple[str, ...] = ("sales",),
    entity: str = "customer",
    path: str = "/api/customers",
    query: dict[str, str] | None = None,
    request_id: str | None = None,
) -> Observation:
    return Observation(
        time=time,
        subject=subject,
        roles=roles,
        upstream="crm",
        entity=entity,
        method="GET",
        path=path,
        query=query or {},
        status=200,
        records=records,
        request_id=request_id,
    )


@pytest.fixture
def engine() -> Engine:
    """One in-memory SQLite database shared by every thread of the test."""
    return make_engine("sqlite://", poolclass=StaticPool)


@pytest.fixture
def store(engine: Engine) -> AlertStore:
    alerts = AlertStore(engine)
    alerts.create_tables()
    return alerts


@pytest.fixture
def people() -> FakePeople:
    return FakePeople()


@pytest.fixture
def clock() -> Clock:
    return Clock()


GuardFactory = Callable[..., ExportGuard]


@pytest.fixture
def make_guard(store: AlertStore, people: FakePeople, clock: Clock) -> GuardFactory:
    def build(
        cfg: DetectionConfig | None = None,
        counters: Counters | None = None,
        notifier: Notifier | None = None,
    ) -> ExportGuard:
        return ExportGuard(
            cfg or config(), counters or MemoryCounters(), store, people, notifier, clock=clock
        )

    return build


async def history(guard: ExportGuard, days: list[int], per_day: int, **kw: Any) -> None:
    """One read of ``per_day`` records at 11:00 on each of ``days`` (November 2026)."""
    for day in days:
        await guard.observe(obs(at(day, 11), per_day, **kw))


WEEKDAYS_BEFORE_25 = [d for d in range(1, 25) if datetime(2026, 11, d).weekday() < 5]

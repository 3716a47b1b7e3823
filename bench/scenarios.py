"""Synthetic month of traffic with injected exfiltrations: how well does detection do?

    .venv/bin/python bench/scenarios.py [--seeds 1 2 3] [--people 60] [--days 35]

Normal traffic: people in roles sales, finance, officer and sync (bots) with their own
working hours (Asia/Shanghai, weekdays, lunch break, some overtime and Saturday work, days
off), per-person volumes and list browsing. Incidents are injected on random people and
days in the last two weeks with randomised sizes (burst, slow drip, pagination crawl, off
hours, departing person, crawl split across two replicas). Every request goes through
``precheck`` and ``observe`` like the proxy does, so a throttle or block really stops later
records.

The two replicas are modelled as production runs them: one count (a shared counters object,
as Redis gives), one database (a SQLite file: alerts and the ``alert_holds`` table), and each
its own holds mirror (``SharedHolds``), which sees a hold the other placed one second of
event time after it was stored (the ~1 s the refresh and Redis announcement promise).

Prints a markdown table per seed and in total: recall per incident type, false alerts per
1,000 person-days, records the burst got out before it was stopped, and the CPU time of
``observe`` in the common case (no alert). Quote medians across seeds.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from audit.alerts import AlertStore
from audit.counters import MemoryCounters
from audit.detect import ExportGuard, Observation
from audit.detectors.config import DetectionConfig, load_detection_config
from audit.holds import SharedHolds
from audit.replay import EventClock, ReplayPeople
from audit.store import make_engine

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 9, 28, tzinfo=ZONE).timestamp()  # a Monday
DAY = 86400
INCIDENT_TYPES = ("burst", "drip", "crawl", "off_hours", "departing", "split_replicas")
# Alerts on the person within a day after an incident are about it: daily and 24-hour
# windows still hold the incident's records then.
GRACE_S = DAY
CONVERGE_S = 1.0  # a hold stored by one replica is in force on the other this much later
ROLE_MIX = {"sales": 0.6, "finance": 0.24, "officer": 0.08, "sync": 0.08}
ENTITIES = {
    "sales": (("customer", 0.7), ("order", 0.2), ("product", 0.1)),
    "finance": (("invoice", 0.6), ("order", 0.2), ("customer", 0.2)),
    "officer": (("customer", 0.5), ("invoice", 0.5)),
}
REQUESTS_PER_DAY = {"sales": 30, "finance": 50, "officer": 12}
PAGE_SIZES = {"sales": (20, 20, 50), "finance": (50, 100), "officer": (20, 50)}


@dataclass(frozen=True, slots=True)
class Person:
    subject: str
    role: str
    start_h: float
    end_h: float
    scale: float  # how much this person reads compared with their role's typical day
    overtime_p: float
    saturday_p: float


@dataclass(frozen=True, slots=True)
class Req:
    time: float
    subject: str
    role: str
    entity: str
    path: str
    query: tuple[tuple[str, str], ...]
    records: int
    replica: int = 0


@dataclass(slots=True)
class Incident:
    kind: str
    subject: str
    start: float
    end: float
    caught: bool = False  # an alert was raised during it (or within GRACE_S after)
    records_out: int = 0  # records that left
    records_refused: int = 0  # records refused by a hold placed before or during it

    @property
    def stopped(self) -> bool:
        """Caught, or refused (by an earlier throttle/block) before 10 % of it got out."""
        return self.caught or self.records_refused >= 9 * self.records_out


@dataclass(slots=True)
class Outcome:
    incidents: list[Incident]
    false_alerts: dict[str, int]  # detector → alerts outside every incident
    person_days: int
    observe_us: list[float] = field(default_factory=list)


# ── normal traffic ──────────────────────────────────────────────────────────────────────


def make_people(rng: random.Random, n: int) -> list[Person]:
    people = []
    counts = {role: max(1, round(n * share)) for role, share in ROLE_MIX.items()}
    for role, count in counts.items():
        for i in range(count):
            start = rng.uniform(8.0, 10.0)
            people.append(
                Person(
                    subject=f"{role}{i:02d}",
                    role=role,
                    start_h=start,
                    end_h=start + rng.uniform(8.5, 10.0),
                    scale=rng.lognormvariate(0, 0.5),
                    overtime_p=rng.choice((0.0, 0.05, 0.15, 0.3)),
                    saturday_p=rng.choice((0.0, 0.0, 0.1, 0.25)),
                )
            )
    return people


def pick(rng: random.Random, mix: tuple[tuple[str, float], ...]) -> str:
    x, acc = rng.random(), 0.0
    for name, p in mix:
        acc += p
        if x < acc:
            return name
    return mix[-1][0]


def working_minutes(rng: random.Random, p: Person, day: int) -> list[float]:
    """Unix times of this person's working minutes on ``day`` (empty on days off)."""
    base = START + day * DAY
    weekday = day % 7
    if rng.random() < 0.04:  # leave, sick days
        return []
    if weekday == 5 and rng.random() < p.saturday_p:  # a short Saturday morning
        start, end = 9.5 + rng.random(), 12.0 + rng.random() * 1.5
    elif weekday >= 5:
        return []
    else:
        start = p.start_h + rng.uniform(-0.3, 0.5)
        end = p.end_h + rng.uniform(-0.5, 0.5)
        if rng.random() < p.overtime_p:
            end = rng.uniform(20.2, 22.5)
    minutes = [h * 60 for h in range(int(start * 60), int(end * 60))]
    return [base + m for m in minutes if not 12 * 3600 <= m < 13 * 3600]


def person_day(rng: random.Random, p: Person, day: int) -> list[Req]:
    minutes = working_minutes(rng, p, day)
    if not minutes:
        return []
    out: list[Req] = []
    share = min(1.0, len(minutes) / ((p.end_h - p.start_h) * 60 - 60))  # part of a full day
    n = max(1, round(rng.gauss(1, 0.3) * REQUESTS_PER_DAY[p.role] * p.scale * share))
    for _ in range(n):
        t = rng.choice(minutes) + rng.uniform(0, 59)
        entity = pick(rng, ENTITIES[p.role])
        kind = rng.random()
        path = f"/api/{entity}s"
        if kind < 0.6:  # one record
            out.append(Req(t, p.subject, p.role, entity, f"{path}/{rng.randint(1, 30000)}", (), 1))
        elif kind < 0.95:  # browse a list: page 1, sometimes a few more
            size = rng.choice(PAGE_SIZES[p.role])
            pages = min(10, int(rng.expovariate(0.7)) + 1)
            for page in range(1, pages + 1):
                query = (("page", str(page)), ("page_size", str(size)))
                out.append(
                    Req(t + page * rng.uniform(3, 40), p.subject, p.role, entity, path, query, size)
                )
        else:  # a search
            out.append(Req(t, p.subject, p.role, entity, path, (("q", "x"),), rng.randint(0, 40)))
    if rng.random() < 0.004:  # a rare look at something new, small
        out.append(Req(minutes[0] + 600, p.subject, p.role, "product", "/api/products", (), 30))
    return out


def bot_day(rng: random.Random, p: Person, day: int) -> list[Req]:
    """Order sync: every 15 minutes, around the clock, walks the changed orders and products."""
    out = []
    for slot in range(96):
        t = START + day * DAY + slot * 900 + rng.uniform(0, 60)
        for entity in ("order", "product"):
            for page in range(1, rng.randint(1, 4) + 1):
                query = (("page", str(page)), ("page_size", "500"))
                out.append(
                    Req(
                        t + page,
                        p.subject,
                        "sync",
                        entity,
                        f"/api/{entity}s",
                        query,
                        rng.randint(50, 500),
                    )
                )
    return out


# ── incidents ───────────────────────────────────────────────────────────────────────────


def work_time(rng: random.Random, day: int) -> float:
    while (day % 7) >= 5:
        day += 1
    return START + day * DAY + rng.uniform(9.5, 16.5) * 3600


def chunks(
    rng: random.Random,
    t: float,
    total: int,
    lo: int,
    hi: int,
    gap: tuple[float, float],
    who: Person,
    entity: str = "customer",
    replicas: int = 1,
) -> list[Req]:
    out, i = [], 0
    while total > 0:
        n = min(total, rng.randint(lo, hi))
        out.append(
            Req(
                t,
                who.subject,
                who.role,
                entity,
                f"/api/{entity}s/export",
                (("page_size", str(n)),),
                n,
                i % replicas,
            )
        )
        total -= n
        t += rng.uniform(*gap)
        i += 1
    return out


def crawl(rng: random.Random, t: float, who: Person, replicas: int = 1) -> list[Req]:
    size = rng.choice((50, 100, 200))
    pages = rng.randint(40, 200)
    out = []
    for page in range(1, pages + 1):
        query = (("page", str(page)), ("page_size", str(size)))
        out.append(
            Req(
                t, who.subject, who.role, "customer", "/api/customers", query, size, page % replicas
            )
        )
        t += rng.uniform(3, 20)
    return out


def inject(rng: random.Random, kind: str, who: Person, days: int) -> tuple[list[Req], Incident]:
    day = rng.randint(days - 14, days - 7)
    if kind == "burst":
        reqs = chunks(rng, work_time(rng, day), rng.randint(6000, 12000), 200, 500, (5, 30), who)
    elif kind == "drip":
        reqs = []
        for d in range(day, day + 7):
            if d % 7 < 5:
                t0 = work_time(rng, d) - 3 * 3600
                reqs += chunks(rng, t0, rng.randint(1200, 2500), 40, 100, (120, 600), who)
    elif kind == "crawl":
        reqs = crawl(rng, work_time(rng, day), who)
    elif kind == "split_replicas":
        reqs = crawl(rng, work_time(rng, day), who, replicas=2)
    elif kind == "off_hours":
        night = START + day * DAY + rng.uniform(22.5, 27.5) * 3600
        reqs = chunks(rng, night, rng.randint(800, 3000), 100, 200, (30, 120), who)
    else:  # departing: notice given; bulk pulls on top of normal work for a week
        reqs = []
        for d in range(day, day + 7):
            if d % 7 < 5:
                for _ in range(rng.randint(2, 5)):
                    t = work_time(rng, d)
                    n = rng.randint(100, 400)
                    reqs.append(
                        Req(
                            t,
                            who.subject,
                            who.role,
                            "customer",
                            "/api/customers/export",
                            (("page_size", str(n)),),
                            n,
                        )
                    )
        reqs.sort(key=lambda r: r.time)
        # Leaving lasts to the end of the month: all their alerts from notice on are in scope.
        return reqs, Incident(kind, who.subject, START + day * DAY, START + days * DAY)
    return reqs, Incident(kind, who.subject, reqs[0].time, reqs[-1].time)


# ── replay through two replicas: shared counters, one database, a holds mirror each ─────


class SimClock(EventClock):
    def __init__(self) -> None:
        self.now = START


class SimPeople(ReplayPeople):
    """Directory stand-in: a person is departing from their notice time on."""

    def __init__(self, clock: SimClock) -> None:
        super().__init__()
        self.notice: dict[str, float] = {}
        self._clock = clock

    def is_departing(self, subject: str) -> bool:
        since = self.notice.get(subject)
        return since is not None and self._clock.now >= since


async def run_seed(seed: int, n_people: int, days: int, config: DetectionConfig) -> Outcome:
    rng = random.Random(seed)
    people = make_people(rng, n_people)
    reqs: list[Req] = []
    person_days = 0
    for p in people:
        for day in range(days):
            reqs += bot_day(rng, p, day) if p.role == "sync" else person_day(rng, p, day)
            person_days += 1
    humans = [p for p in people if p.role != "sync"]
    victims = rng.sample(humans, len(INCIDENT_TYPES) * (len(humans) // len(INCIDENT_TYPES)))
    incidents = []
    for i, who in enumerate(victims):
        extra, incident = inject(rng, INCIDENT_TYPES[i % len(INCIDENT_TYPES)], who, days)
        reqs += extra
        incidents.append(incident)
    reqs.sort(key=lambda r: r.time)

    clock = SimClock()
    sim_people = SimPeople(clock)
    for inc in incidents:
        if inc.kind == "departing":
            sim_people.notice[inc.subject] = inc.start
    first_seen: dict[str, tuple[str, float]] = {}  # alert id → (subject, raised at)
    with tempfile.TemporaryDirectory(prefix="wg-scenarios-") as tmp:
        engines = [make_engine(f"sqlite:///{tmp}/wardgate.db") for _ in range(2)]
        try:
            replicas = Replicas(engines, config, sim_people, clock)
            timings = await replay(reqs, replicas, clock, incidents, first_seen)
            await replicas.aclose()
            detectors = {i: replicas.store.get(i)["detector"] for i in first_seen}
        finally:
            for engine in engines:
                engine.dispose()

    false_alerts: dict[str, int] = {}
    by_subject = subjects(incidents)
    for alert_id, (subject, at) in first_seen.items():
        hits = [i for i in by_subject.get(subject, ()) if i.start <= at <= i.end + GRACE_S]
        for inc in hits:
            inc.caught = True
        if not hits:
            detector = detectors[alert_id]
            false_alerts[detector] = false_alerts.get(detector, 0) + 1
    return Outcome(incidents, false_alerts, person_days, timings)


def subjects(incidents: list[Incident]) -> dict[str, list[Incident]]:
    by_subject: dict[str, list[Incident]] = {}
    for inc in incidents:
        by_subject.setdefault(inc.subject, []).append(inc)
    return by_subject


class Replicas:
    """Two guards as two ``wardgate serve`` processes; see the module docstring."""

    def __init__(
        self, engines: list[Engine], config: DetectionConfig, people: SimPeople, clock: SimClock
    ) -> None:
        self.store = AlertStore(engines[0])
        self.store.create_tables()
        counters = MemoryCounters()  # shared: two replicas, one count
        # no background polling: the mirrors are refreshed on the event clock (``due``)
        self.holds = [SharedHolds(engine, None, clock) for engine in engines]
        self.guards = [
            ExportGuard(config, counters, AlertStore(engine), people, clock=clock, holds=holds)
            for engine, holds in zip(engines, self.holds, strict=True)
        ]
        self._refresh_at = [math.inf] * len(engines)

    async def catch_up(self, now: float) -> None:
        """Refresh every mirror whose refresh is due by event time ``now``."""
        for i, due in enumerate(self._refresh_at):
            if due <= now:
                await self.holds[i].refresh()
                self._refresh_at[i] = math.inf

    async def placed(self, replica: int, now: float) -> None:
        """``replica`` placed a hold: store it (as its write loop does within milliseconds);
        the others see it ``CONVERGE_S`` later."""
        await self.guards[replica].drain()
        for i in range(len(self.guards)):
            if i != replica:
                self._refresh_at[i] = min(self._refresh_at[i], now + CONVERGE_S)

    async def aclose(self) -> None:
        for guard in self.guards:
            await guard.aclose()


async def replay(
    reqs: list[Req],
    replicas: Replicas,
    clock: SimClock,
    incidents: list[Incident],
    first_seen: dict[str, tuple[str, float]],
) -> list[float]:
    """Every request through its replica's precheck and observe; returns observe() CPU µs
    of the requests that raised nothing."""
    by_subject = subjects(incidents)
    timings: list[float] = []
    for r in reqs:
        clock.now = r.time
        await replicas.catch_up(r.time)
        guard = replicas.guards[r.replica]
        if (await guard.precheck(r.subject, "crm", r.entity)).refused:
            for inc in by_subject.get(r.subject, ()):
                if inc.start <= r.time <= inc.end:
                    inc.records_refused += r.records
            continue
        o = Observation(
            r.time,
            r.subject,
            (r.role,),
            "crm",
            r.entity,
            "GET",
            r.path,
            dict(r.query),
            200,
            r.records,
        )
        # this thread's CPU only: the alert writes run on other threads meanwhile
        t0 = time.thread_time_ns()
        verdict = await guard.observe(o)
        spent = time.thread_time_ns() - t0
        if verdict.action == "none":
            timings.append(spent / 1000)
        for alert_id in verdict.alert_ids:
            first_seen.setdefault(alert_id, (r.subject, r.time))
        if verdict.refused:
            await replicas.placed(r.replica, r.time)
        else:
            for inc in by_subject.get(r.subject, ()):
                if inc.start <= r.time <= inc.end:
                    inc.records_out += r.records
    return timings


# ── report ──────────────────────────────────────────────────────────────────────────────


def table(title: str, outcomes: list[Outcome]) -> str:
    incidents = [i for o in outcomes for i in o.incidents]
    lines = [
        f"### {title}",
        "",
        "| incident type | alerted | stopped by an earlier hold | recall |",
        "|---|---|---|---|",
    ]
    for kind in (*INCIDENT_TYPES, None):
        of_kind = [i for i in incidents if kind is None or i.kind == kind]
        alerted = sum(i.caught for i in of_kind)
        held = sum(i.stopped and not i.caught for i in of_kind)
        recall = (alerted + held) / len(of_kind)
        name = kind or "**all**"
        lines.append(f"| {name} | {alerted}/{len(of_kind)} | {held} | {recall:.0%} |")
    person_days = sum(o.person_days for o in outcomes)
    by_detector: dict[str, int] = {}
    for o in outcomes:
        for detector, n in o.false_alerts.items():
            by_detector[detector] = by_detector.get(detector, 0) + n
    false_alerts = sum(by_detector.values())
    breakdown = ", ".join(f"{d} {n}" for d, n in sorted(by_detector.items())) or "none"
    bursts = [i.records_out for i in incidents if i.kind == "burst" and i.caught]
    timings = [t for o in outcomes for t in o.observe_us]
    lines += [
        "",
        f"- false alerts: {false_alerts} in {person_days:,} person-days = "
        f"**{1000 * false_alerts / person_days:.2f} per 1,000 person-days** ({breakdown})",
        f"- records a burst got out before it was stopped: max {max(bursts):,} "
        f"(all under 5,000: {'yes' if max(bursts) < 5000 else 'NO'})",
        f"- observe() with no alert: median {statistics.median(timings):.1f} µs, "
        f"p99 {statistics.quantiles(timings, n=100)[98]:.1f} µs over {len(timings):,} calls",
        "",
    ]
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--people", type=int, default=60)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--detection", type=Path, default=Path("policies/detection.yaml"))
    args = parser.parse_args()
    config = load_detection_config(args.detection)
    outcomes = []
    for seed in args.seeds:
        outcome = await run_seed(seed, args.people, args.days, config)
        outcomes.append(outcome)
        print(table(f"seed {seed}", [outcome]))
    print(table(f"all seeds ({', '.join(map(str, args.seeds))})", outcomes))


if __name__ == "__main__":
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main())

"""Benchmark of the route stage: path normalisation, routing and route-template matching.

Run: ``.venv/bin/python bench/routing_bench.py [--patterns 10000] [--rounds 15]``.
Prints the median (and min/max of the round medians) in µs per call. Each round times a
batch of calls over a fixed, shuffled workload, so one number is an average over the batch
and the median is taken over rounds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from gateway.pathnorm import normalise_path
from gateway.routing import Router, RouteTemplates, pattern_matches
from gateway.settings import UpstreamSettings

T = TypeVar("T")

SUBRESOURCES = ["orders", "contacts", "invoices", "notes", "lines", "history", "documents"]


def make_patterns(count: int, rng: random.Random) -> list[str]:
    """Realistic REST patterns: /api/<entity>/*, /api/<entity>/:id, /api/<entity>/:id/<sub>/*…"""
    patterns: set[str] = {"*"}
    entity = 0
    while len(patterns) < count:
        name = f"entity{entity}"
        patterns.update(
            {
                f"/api/{name}/*",
                f"/api/{name}",
                f"/api/{name}/:id",
                f"/v2/{name}/:id/*",
            }
        )
        for sub in rng.sample(SUBRESOURCES, 3):
            patterns.add(f"/api/{name}/:id/{sub}")
            patterns.add(f"/api/{name}/:id/{sub}/:sub_id")
        entity += 1
    return sorted(patterns)[:count]


def make_paths(entities: int, count: int, rng: random.Random) -> list[str]:
    paths = []
    for _ in range(count):
        name = f"entity{rng.randrange(entities)}"
        shape = rng.randrange(4)
        if shape == 0:
            paths.append(f"/api/{name}")
        elif shape == 1:
            paths.append(f"/api/{name}/{rng.randrange(10**6)}")
        elif shape == 2:
            paths.append(f"/api/{name}/{rng.randrange(10**6)}/{rng.choice(SUBRESOURCES)}")
        else:
            paths.append(f"/api/{name}/{rng.randrange(10**6)}/{rng.choice(SUBRESOURCES)}/3")
    return paths


def time_per_call(call: Callable[[T], object], inputs: Sequence[T], rounds: int) -> list[float]:
    """µs per call: one average over the batch per round."""
    results = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for item in inputs:
            call(item)
        results.append((time.perf_counter_ns() - start) / len(inputs) / 1000)
    return results


def report(label: str, samples: list[float]) -> None:
    print(
        f"{label:<58} median {statistics.median(samples):8.2f} µs  "
        f"(min {min(samples):.2f}, max {max(samples):.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patterns", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rng = random.Random(7)

    patterns = make_patterns(args.patterns, rng)
    entities = sum(1 for p in patterns if p.endswith("/*") and p.startswith("/api/"))
    paths = make_paths(entities, 5_000, rng)
    start = time.perf_counter()
    templates = RouteTemplates({"crm": patterns}, {"crm": False})
    build_ms = (time.perf_counter() - start) * 1000
    print(f"{len(patterns)} patterns, trie built in {build_ms:.0f} ms")
    sizes = [len(templates.match("crm", p)) for p in paths]
    print(f"patterns matched per path: median {statistics.median(sizes)}, max {max(sizes)}")
    report(
        f"RouteTemplates.match, {len(patterns)} patterns",
        time_per_call(lambda p: templates.match("crm", p), paths, args.rounds),
    )
    report(
        f"pattern_matches × {len(patterns)} (a full Casbin-style scan)",
        time_per_call(lambda p: [q for q in patterns if pattern_matches(p, q)], paths[:50], 3),
    )

    router = Router(
        {
            "crm": UpstreamSettings.model_validate(
                {"base_url": "http://127.0.0.1:9001", "prefix": "/crm"}
            ),
            "erp": UpstreamSettings.model_validate(
                {
                    "base_url": "http://127.0.0.1:9002/soap",
                    "prefix": "/erp",
                    "case_insensitive": True,
                }
            ),
        }
    )
    plain = [f"/crm{p}".encode() for p in paths]
    messy = [f"/crm/./x/..{p}/".replace("/api/", "/%61pi//").encode() for p in paths]
    folded = [f"/ERP{p}".encode() for p in paths]
    report(
        "normalise_path, plain ASCII (fast path)", time_per_call(normalise_path, plain, args.rounds)
    )
    report(
        "normalise_path, with %XX, '.', '..', '//' (full rules)",
        time_per_call(normalise_path, messy, args.rounds),
    )
    report("Router.resolve, plain ASCII", time_per_call(router.resolve, plain, args.rounds))
    report("Router.resolve, full rules", time_per_call(router.resolve, messy, args.rounds))
    report(
        "Router.resolve, case-insensitive upstream",
        time_per_call(router.resolve, folded, args.rounds),
    )


if __name__ == "__main__":
    main()

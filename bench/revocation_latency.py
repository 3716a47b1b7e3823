"""Revocation latency through a real ``wardgate serve``: deprovisioning call → first refusal.

    .venv/bin/python -m bench.revocation_latency [--trials 100]

Starts the demo CRM, ERP and IdP on loopback and one gateway process (SQLite, a file
directory of 2 × ``trials`` salespeople synced in). Each trial takes a person whose token
has just been served (200, so the token is verified and cached), revokes them through the
admin listener — a signed HR ``terminated`` event or a SCIM ``PATCH active=false`` — and
then sends the same request again until it is refused (401). Measured: from the moment the
deprovisioning call returns to the first refused answer, and the whole round trip from
sending the call. Prints a markdown table (p50, p95, max) and writes it into BENCHMARKS.md
between the ``<!-- bench:revocation -->`` markers.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import yaml

from bench.run import write_section
from gateway.demo.crm import make_crm_app
from gateway.demo.erp import make_erp_app
from gateway.demo.idp import DemoIdP, make_idp_app
from gateway.demo.recorder import Recorder
from tests.e2e.conftest import SCIM_TOKEN, Gateway, Upstreams, launch_gateway
from tests.e2e.helpers import hr_event, sign_hr
from tests.support.servers import ServerThread

PROBE = "/crm/api/customers?page=1&page_size=1"
GIVE_UP_S = 5.0
SCIM_DEACTIVATE = orjson.dumps(
    {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
)


def write_directory(path: Path, subjects: list[str]) -> None:
    """A file directory in which every subject is an active salesperson."""
    path.write_text(
        yaml.safe_dump(
            {
                "role_rules": [{"group": "crm-sales", "role": "sales"}],
                "groups": {"crm-sales": {"members": subjects}},
                "people": [{"subject": s, "department": "sales"} for s in subjects],
            }
        )
    )


def hr_terminate(admin: httpx.Client, subject: str) -> httpx.Response:
    body = hr_event("terminated", subject)
    headers = {"Content-Type": "application/json", "X-Wardgate-Signature": sign_hr(body)}
    return admin.post("/hr/events", content=body, headers=headers)


def scim_deactivate(admin: httpx.Client, subject: str) -> httpx.Response:
    headers = {"Content-Type": "application/scim+json", "Authorization": f"Bearer {SCIM_TOKEN}"}
    return admin.patch(f"/scim/v2/Users/{subject}", content=SCIM_DEACTIVATE, headers=headers)


Door = Callable[[httpx.Client, str], httpx.Response]


@dataclass(frozen=True)
class Trial:
    after_ms: float  # from the deprovisioning call's return to the first refused answer
    whole_ms: float  # from sending the call to the first refused answer
    probes: int  # requests sent after the call returned, the refused one included


def trial(gw: Gateway, proxy: httpx.Client, admin: httpx.Client, door: Door, subject: str) -> Trial:
    """Revoke ``subject`` through ``door`` and time it until the proxy refuses them."""
    auth = {"Authorization": f"Bearer {gw.token(subject)}"}
    served = proxy.get(PROBE, headers=auth)
    if served.status_code != 200:
        raise RuntimeError(f"{subject} was not served before revocation: {served.status_code}")
    sent = time.perf_counter()
    answer = door(admin, subject)
    returned = time.perf_counter()
    if answer.status_code != 200:
        raise RuntimeError(f"revoking {subject} failed: {answer.status_code} {answer.text}")
    probes = 1
    while proxy.get(PROBE, headers=auth).status_code != 401:
        if time.perf_counter() - returned > GIVE_UP_S:
            raise RuntimeError(f"{subject} still served {GIVE_UP_S} s after revocation")
        probes += 1
    refused = time.perf_counter()
    return Trial((refused - returned) * 1000, (refused - sent) * 1000, probes)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def table(results: dict[str, list[Trial]], trials: int) -> str:
    today = datetime.now(UTC).date().isoformat()
    lines = [
        f"Deprovisioning call → first refused request through one `wardgate serve` (SQLite), "
        f"{trials} trials per door, each a different person with a cached token ({today}).",
        "",
        "| door | call returned → refused: p50 ms | p95 ms | max ms "
        "| call sent → refused: p50 ms | max ms | refused at the first request after |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for door, rows in results.items():
        after = [r.after_ms for r in rows]
        whole = [r.whole_ms for r in rows]
        first = sum(r.probes == 1 for r in rows)
        lines.append(
            f"| {door} | {statistics.median(after):.2f} | {quantile(after, 0.95):.2f} | "
            f"{max(after):.2f} | {statistics.median(whole):.2f} | {max(whole):.2f} "
            f"| {first}/{len(rows)} |"
        )
    return "\n".join(lines)


def run(trials: int) -> str:
    doors: dict[str, Door] = {
        "HR webhook (terminated)": hr_terminate,
        "SCIM PATCH active=false": scim_deactivate,
    }
    people = {door: [f"bench-{n}-{i:04d}" for i in range(trials)] for n, door in enumerate(doors)}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        write_directory(folder / "directory.yaml", [s for group in people.values() for s in group])
        recorder = Recorder()
        idps: list[DemoIdP] = []

        def idp_app(url: str):
            idps.append(DemoIdP(url))
            return make_idp_app(idps[0])

        servers = [
            stack.enter_context(ServerThread(lambda: make_crm_app(recorder))),
            stack.enter_context(ServerThread(lambda: make_erp_app(recorder))),
            stack.enter_context(ServerThread(idp_app)),
        ]
        ups = Upstreams(servers[0].url, servers[1].url, servers[2].url, idps[0], recorder)
        overrides = {"log": {"level": "warning"}}
        gw = stack.enter_context(
            launch_gateway(
                folder / "gw", ups, overrides=overrides, directory=folder / "directory.yaml"
            )
        )
        proxy = stack.enter_context(httpx.Client(base_url=gw.url, timeout=10))
        admin = stack.enter_context(httpx.Client(base_url=gw.admin_url, timeout=10))
        results = {
            name: [trial(gw, proxy, admin, door, s) for s in people[name]]
            for name, door in doors.items()
        }
    return table(results, trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args()
    text = run(args.trials)
    print(text)
    write_section("revocation", text)


if __name__ == "__main__":
    main()

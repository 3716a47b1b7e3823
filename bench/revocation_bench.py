"""How long from an HR / SCIM deprovisioning call until another instance refuses the person.

Instance A serves the HR and SCIM routers on a real uvicorn listener on loopback; instance
B is a second ``PeopleStatus`` with its own engine on the same PostgreSQL database (a
throwaway schema) and Redis. Each trial revokes a fresh person through A over HTTP and
measures until ``B.refusal`` says ``person_revoked``. Prints p50 / p95 / max per door.

    .venv/bin/python bench/revocation_bench.py [--trials 100] [--no-redis]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import statistics
import time
import uuid
from types import SimpleNamespace

import httpx
import orjson
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from audit.store import make_engine
from gateway.directory.hr import router as hr_router
from gateway.directory.roles import RoleStore
from gateway.directory.scim import router as scim_router
from gateway.directory.status import PeopleStatus
from gateway.directory.store import init_directory_db
from gateway.settings import settings_from_dict

PG = "postgresql+psycopg://root@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
HR_SECRET, SCIM_TOKEN = "bench-hr-secret", "bench-scim-token"


def hr_request(subject: str) -> tuple[bytes, dict[str, str]]:
    raw = orjson.dumps({"id": uuid.uuid4().hex, "type": "terminated", "subject": subject})
    t = int(time.time())
    mac = hmac.new(HR_SECRET.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    return raw, {"x-wardgate-signature": f"t={t},v1={mac}", "content-type": "application/json"}


async def until_refused(b: PeopleStatus, subject: str, started: float) -> float:
    while b.refusal(subject, None) != "person_revoked":
        if time.perf_counter() - started > 5:
            raise RuntimeError(f"{subject} not refused by instance B within 5 s")
        await asyncio.sleep(0.0005)
    return (time.perf_counter() - started) * 1000


async def trial(
    client: httpx.AsyncClient, b: PeopleStatus, door: str, subject: str
) -> tuple[float, float]:
    started = time.perf_counter()
    if door == "hr":
        raw, headers = hr_request(subject)
        response = await client.post("/hr/events", content=raw, headers=headers)
    else:
        response = await client.delete(
            f"/scim/v2/Users/{subject}", headers={"authorization": f"Bearer {SCIM_TOKEN}"}
        )
    answered = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return answered, await until_refused(b, subject, started)


def summary(name: str, values: list[float]) -> str:
    p50, p95 = statistics.median(values), statistics.quantiles(values, n=20, method="inclusive")[18]
    return f"{name:<34} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   max {max(values):6.1f} ms"


async def main(trials: int, use_redis: bool) -> None:
    os.environ["WARDGATE_HR_SECRET"], os.environ["WARDGATE_SCIM_TOKEN"] = HR_SECRET, SCIM_TOKEN
    schema = f"wg_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG}?options=-csearch_path%3D{schema}"
    engine_a, engine_b = make_engine(url), make_engine(url)
    redis_url = REDIS if use_redis else None
    try:
        init_directory_db(engine_a)
        roles = RoleStore(engine_a)
        for door in ("hr", "scim"):
            for i in range(trials):
                roles.set_roles(f"{door}{i:03}", {("sales", "*")}, cause="bench")
        a = PeopleStatus(engine_a, redis_url)
        b = PeopleStatus(engine_b, redis_url)
        await a.start()
        await b.start()
        app = FastAPI()
        app.include_router(hr_router)
        app.include_router(scim_router)
        settings = settings_from_dict(
            {"upstreams": {"crm": {"base_url": "http://127.0.0.1:9", "prefix": "/crm"}}}
        )
        app.state.services = SimpleNamespace(settings=settings, people=a, engine=engine_a)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for "started"
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        fan_out = "on" if use_redis else "off (polling every 250 ms)"
        print(f"{trials} trials per door, Redis fan-out {fan_out}")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for door in ("hr", "scim"):
                answered, refused = [], []
                for i in range(trials):
                    ms_answer, ms_refused = await trial(client, b, door, f"{door}{i:03}")
                    answered.append(ms_answer)
                    refused.append(ms_refused)
                print(summary(f"{door}: call answered", answered))
                print(summary(f"{door}: refused by other instance", refused))
        server.should_exit = True
        await serving
        await a.close()
        await b.close()
    finally:
        engine_a.dispose()
        engine_b.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.trials, not args.no_redis))

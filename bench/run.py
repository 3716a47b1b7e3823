"""The proxy benchmark: direct vs nginx vs Wardgate, same upstream, same load, same run.

    .venv/bin/python -m bench.run [--seconds 10] [--rounds 3] [--connections 32] [--no-write]

Starts the demo CRM as the upstream (its own process), nginx from Debian as the reference
proxy, and ``wardgate serve`` with a 10,000-rule policy and a verified JWT per request; drives
each with wrk; reads each proxy's CPU time from /proc before and after. Reports medians over
the rounds (these machines are noisy) and writes the table into BENCHMARKS.md between the
``<!-- bench:proxy -->`` markers (unless ``--no-write``: print only, for iterating).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from gateway.demo.idp import DemoIdP, make_idp_app
from tests.support.servers import ServerThread, free_port

REPO = Path(__file__).resolve().parent.parent
PATH = "/api/small"  # a ~2 KB JSON document
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float | None  # proxy CPU per request


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its live children (nginx workers), from /proc."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(int(entry.name))
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def wait_http(url: str, timeout: float = 20.0) -> None:
    stop = time.monotonic() + timeout
    while time.monotonic() < stop:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise TimeoutError(url)


@contextmanager
def process(args: list[str], **kw: object) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wrk(
    url: str, seconds: int, connections: int, headers: dict[str, str]
) -> tuple[float, float, float, int]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} non-2xx responses under load:\n{out}")
    return rps, p50, p99, total


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def measure(
    name: str, url: str, pid: int | None, args: argparse.Namespace, headers: dict[str, str]
) -> Result:
    wrk(url, 2, args.connections, headers)  # warm-up: pools, caches, JIT-free but lazy imports
    before = cpu_seconds(pid) if pid else 0.0
    rps, p50, p99, total = wrk(url, args.seconds, args.connections, headers)
    cpu = (cpu_seconds(pid) - before) / total * 1e6 if pid else None
    return Result(name, rps, p50, p99, cpu)


def write_policy(folder: Path, rules: int) -> None:
    """The demo policy plus generated rules: 1,000 roles x 10 routes = 10,000 lines."""
    shutil.copytree(REPO / "policies", folder, ignore=shutil.ignore_patterns("tests"))
    lines = [
        f"p, role{r:04d}, crm, /api/area{a}/:id, GET, allow"
        for r in range(rules // 10)
        for a in range(10)
    ]
    lines.append("p, bench, crm, /api/small, GET, allow")
    with (folder / "policy.csv").open("a") as f:
        f.write("\n".join(lines) + "\n")


def nginx_conf(folder: Path, port: int, upstream_port: int) -> Path:
    conf = folder / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  upstream crm {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://crm; proxy_http_version 1.1;
                 proxy_set_header Connection ""; }}
  }}
}}
""")
    return conf


def wardgate_config(
    folder: Path, port: int, upstream: str, idp: str, durability: str, audit: bool, db: str | None
) -> Path:
    """Settings for one run; ``db`` None = a fresh SQLite file (the embedded default)."""
    config = {
        "listen": {
            "proxy_host": "127.0.0.1",
            "proxy_port": port,
            "admin_host": "127.0.0.1",
            "admin_port": free_port(),
        },
        "upstreams": {
            "crm": {"base_url": upstream, "prefix": "/crm"},
            "erp": {"base_url": upstream, "prefix": "/erp", "kind": "soap"},  # unused
        },
        "issuers": [
            {
                "issuer": idp,
                "jwks_url": f"{idp}/jwks.json",
                "audience": "bench",
                "trust_role_claims": True,
            }
        ],
        "policy": {"dir": str(folder / "policies")},
        "database_url": db or f"sqlite:///{folder}/bench-{durability}-{audit}-{port}.db",
        "audit": {"enabled": audit, "durability": durability, "spool_dir": str(folder / "spool")},
        "log": {"format": "json", "level": "warning"},
    }
    path = folder / f"wardgate-{durability}-{audit}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_round(args: argparse.Namespace, folder: Path, idp: DemoIdP, idp_url: str) -> list[Result]:
    up_port = free_port()
    results = []
    with process([sys.executable, "-m", "bench.upstream", str(up_port)], cwd=REPO) as up:
        wait_http(f"http://127.0.0.1:{up_port}{PATH}")
        results.append(measure("direct", f"http://127.0.0.1:{up_port}{PATH}", None, args, {}))
        ng_port = free_port()
        conf = nginx_conf(folder, ng_port, up_port)
        with process(["nginx", "-c", str(conf), "-p", str(folder)]) as ng:
            wait_http(f"http://127.0.0.1:{ng_port}{PATH}")
            results.append(measure("nginx", f"http://127.0.0.1:{ng_port}{PATH}", ng.pid, args, {}))
        token = idp.issue("bench-user", audience="bench", ttl_s=3600, extra={"roles": ["bench"]})
        auth = {"Authorization": f"Bearer {token}"}
        for label, durability, audit, db in (
            ("wardgate (audit off)", "fast", False, None),
            ("wardgate (audit fast, SQLite)", "fast", True, None),
            ("wardgate (audit strict, SQLite)", "strict", True, None),
            ("wardgate (audit fast, PostgreSQL)", "fast", True, args.postgres),
            ("wardgate (audit strict, PostgreSQL)", "strict", True, args.postgres),
        ):
            port = free_port()
            cfg = wardgate_config(
                folder, port, f"http://127.0.0.1:{up_port}", idp_url, durability, audit, db
            )
            wardgate = str(Path(sys.executable).parent / "wardgate")
            with process([wardgate, "serve", "--config", str(cfg)], cwd=REPO) as gw:
                wait_http(f"http://127.0.0.1:{port}/healthz")
                url = f"http://127.0.0.1:{port}/crm{PATH}"
                check = httpx.get(url, headers=auth)
                if check.status_code != 200:
                    raise RuntimeError(f"wardgate refused the benchmark request: {check.text}")
                results.append(measure(label, url, gw.pid, args, auth))
        _ = up
    return results


def table(rounds: list[list[Result]]) -> str:
    names = [r.name for r in rounds[0]]
    med = {
        n: Result(
            n,
            *(
                statistics.median(
                    getattr(r, f)
                    for rr in rounds
                    for r in rr
                    if r.name == n and getattr(r, f) is not None
                )
                if any(getattr(r, f) is not None for rr in rounds for r in rr if r.name == n)
                else None
                for f in ("rps", "p50_ms", "p99_ms", "cpu_us")
            ),
        )
        for n in names
    }
    direct, nginx = med["direct"], med["nginx"]
    lines = [
        "| target | req/s | p50 ms | p99 ms | proxy CPU µs/req | req/s vs direct | CPU vs nginx |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n in names:
        r = med[n]
        cpu = f"{r.cpu_us:.0f}" if r.cpu_us is not None else "—"
        vs_ng = f"{r.cpu_us / nginx.cpu_us:.1f}×" if r.cpu_us and nginx.cpu_us else "—"
        lines.append(
            f"| {n} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {cpu} | "
            f"{r.rps / direct.rps:.2f} | {vs_ng} |"
        )
    return "\n".join(lines)


def write_section(marker: str, text: str) -> None:
    path = REPO / "BENCHMARKS.md"
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    start, end = f"<!-- bench:{marker} -->", f"<!-- /bench:{marker} -->"
    block = f"{start}\n{text}\n{end}"
    if start in doc:
        doc = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, doc, flags=re.S)
    else:
        doc += "\n" + block + "\n"
    path.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument(
        "--postgres",
        default="postgresql://root@127.0.0.1:5432/test",
        help="database for the PostgreSQL rows (the audit tables are created if missing)",
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone"
    )
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: apt-get install {tool}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_policy(folder / "policies", args.rules)
        holder: list[DemoIdP] = []

        def idp_app(url: str):
            holder.append(DemoIdP(url))
            return make_idp_app(holder[0])

        with ServerThread(idp_app) as idp_server:
            rounds = []
            for i in range(args.rounds):
                print(f"round {i + 1}/{args.rounds}", file=sys.stderr, flush=True)
                rounds.append(run_round(args, folder, holder[0], idp_server.url))
    text = (
        f"{args.rules:,} policy rules, 2 KB JSON GET, verified JWT, wrk -t2 "
        f"-c{args.connections} -d{args.seconds}s, median of {args.rounds} rounds "
        f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores).\n\n" + table(rounds)
    )
    print(text)
    if not args.no_write:
        write_section("proxy", text)


if __name__ == "__main__":
    main()

"""End to end: the real ``wardgate serve`` process in front of the real demo upstreams.

One gateway process per test session (starting one costs about a second). It runs the demo
policies plus a few test-only rules for a ``tester`` role, on SQLite in a temp folder, with
the people of ``tests/e2e/directory.yaml`` synced in before it starts.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.demo.crm import make_crm_app
from gateway.demo.erp import make_erp_app
from gateway.demo.idp import DemoIdP, make_idp_app
from gateway.demo.recorder import Recorder
from tests.support.servers import ServerThread, free_port

HERE = Path(__file__).parent
REPO = HERE.parent.parent
AUDIENCE = "wardgate"
HR_SECRET = "e2e-hr-secret-" + "x" * 20
SCIM_TOKEN = "e2e-scim-token-" + "y" * 20
TEST_RULES = """
p, tester, crm, /echo, *, allow
p, tester, crm, /slow, GET, allow
p, tester, crm, /stream, GET, allow
p, tester, crm, /api/small, GET, allow
p, tester, crm, /gzip, GET, allow
p, tester, down, *, *, allow
p, tester, crm, /admin/*, *, deny
"""


@dataclass
class Gateway:
    url: str
    admin_url: str
    idp: DemoIdP
    recorder: Recorder
    config: Path
    db_url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def token(self, subject: str, **kw: object) -> str:
        return self.idp.issue(subject, audience=AUDIENCE, **kw)  # type: ignore[arg-type]

    def auth(self, subject: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject)}"}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(sys.executable).parent / "wardgate"), *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=REPO,
            timeout=60,
        )


def _wait_http(
    url: str, proc: subprocess.Popen[bytes], log: Path, deadline_s: float = 20.0
) -> None:
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        if proc.poll() is not None:
            raise RuntimeError(
                f"wardgate exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {deadline_s} s")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends: nobody listens


@dataclass
class Upstreams:
    """The demo CRM, ERP and IdP on loopback, shared by every gateway of the session."""

    crm: str
    erp: str
    idp_url: str
    idp: DemoIdP
    recorder: Recorder


@pytest.fixture(scope="session")
def upstreams() -> Iterator[Upstreams]:
    recorder = Recorder()
    idps: list[DemoIdP] = []

    def idp_app(url: str):
        idps.append(DemoIdP(url))
        return make_idp_app(idps[0])

    servers = [
        ServerThread(lambda: make_crm_app(recorder)).start(),
        ServerThread(lambda: make_erp_app(recorder)).start(),
        ServerThread(idp_app).start(),
    ]
    try:
        yield Upstreams(servers[0].url, servers[1].url, servers[2].url, idps[0], recorder)
    finally:
        for server in servers:
            server.stop()


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            deep_merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


@contextmanager
def launch_gateway(
    tmp: Path,
    ups: Upstreams,
    *,
    overrides: dict[str, Any] | None = None,
    extra_rules: str = TEST_RULES,
    directory: Path = HERE / "directory.yaml",
    sync: bool = True,
) -> Iterator[Gateway]:
    """Start ``wardgate serve`` with the demo policies (+ ``extra_rules``) in ``tmp``.

    ``overrides`` is merged into the settings (e.g. a PostgreSQL ``database_url``, a
    ``redis_url``, or ``policy.dir`` of a policy folder the test prepared). Several gateways
    may run at once; each gets its own ports, spool and log (``tmp/gateway.log``).
    """
    tmp.mkdir(parents=True, exist_ok=True)
    policies = tmp / "policies"
    if not policies.exists():
        shutil.copytree(REPO / "policies", policies, ignore=shutil.ignore_patterns("tests"))
        with (policies / "policy.csv").open("a") as rules:
            rules.write(extra_rules)
    proxy_port, admin_port = free_port(), free_port()
    config = {
        "listen": {
            "proxy_host": "127.0.0.1",
            "proxy_port": proxy_port,
            "admin_host": "127.0.0.1",
            "admin_port": admin_port,
        },
        "upstreams": {
            "crm": {"base_url": ups.crm, "prefix": "/crm", "timeout_s": 1.5},
            "erp": {"base_url": ups.erp, "prefix": "/erp", "kind": "soap"},
            "down": {
                "base_url": f"http://127.0.0.1:{_closed_port()}",
                "prefix": "/down",
                "connect_timeout_s": 1,
            },
        },
        "issuers": [
            {
                "issuer": ups.idp_url,
                "jwks_url": f"{ups.idp_url}/jwks.json",
                "audience": AUDIENCE,
                "algorithms": ["RS256"],
            }
        ],
        "policy": {"dir": str(policies)},
        "limits": {"max_request_body": 64 * 1024, "max_filtered_response": 8 * 1024 * 1024},
        "database_url": f"sqlite:///{tmp}/e2e.db",
        "audit": {"spool_dir": str(tmp / "spool"), "instance_id": f"e2e-{tmp.name}"},
        "directory": {"source": "file", "file": str(directory)},
        "log": {"format": "json", "level": "info"},
    }
    config = deep_merge(config, overrides or {})
    config_path = tmp / "wardgate.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "WARDGATE_HR_SECRET": HR_SECRET,
        "WARDGATE_SCIM_TOKEN": SCIM_TOKEN,
        "WARDGATE_FIELD_HASH_KEY": "e2e-field-hash-key-0123456789",
    }
    gw = Gateway(
        f"http://127.0.0.1:{proxy_port}",
        f"http://127.0.0.1:{admin_port}",
        ups.idp,
        ups.recorder,
        config_path,
        config["database_url"],
        env,
    )
    if sync:
        synced = gw.cli("sync", "--config", str(config_path))
        assert synced.returncode == 0, synced.stderr + synced.stdout
    log_path = tmp / "gateway.log"
    with log_path.open("a") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "wardgate"), "serve", "--config", str(config_path)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        gw.process = proc
        try:
            _wait_http(f"{gw.url}/healthz", proc, log_path)
            _wait_http(f"{gw.admin_url}/healthz", proc, log_path)
            yield gw
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstreams: Upstreams) -> Iterator[Gateway]:
    """The session's shared gateway: demo policies + TEST_RULES, SQLite, file directory."""
    with launch_gateway(tmp_path_factory.mktemp("e2e"), upstreams) as gw:
        yield gw


@pytest.fixture()
def client(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=10.0) as c:
        yield c


def raw_request(gateway: Gateway, request: bytes) -> tuple[int, bytes]:
    """Send bytes exactly as given (no client-side normalisation); return status and body."""
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body

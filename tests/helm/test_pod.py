"""The pods as the chart wires them, run for real on loopback: hook Job, then the gateway.

The rendered ConfigMap becomes wardgate.yaml, the rendered policies ConfigMap becomes the
policies folder, the rendered Secret becomes the environment, and the containers' own
``args`` run against PostgreSQL in a schema of their own. Only what a laptop cannot give
(ports 8080/8081 on all interfaces, the absolute volume paths) is moved with the gateway's
documented ``WARDGATE_…`` overrides. The probes, the metrics path and the shutdown on SIGTERM
are then exercised exactly as the kubelet and Prometheus would.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from audit.store import make_engine
from tests.helm.chart import REPO, Helm, find, gateway_workload
from tests.helm.test_config import pod_environment
from tests.support.servers import free_port

pytestmark = pytest.mark.postgres

PG_URL = "postgresql://root@127.0.0.1:5432/test"
# the image's `wardgate` entry point, from this checkout
WARDGATE = [sys.executable, "-c", "from gateway.cli import main; main()"]
START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Pod:
    """A rendered release laid out on disk like the volumes of a pod."""

    manifests: list[dict[str, Any]]
    config: Path
    env: dict[str, str]
    proxy: str
    admin: str

    def run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*WARDGATE, *args],
            env=self.env,
            cwd=self.config.parent,
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.fixture
def pg_schema() -> Iterator[str]:
    schema = f"wg_helm_{secrets.token_hex(6)}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield schema
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def pod(helm: Helm, pg_schema: str, tmp_path: Path) -> Pod:
    policy_files = sorted(p for p in (REPO / "policies").iterdir() if p.is_file())
    args = ["--set", "config.upstreams.crm.base_url=http://127.0.0.1:9"]
    args += ["--set", "config.upstreams.crm.prefix=/crm"]
    args += ["--set", "config.upstreams.erp.base_url=http://127.0.0.1:9"]
    args += ["--set", "config.upstreams.erp.prefix=/erp", "--set", "config.upstreams.erp.kind=soap"]
    args += ["--set", f"secrets.databaseUrl={PG_URL}?options=-csearch_path%3D{pg_schema}"]
    args += ["--set", "metrics.serviceMonitor.enabled=true"]
    for path in policy_files:
        args += ["--set-file", f"policies.files.{path.name.replace('.', chr(92) + '.')}={path}"]
    manifests = helm.render(*args)

    config = tmp_path / "wardgate.yaml"
    config.write_text(find(manifests, "ConfigMap", "rel-wardgate")["data"]["wardgate.yaml"])
    policies = tmp_path / "policies"
    policies.mkdir()
    for name, content in find(manifests, "ConfigMap", "rel-wardgate-policies")["data"].items():
        (policies / name).write_text(content)
    (tmp_path / "spool").mkdir()
    proxy_port, admin_port = free_port(), free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        **pod_environment(manifests),
        # what the pod gets from its volumes and ports, moved onto this machine
        "WARDGATE_POLICY__DIR": str(policies),
        "WARDGATE_AUDIT__SPOOL_DIR": str(tmp_path / "spool"),
        "WARDGATE_LISTEN__PROXY_HOST": "127.0.0.1",
        "WARDGATE_LISTEN__PROXY_PORT": str(proxy_port),
        "WARDGATE_LISTEN__ADMIN_HOST": "127.0.0.1",
        "WARDGATE_LISTEN__ADMIN_PORT": str(admin_port),
    }
    return Pod(
        manifests,
        config,
        env,
        f"http://127.0.0.1:{proxy_port}",
        f"http://127.0.0.1:{admin_port}",
    )


def container_args(manifest: dict[str, Any], config: Path) -> list[str]:
    """The container's args, with the mounted config path replaced by the local file."""
    args = manifest["spec"]["template"]["spec"]["containers"][0]["args"]
    return [str(config) if a == "/etc/wardgate/wardgate.yaml" else a for a in args]


def probe_path(container: dict[str, Any], probe: str) -> str:
    assert container[probe]["httpGet"]["port"] == "proxy"
    return str(container[probe]["httpGet"]["path"])


def test_hook_then_gateway_pass_their_probes_and_stop_on_sigterm(pod: Pod) -> None:
    job = find(pod.manifests, "Job", "rel-wardgate-migrations")
    migrated = pod.run(container_args(job, pod.config))
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    workload = gateway_workload(pod.manifests)
    container = workload["spec"]["template"]["spec"]["containers"][0]
    log = pod.config.with_name("gateway.log")
    with log.open("w") as out:
        gateway = subprocess.Popen(
            [*WARDGATE, *container_args(workload, pod.config)],
            env=pod.env,
            cwd=pod.config.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(timeout=2.0) as http:
            started = False
            while not started and time.monotonic() < deadline and gateway.poll() is None:
                try:
                    started = http.get(pod.proxy + probe_path(container, "startupProbe")).is_success
                except httpx.TransportError:
                    time.sleep(0.1)
            assert started, f"startup probe never passed:\n{stop(gateway, log)}"
            alive = http.get(pod.proxy + probe_path(container, "livenessProbe"))
            assert alive.status_code == 200
            ready = http.get(pod.proxy + probe_path(container, "readinessProbe"))
            assert ready.status_code == 200, ready.text
            monitor = find(pod.manifests, "ServiceMonitor")["spec"]["endpoints"][0]
            metrics = http.get(pod.admin + monitor["path"])
            assert metrics.status_code == 200
            assert "# TYPE" in metrics.text
        grace = workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        began = time.monotonic()
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=grace)
        assert time.monotonic() - began < grace
        assert gateway.returncode == 0, log.read_text()
    finally:
        stop(gateway, log)


def stop(process: subprocess.Popen[bytes], log: Path) -> str:
    """Stop the process if it still runs; return what it printed."""
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)
    return log.read_text()

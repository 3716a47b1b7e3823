"""The pods as the chart wires them, run for real on loopback: hook Job, then the gateway.

The rendered ConfigMap becomes wardgate.yaml, the rendered policies ConfigMap becomes the
policies folder, the rendered Secret becomes the environment, and the containers' own
``args`` run against PostgreSQL in a schema of their own. Only what a laptop cannot give
(ports 8080/8081 on all interfaces, the absolute volume paths) is moved with the gateway's
documented ``WARDGATE_…`` overrides. The probes, the metrics path and the shutdown on SIGTERM
are then exercised exactly as the kubelet and Prometheus would.
"""

from __future__ import annotations

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
from sqlalchemy import select

from audit.store import make_engine
from gateway.directory.store import Person
from tests.helm.chart import REPO, Helm, find, gateway_workload, pod_environment
from tests.support.postgres import schema_url, temporary_schema
from tests.support.servers import free_port

pytestmark = pytest.mark.postgres

# the image's `wardgate` entry point, from this checkout
WARDGATE = [sys.executable, "-c", "from gateway.cli import main; main()"]
# a ceiling for a loaded CI machine; a quiet one starts in a few seconds
START_TIMEOUT_S = 60.0
KUBERNETES_DEFAULT_GRACE_S = 30
MOUNTED_CONFIG = "/etc/wardgate/wardgate.yaml"
# The file directory ships in the policies ConfigMap, as a small shop would deploy it.
DIRECTORY_FILE = "/etc/wardgate/policies/directory.yaml"


@dataclass(frozen=True)
class Pod:
    """A rendered release laid out on disk like the volumes of a pod."""

    manifests: list[dict[str, Any]]
    config: Path
    env: dict[str, str]
    proxy: str
    admin: str


@pytest.fixture(scope="module")
def pg_schema() -> Iterator[str]:
    with temporary_schema("wg_helm") as schema:
        yield schema


@pytest.fixture(scope="module")
def pod(helm: Helm, pg_schema: str, tmp_path_factory: pytest.TempPathFactory) -> Pod:
    """The release laid out on disk, its database migrated by the hook Job's container."""
    tmp_path = tmp_path_factory.mktemp("pod")
    policy_files = sorted(p for p in (REPO / "policies").iterdir() if p.is_file())
    args = ["--set", "config.upstreams.crm.base_url=http://127.0.0.1:9"]
    args += ["--set", "config.upstreams.crm.prefix=/crm"]
    args += ["--set", "config.upstreams.erp.base_url=http://127.0.0.1:9"]
    args += ["--set", "config.upstreams.erp.prefix=/erp", "--set", "config.upstreams.erp.kind=soap"]
    args += ["--set", f"secrets.databaseUrl={schema_url(pg_schema)}"]
    args += ["--set", "metrics.serviceMonitor.enabled=true"]
    args += ["--set", "config.directory.source=file"]
    args += ["--set", f"config.directory.file={DIRECTORY_FILE}"]
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
        "WARDGATE_DIRECTORY__FILE": str(policies / Path(DIRECTORY_FILE).name),
        "WARDGATE_AUDIT__SPOOL_DIR": str(tmp_path / "spool"),
        "WARDGATE_LISTEN__PROXY_HOST": "127.0.0.1",
        "WARDGATE_LISTEN__PROXY_PORT": str(proxy_port),
        "WARDGATE_LISTEN__ADMIN_HOST": "127.0.0.1",
        "WARDGATE_LISTEN__ADMIN_PORT": str(admin_port),
    }
    pod = Pod(
        manifests,
        config,
        env,
        f"http://127.0.0.1:{proxy_port}",
        f"http://127.0.0.1:{admin_port}",
    )
    job = Container(pod, find(manifests, "Job", "rel-wardgate-migrations"))
    try:
        job.process.wait(timeout=START_TIMEOUT_S)
    finally:
        printed = job.output()  # also kills it if the wait timed out
    assert job.process.returncode == 0, printed
    return pod


class Container:
    """One container of a rendered workload, run as a local process with the pod's env."""

    def __init__(self, pod: Pod, manifest: dict[str, Any]) -> None:
        self.spec = manifest["spec"]["template"]["spec"]
        self.container = self.spec["containers"][0]
        self.log = pod.config.with_name(f"{manifest['metadata']['name']}.log")
        args = [str(pod.config) if a == MOUNTED_CONFIG else a for a in self.container["args"]]
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [*WARDGATE, *args], env=pod.env, cwd=pod.config.parent, stdout=out, stderr=out
            )

    def probe_path(self, probe: str) -> str:
        assert self.container[probe]["httpGet"]["port"] == "proxy"
        return str(self.container[probe]["httpGet"]["path"])

    def sigterm_stops_within_grace(self, *, clean_exit: bool) -> None:
        """What the kubelet does on pod deletion: SIGTERM, then SIGKILL after the grace.

        ``clean_exit``: the process must handle SIGTERM and exit 0 (the gateway flushes
        its audit batch); otherwise ending by the signal itself is accepted too.
        """
        grace = self.spec.get("terminationGracePeriodSeconds", KUBERNETES_DEFAULT_GRACE_S)
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=grace)
        accepted = {0} if clean_exit else {0, -signal.SIGTERM}
        assert self.process.returncode in accepted, self.output()

    def output(self) -> str:
        """Stop the process if it still runs; return what it printed."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        return self.log.read_text()


def test_gateway_passes_its_probes_and_stops_on_sigterm(pod: Pod) -> None:
    gateway = Container(pod, gateway_workload(pod.manifests))
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(timeout=2.0) as http:
            started = False
            while not started and time.monotonic() < deadline and gateway.process.poll() is None:
                try:
                    started = http.get(pod.proxy + gateway.probe_path("startupProbe")).is_success
                except httpx.TransportError:
                    time.sleep(0.1)
            assert started, f"startup probe never passed:\n{gateway.output()}"
            alive = http.get(pod.proxy + gateway.probe_path("livenessProbe"))
            assert alive.status_code == 200
            ready = http.get(pod.proxy + gateway.probe_path("readinessProbe"))
            assert ready.status_code == 200, ready.text
            monitor = find(pod.manifests, "ServiceMonitor")["spec"]["endpoints"][0]
            metrics = http.get(pod.admin + monitor["path"])
            assert metrics.status_code == 200
            assert "# TYPE" in metrics.text
        gateway.sigterm_stops_within_grace(clean_exit=True)
    finally:
        gateway.output()


def test_sync_pod_applies_the_directory_and_stops_on_sigterm(pod: Pod) -> None:
    sync = Container(pod, find(pod.manifests, "Deployment", "rel-wardgate-sync"))
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "directory_synced" not in sync.log.read_text() and time.monotonic() < deadline:
            assert sync.process.poll() is None, sync.output()
            time.sleep(0.1)
        engine = make_engine(pod.env["WARDGATE_DATABASE_URL"])
        with engine.connect() as conn:
            synced = set(conn.scalars(select(Person.subject).where(Person.source == "file")))
        engine.dispose()
        assert "sales02" in synced, f"the directory never arrived:\n{sync.output()}"
        sync.sigterm_stops_within_grace(clean_exit=False)
    finally:
        sync.output()

"""Running helm on the chart and picking rendered manifests apart (used by the chart tests)."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "wardgate"
ALL_FEATURES = Path(__file__).with_name("values-all-features.yaml")
KUBERNETES_VERSION = "1.35.0"


@dataclass(frozen=True)
class Helm:
    """Runs helm against the chart with isolated config/cache folders (no repos, no network)."""

    binary: Path
    home: Path
    chart: Path = CHART

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        return subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=30,
        )

    @staticmethod
    def value_args(files: tuple[Path, ...], sets: dict[str, str]) -> list[str]:
        args: list[str] = []
        for f in files:
            args += ["-f", str(f)]
        for key, value in sets.items():
            args += ["--set", f"{key}={value}"]
        return args

    def lint(self, *files: Path, **sets: str) -> subprocess.CompletedProcess[str]:
        return self.run("lint", "--strict", str(self.chart), *self.value_args(files, sets))

    def template(self, *files: Path, **sets: str) -> list[dict[str, Any]]:
        """Render with ``helm template`` and return the manifests; a render error fails."""
        return self.render(*self.value_args(files, sets))

    def render(self, *args: str) -> list[dict[str, Any]]:
        """``helm template`` with raw arguments (``--set-file`` …)."""
        done = self.run("template", "rel", str(self.chart), "--namespace", "gw", *args)
        assert done.returncode == 0, f"helm template failed:\n{done.stderr}"
        return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def find(manifests: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one manifest of this kind (and name); fails naming what was rendered instead."""
    hits = [m for m in manifests if m["kind"] == kind and name in (None, m["metadata"]["name"])]
    rendered = sorted(f"{m['kind']}/{m['metadata']['name']}" for m in manifests)
    assert len(hits) == 1, f"expected one {kind} {name or ''}, rendered: {rendered}"
    return hits[0]


def pod_specs(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload that runs Wardgate."""
    for m in manifests:
        if m["kind"] in {"Deployment", "StatefulSet", "Job"}:
            yield f"{m['kind']}/{m['metadata']['name']}", m["spec"]["template"]["spec"]


def wardgate_yaml(manifests: list[dict[str, Any]], name: str = "rel-wardgate") -> dict[str, Any]:
    """The rendered wardgate.yaml of the ConfigMap ``name``."""
    return yaml.safe_load(find(manifests, "ConfigMap", name)["data"]["wardgate.yaml"])


def gateway_workload(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """The gateway Deployment or StatefulSet."""
    return next(
        m
        for m in manifests
        if m["kind"] in {"Deployment", "StatefulSet"} and m["metadata"]["name"] == "rel-wardgate"
    )


def pod_environment(manifests: list[dict[str, Any]]) -> dict[str, str]:
    """The variables the gateway container sees, resolved from the rendered Secret."""
    data = find(manifests, "Secret", "rel-wardgate").get("data", {})
    env = {}
    for var in gateway_container(manifests)["env"]:
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref and ref["name"] == "rel-wardgate" and ref["key"] in data:
            env[var["name"]] = base64.b64decode(data[ref["key"]]).decode()
    return env


def gateway_container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """The gateway container of the gateway workload."""
    return gateway_workload(manifests)["spec"]["template"]["spec"]["containers"][0]

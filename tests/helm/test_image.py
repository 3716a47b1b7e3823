"""The Dockerfile builds what the chart runs: same user, same command, every package copied.

No container engine runs here, so the Dockerfile is read, not built; the build stage's
`pip install .` is covered by installing the same files (see docs/deploy.md).
"""

from __future__ import annotations

import fnmatch
import json
import tomllib
from typing import Any

import yaml

from tests.helm.chart import CHART, REPO, gateway_workload

Manifests = list[dict[str, Any]]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(word.upper(), rest.strip()) for word, rest in pairs]


def ignored(path: str) -> bool:
    patterns = (REPO / ".dockerignore").read_text().split()
    return any(
        fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.removeprefix("**/"))
        for p in patterns
        if not p.startswith("#")
    )


def test_image_is_multi_stage_python_311_slim() -> None:
    bases = [args for word, args in instructions() if word == "FROM"]
    assert bases == ["python:3.11-slim AS build", "python:3.11-slim"]
    copies = [args for word, args in instructions() if word == "COPY"]
    assert "--from=build /opt/wardgate /opt/wardgate" in copies


def test_image_user_is_numeric_non_root_and_matches_the_chart() -> None:
    """Kubernetes can verify runAsNonRoot only for a numeric USER."""
    users = [args for word, args in instructions() if word == "USER"]
    uid, gid = users[-1].split(":")
    values = yaml.safe_load((CHART / "values.yaml").read_text())["securityContext"]
    assert (int(uid), int(gid)) == (values["runAsUser"], values["runAsGroup"])
    assert int(uid) > 0 and int(gid) > 0


def test_image_command_is_what_the_chart_runs(default_manifests: Manifests) -> None:
    words = dict(instructions())
    assert json.loads(words["ENTRYPOINT"]) == ["wardgate"]
    command = json.loads(words["CMD"])
    assert command == ["serve", "--config", "/etc/wardgate/wardgate.yaml"]
    container = gateway_workload(default_manifests)["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == command
    assert "command" not in container  # the image's ENTRYPOINT stays in charge


def test_every_python_package_reaches_the_image() -> None:
    """A new top-level package must be copied into the build, or the image cannot import it."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {
        source
        for word, args in instructions()
        if word == "COPY" and not args.startswith("--from")
        for source in args.split()[:-1]
    }
    assert {"pyproject.toml", "README.md"} <= copied
    assert packages <= copied
    assert [path for path in copied if ignored(path)] == []


def test_the_build_stage_can_compile_the_extension_modules() -> None:
    """python:3.11-slim has no compiler: without one, `pip install .` fails on the C scanner.
    A module built here for this machine must not reach the build context either."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    sources = [s for ext in project["tool"]["setuptools"]["ext-modules"] for s in ext["sources"]]
    assert sources and all(source.startswith(("gateway/", "audit/")) for source in sources)
    steps = instructions()
    build_stage = steps[: [word for word, _ in steps].index("FROM", 1)]
    runs = [args for word, args in build_stage if word == "RUN"]
    compiler = next(i for i, run in enumerate(runs) if "apt-get install" in run and "gcc" in run)
    assert compiler < next(i for i, run in enumerate(runs) if "pip install ." in run)
    assert ignored("gateway/_piiscan.cpython-311-x86_64-linux-gnu.so")


def test_local_state_and_secrets_stay_out_of_the_build_context() -> None:
    for path in (".git", ".venv", ".wardgate", ".env", "audit/__pycache__", "x.db"):
        assert ignored(path), path

"""Rendered manifests are valid Kubernetes objects, with and without the optional features."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from tests.helm.chart import ALL_FEATURES, CHART, KUBERNETES_VERSION, Helm

# Custom resources: no schema ships with Kubernetes; checked by hand below.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def validate(manifests: list[dict[str, Any]]) -> list[str]:
    """Strict schema validation (unknown fields are errors); returns one line per problem."""
    problems = []
    for m in manifests:
        if (m["apiVersion"], m["kind"]) in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(m, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            problems.append(f"{m['kind']}/{m['metadata']['name']}: {where}: {exc.message}")
    return problems


@pytest.mark.parametrize("values", ["defaults", "all-features"])
def test_every_rendered_manifest_validates(
    values: str, default_manifests: list[dict[str, Any]], full_manifests: list[dict[str, Any]]
) -> None:
    manifests = default_manifests if values == "defaults" else full_manifests
    assert validate(manifests) == []


def test_validation_catches_a_broken_manifest(default_manifests: list[dict[str, Any]]) -> None:
    """The validator is not a no-op: a misspelt field in a Deployment is reported."""
    broken = yaml.safe_load(yaml.safe_dump(default_manifests))
    deployment = next(m for m in broken if m["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    assert any("imagePullPolcy" in p for p in validate(broken))


def test_defaults_render_the_core_objects(default_manifests: list[dict[str, Any]]) -> None:
    kinds = sorted(f"{m['kind']}/{m['metadata']['name']}" for m in default_manifests)
    assert kinds == [
        "ConfigMap/rel-wardgate",
        "ConfigMap/rel-wardgate-policies",
        "Deployment/rel-wardgate",
        "PodDisruptionBudget/rel-wardgate",
        "Secret/rel-wardgate",
        "Service/rel-wardgate",
        "Service/rel-wardgate-admin",
        "ServiceAccount/rel-wardgate",
    ]


def test_all_features_render_every_optional_object(full_manifests: list[dict[str, Any]]) -> None:
    kinds = {m["kind"] for m in full_manifests}
    assert {
        "StatefulSet",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceMonitor",
        "Job",
        "Deployment",  # the directory sync
    } <= kinds


def test_service_monitor_scrapes_metrics_on_the_admin_service(
    full_manifests: list[dict[str, Any]],
) -> None:
    monitor = next(m for m in full_manifests if m["kind"] == "ServiceMonitor")
    admin = next(m for m in full_manifests if m["metadata"]["name"] == "rel-wardgate-admin")
    assert monitor["spec"]["endpoints"] == [
        {"port": "admin", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= admin["metadata"]["labels"].items()
    proxy = next(m for m in full_manifests if m["metadata"]["name"] == "rel-wardgate")
    assert not selector.items() <= proxy["metadata"]["labels"].items()
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["gw"]}


LINT_RULES = YamlLintConfig(
    "extends: default\nrules: {line-length: {max: 120}, document-start: disable, "
    "comments: {min-spaces-from-content: 1}, truthy: {check-keys: false}, "
    "indentation: {indent-sequences: whatever}}"
)


def test_values_and_rendered_output_are_clean_yaml(helm: Helm) -> None:
    rendered = helm.run("template", "rel", str(CHART), "-f", str(ALL_FEATURES)).stdout
    for name, text in [
        ("values.yaml", (CHART / "values.yaml").read_text()),
        ("Chart.yaml", (CHART / "Chart.yaml").read_text()),
        ("values-all-features.yaml", ALL_FEATURES.read_text()),
        ("rendered", rendered),
    ]:
        problems = [f"{p.line}: {p.desc}" for p in linter.run(text, LINT_RULES)]
        assert problems == [], f"{name}: {problems}"

"""The rendered wardgate.yaml and the pod's environment are what the gateway really accepts.

These tests load the chart's output with the gateway's own settings loader, so a chart that
drifts from ``gateway/settings.py`` fails here instead of crash-looping in a cluster.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from audit.settings import AuditSettings
from gateway.directory.settings import DirectorySettings, LdapSettings
from gateway.errors import ConfigError
from gateway.settings import (
    AdminSettings,
    IssuerSettings,
    LimitSettings,
    LogSettings,
    PolicySettings,
    Settings,
    UpstreamSettings,
    load_settings,
)
from tests.helm.chart import (
    CHART,
    Helm,
    find,
    gateway_container,
    pod_environment,
    wardgate_yaml,
)

Manifests = list[dict[str, Any]]
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
CONFIG = SCHEMA["properties"]["config"]

# Keys of wardgate.yaml that the chart decides (pod layout, secrets by environment).
CHART_OWNED: dict[type[BaseModel], set[str]] = {
    Settings: {"listen", "database_url", "redis_url", "field_hash_key_env"},
    PolicySettings: {"dir"},
    AdminSettings: {"scim_token_env", "hr_secret_env"},
    AuditSettings: {"spool_dir"},
}
# (schema node, model): strict nodes must list every field the user may set; open nodes
# (sections owned by other modules that grow) may list fewer, never one the model lacks.
SECTIONS: list[tuple[dict[str, Any], type[BaseModel]]] = [
    (CONFIG, Settings),
    (CONFIG["properties"]["upstreams"]["additionalProperties"], UpstreamSettings),
    (CONFIG["properties"]["issuers"]["items"], IssuerSettings),
    (CONFIG["properties"]["policy"], PolicySettings),
    (CONFIG["properties"]["limits"], LimitSettings),
    (CONFIG["properties"]["log"], LogSettings),
    (CONFIG["properties"]["admin"], AdminSettings),
    (CONFIG["properties"]["audit"], AuditSettings),
    (CONFIG["properties"]["directory"], DirectorySettings),
    (CONFIG["properties"]["directory"]["properties"]["ldap"], LdapSettings),
]


@pytest.mark.parametrize("node, model", SECTIONS, ids=[m.__name__ for _, m in SECTIONS])
def test_values_schema_matches_the_settings_model(
    node: dict[str, Any], model: type[BaseModel]
) -> None:
    allowed = set(model.model_fields) - CHART_OWNED.get(model, set())
    described = set(node["properties"])
    assert described <= allowed, f"schema offers keys {model.__name__} rejects"
    if node["additionalProperties"] is False:
        missing = allowed - described
        assert not missing, f"update values.schema.json: {model.__name__} gained {missing}"
    required = {name for name, field in model.model_fields.items() if field.is_required()}
    assert set(node.get("required", [])) == required - CHART_OWNED.get(model, set())


MINIMAL_UPSTREAM = {"base_url": "http://crm.internal:8000", "prefix": "/crm"}


@pytest.fixture(scope="module")
def minimal_manifests(helm: Helm) -> Manifests:
    """The defaults plus the one thing they deliberately lack: an upstream."""
    return helm.template(**{f"config.upstreams.crm.{k}": v for k, v in MINIMAL_UPSTREAM.items()})


@pytest.mark.parametrize("values", ["minimal", "all-features"])
def test_rendered_config_loads_in_the_gateway(
    values: str,
    minimal_manifests: Manifests,
    full_manifests: Manifests,
    tmp_path: Path,
) -> None:
    manifests = minimal_manifests if values == "minimal" else full_manifests
    settings = pod_settings(manifests, tmp_path)
    assert settings.listen.proxy_host == "0.0.0.0"
    assert settings.listen.admin_host == "0.0.0.0"  # so the admin Service reaches it
    container = gateway_container(manifests)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"proxy": settings.listen.proxy_port, "admin": settings.listen.admin_port}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["policies"] == settings.policy.dir
    assert mounts["spool"] == settings.audit.spool_dir


def test_defaults_fail_closed_until_an_upstream_is_named(
    default_manifests: Manifests, tmp_path: Path
) -> None:
    """No sample upstream ships (Helm would merge it into yours): the gateway refuses to start."""
    with pytest.raises(ConfigError, match="upstreams: at least one upstream is required"):
        pod_settings(default_manifests, tmp_path)


def test_hook_config_is_the_same_as_the_pods_config(full_manifests: Manifests) -> None:
    """Migrations validate exactly the config the pods will run with."""
    assert wardgate_yaml(full_manifests, "rel-wardgate-migrations") == wardgate_yaml(full_manifests)


def test_secrets_arrive_where_the_gateway_reads_them(
    full_manifests: Manifests, tmp_path: Path
) -> None:
    settings = pod_settings(full_manifests, tmp_path)
    env = pod_environment(full_manifests)
    assert settings.database_url == env["WARDGATE_DATABASE_URL"]
    assert settings.database_url.startswith("postgresql://wardgate:db-password-value@")
    assert settings.redis_url == env["WARDGATE_REDIS_URL"]
    for variable in (
        settings.field_hash_key_env,
        settings.admin.scim_token_env,
        settings.admin.hr_secret_env,
        settings.audit.signing_key_env,
    ):
        assert env.get(variable), f"the gateway reads {variable}; the pod does not set it"
    assert settings.directory.ldap is not None
    assert settings.directory.ldap.password_env is not None
    assert env[settings.directory.ldap.password_env] == "ldap-password-value"


def pod_settings(manifests: Manifests, tmp_path: Path) -> Settings:
    """Load the rendered wardgate.yaml the way `wardgate serve` does inside the pod."""
    path = tmp_path / "wardgate.yaml"
    path.write_text(find(manifests, "ConfigMap", "rel-wardgate")["data"]["wardgate.yaml"])
    return load_settings(path, environ=pod_environment(manifests))

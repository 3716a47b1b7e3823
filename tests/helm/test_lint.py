"""`helm lint` accepts the shipped values and refuses values that would weaken or break it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chart import ALL_FEATURES, Helm

ISSUER = {"issuer": "https://idp", "jwks_url": "https://idp/jwks", "audience": "wardgate"}

# values a user might try, and the schema path the error must name
REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "replica count as text": ({"replicaCount": "two"}, "/replicaCount"),
    "zero replicas": ({"replicaCount": 0}, "/replicaCount"),
    "admin API on a load balancer": (
        {"admin": {"service": {"type": "LoadBalancer"}}},
        "/admin/service/type",
    ),
    "admin API on node ports": ({"admin": {"service": {"type": "NodePort"}}}, "/admin/service"),
    "pods as root": ({"securityContext": {"runAsUser": 0}}, "/securityContext/runAsUser"),
    "root group": ({"securityContext": {"runAsGroup": 0}}, "/securityContext/runAsGroup"),
    "database password in the ConfigMap": (
        {"config": {"database_url": "postgresql://u:pw@db/wardgate"}},
        "'database_url' not allowed",
    ),
    "redis password in the ConfigMap": (
        {"config": {"redis_url": "redis://:pw@redis:6379"}},
        "'redis_url' not allowed",
    ),
    "rebinding the listeners": ({"config": {"listen": {"admin_host": "10.0.0.1"}}}, "'listen'"),
    "moving the policies folder": ({"config": {"policy": {"dir": "/tmp"}}}, "'dir' not allowed"),
    "moving the audit spool off its volume": (
        {"config": {"audit": {"spool_dir": "/tmp"}}},
        "/config/audit",
    ),
    "redirecting the field hash key": (
        {"config": {"field_hash_key_env": "HOME"}},
        "'field_hash_key_env' not allowed",
    ),
    "renaming the SCIM token variable": (
        {"config": {"admin": {"scim_token_env": "HOME"}}},
        "'scim_token_env' not allowed",
    ),
    "upstream that is not http": (
        {"config": {"upstreams": {"crm": {"base_url": "ftp://crm"}}}},
        "/config/upstreams/crm/base_url",
    ),
    "upstream prefix without slash": (
        {"config": {"upstreams": {"crm": {"prefix": "crm"}}}},
        "/config/upstreams/crm/prefix",
    ),
    "no upstream at all": ({"config": {"upstreams": None}}, "/config"),
    "symmetric JWT algorithm": (
        {"config": {"issuers": [{**ISSUER, "algorithms": ["HS256"]}]}},
        "/config/issuers/0/algorithms/0",
    ),
    "issuer without audience": (
        {"config": {"issuers": [{"issuer": "https://idp", "jwks_url": "https://idp/jwks"}]}},
        "/config/issuers/0",
    ),
    "LDAP over another protocol": (
        {
            "config": {
                "directory": {"ldap": {"url": "http://ldap", "user_base": "o", "group_base": "o"}}
            }
        },
        "/config/directory/ldap/url",
    ),
    "unknown log level": ({"config": {"log": {"level": "verbose"}}}, "/config/log/level"),
    "unknown directory source": ({"config": {"directory": {"source": "ad"}}}, "/config/directory"),
    "MySQL instead of PostgreSQL": (
        {"secrets": {"databaseUrl": "mysql://db/w"}},
        "/secrets/databaseUrl",
    ),
    "misspelt top-level key": ({"replicas": 3}, "'replicas' not allowed"),
    "policy file name with a path": (
        {"policies": {"files": {"../model.conf": "x"}}},
        "invalid propertyName '../model.conf'",
    ),
    "hidden policy file name": (
        {"policies": {"files": {"..data": "x"}}},
        "invalid propertyName '..data'",
    ),
    "unknown image pull policy": ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    "digest that is not sha256": ({"image": {"digest": "latest"}}, "/image/digest"),
    "PDB as a word": (
        {"podDisruptionBudget": {"maxUnavailable": "one"}},
        "/podDisruptionBudget/maxUnavailable",
    ),
    "re-binding the admin listener through extraEnv": (
        {"extraEnv": [{"name": "WARDGATE_LISTEN__ADMIN_HOST", "value": "1.2.3.4"}]},
        "/extraEnv/0/name",
    ),
    "a second, literal database URL through extraEnv": (
        {"extraEnv": [{"name": "WARDGATE_DATABASE_URL", "value": "postgresql://u:pw@db/w"}]},
        "/extraEnv/0/name",
    ),
    "moving the spool through extraEnv": (
        {"extraEnv": [{"name": "WARDGATE_AUDIT__SPOOL_DIR", "value": "/tmp"}]},
        "/extraEnv/0/name",
    ),
    "memory as a word": ({"resources": {"limits": {"memory": "lots"}}}, "/resources/limits"),
}


def test_lint_passes_with_default_values(helm: Helm) -> None:
    done = helm.lint()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[ERROR]" not in done.stdout and "[WARNING]" not in done.stdout


def test_lint_passes_with_every_optional_feature_on(helm: Helm) -> None:
    done = helm.lint(ALL_FEATURES)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("values, path", REFUSED.values(), ids=REFUSED.keys())
def test_lint_refuses_bad_values_naming_the_key(
    helm: Helm, tmp_path: Path, values: dict[str, Any], path: str
) -> None:
    bad = tmp_path / "values.yaml"
    bad.write_text(yaml.safe_dump(values))
    done = helm.lint(bad)
    assert done.returncode != 0, f"{values} was accepted:\n{done.stdout}"
    assert path in done.stdout, done.stdout + done.stderr


def test_install_refuses_what_lint_refuses(helm: Helm) -> None:
    """The schema guards `helm template` and so `helm install`/`upgrade`, not only lint."""
    done = helm.run("template", "rel", str(helm.chart), "--set", "admin.service.type=LoadBalancer")
    assert done.returncode != 0
    assert "/admin/service/type" in done.stderr

"""What an operator relies on in the rendered workloads: hardening, probes, exposure, roles."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.helm.chart import ALL_FEATURES, Helm, find, gateway_workload, pod_specs

Manifests = list[dict[str, Any]]


@pytest.fixture(params=["defaults", "all-features"])
def manifests(
    request: pytest.FixtureRequest, default_manifests: Manifests, full_manifests: Manifests
) -> Manifests:
    return default_manifests if request.param == "defaults" else full_manifests


def test_every_pod_is_hardened(manifests: Manifests) -> None:
    specs = dict(pod_specs(manifests))
    assert specs, "no workload rendered"
    for name, spec in specs.items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] > 0 and pod["runAsGroup"] > 0, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["runAsNonRoot"] is True, name
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["privileged"] is False, name
            assert ctx["capabilities"] == {"drop": ["ALL"]}, name
            assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, name


def test_hardening_cannot_be_switched_off_through_values(helm: Helm) -> None:
    """Values that look like they would weaken the pods are refused, not half-applied."""
    for setting in (
        "securityContext.readOnlyRootFilesystem=false",
        "securityContext.privileged=true",
        "securityContext.runAsNonRoot=false",
    ):
        done = helm.lint(**dict([setting.split("=")]))
        assert done.returncode != 0, setting


def test_read_only_root_leaves_exactly_tmp_and_the_spool_writable(manifests: Manifests) -> None:
    gateway = gateway_workload(manifests)
    mounts = {
        m["mountPath"]: m.get("readOnly", False)
        for m in gateway["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    writable = {path for path, read_only in mounts.items() if not read_only}
    assert writable == {"/tmp", "/var/lib/wardgate/spool"}
    assert mounts["/etc/wardgate/wardgate.yaml"] is True
    assert mounts["/etc/wardgate/policies"] is True


def test_gateway_probes_health_on_the_proxy_port(manifests: Manifests) -> None:
    container = gateway_workload(manifests)["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"proxy": 8080, "admin": 8081}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "proxy"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "proxy"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "proxy"}
    assert container["args"] == ["serve", "--config", "/etc/wardgate/wardgate.yaml"]


def test_admin_service_is_cluster_internal_and_proxy_service_follows_values(
    default_manifests: Manifests, full_manifests: Manifests
) -> None:
    for manifests in (default_manifests, full_manifests):
        admin = find(manifests, "Service", "rel-wardgate-admin")["spec"]
        assert admin["type"] == "ClusterIP"
        assert "loadBalancerSourceRanges" not in admin and "externalIPs" not in admin
        assert admin["ports"] == [
            {"name": "admin", "port": 8081, "targetPort": "admin", "protocol": "TCP"}
        ]
    proxy = find(full_manifests, "Service", "rel-wardgate")["spec"]
    assert proxy["type"] == "LoadBalancer"
    assert proxy["loadBalancerSourceRanges"] == ["10.0.0.0/8"]
    assert proxy["ports"][0]["targetPort"] == "proxy"


def test_services_reach_gateway_pods_only(full_manifests: Manifests) -> None:
    """The sync pod carries no listener: no Service may send traffic to it."""
    sync_labels = find(full_manifests, "Deployment", "rel-wardgate-sync")["spec"]["template"][
        "metadata"
    ]["labels"]
    gateway_labels = gateway_workload(full_manifests)["spec"]["template"]["metadata"]["labels"]
    for service in (m for m in full_manifests if m["kind"] == "Service"):
        selector = service["spec"]["selector"].items()
        assert selector <= gateway_labels.items(), service["metadata"]["name"]
        assert not selector <= sync_labels.items(), service["metadata"]["name"]


def test_sync_runs_in_exactly_one_pod_whatever_the_scaling(full_manifests: Manifests) -> None:
    sync = find(full_manifests, "Deployment", "rel-wardgate-sync")
    assert sync["spec"]["replicas"] == 1
    assert sync["spec"]["strategy"] == {"type": "Recreate"}  # never old and new side by side
    container = sync["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["sync", "--loop", "--config", "/etc/wardgate/wardgate.yaml"]
    assert "ports" not in container
    hpa = find(full_manifests, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "rel-wardgate"
    pdb = find(full_manifests, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "gateway"


def test_no_sync_pod_without_a_directory(helm: Helm, default_manifests: Manifests) -> None:
    assert not [m for m in default_manifests if m["metadata"]["name"].endswith("-sync")]
    off = helm.template(ALL_FEATURES, **{"sync.enabled": "false"})
    assert not [m for m in off if m["metadata"]["name"].endswith("-sync")]


@pytest.mark.parametrize("secret", ["rendered", "existing"])
def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook(helm: Helm, secret: str) -> None:
    existing = {"secrets.existingSecret": "wardgate-prod"} if secret == "existing" else {}
    manifests = helm.template(ALL_FEATURES, **existing)
    job = find(manifests, "Job", "rel-wardgate-migrations")
    hook = job["metadata"]["annotations"]
    assert hook["helm.sh/hook"] == "pre-install,pre-upgrade"
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    assert "serviceAccountName" not in spec  # the release's account does not exist yet
    container = spec["containers"][0]
    assert container["args"] == ["db", "upgrade", "--config", "/etc/wardgate/wardgate.yaml"]
    # Everything the hook Job reads must itself be a hook that exists before it.
    config_map = next(v for v in spec["volumes"] if v["name"] == "config")["configMap"]["name"]
    secret_name = env_secret(container, "WARDGATE_DATABASE_URL")
    assert secret_name == ("wardgate-prod" if existing else "rel-wardgate-migrations")
    hook_resources = [("ConfigMap", config_map)] + ([] if existing else [("Secret", secret_name)])
    for kind, name in hook_resources:
        resource = find(manifests, kind, name)
        weight = int(resource["metadata"]["annotations"]["helm.sh/hook-weight"])
        assert resource["metadata"]["annotations"]["helm.sh/hook"] == hook["helm.sh/hook"]
        assert weight < int(hook["helm.sh/hook-weight"])
    assert all(v["name"] != "policies" for v in spec["volumes"])


def test_migrations_wait_for_a_database_url_and_can_be_switched_off(
    helm: Helm, default_manifests: Manifests
) -> None:
    """Without a URL the hook could only hang until Helm's timeout: it is left out."""
    assert not [m for m in default_manifests if "migrations" in m["metadata"]["name"]]
    manifests = helm.template(ALL_FEATURES, **{"migrations.enabled": "false"})
    assert not [m for m in manifests if "migrations" in m["metadata"]["name"]]


def test_pods_get_no_service_link_variables(manifests: Manifests) -> None:
    """Kubernetes would inject WARDGATE_PORT etc. for a Service named after the release."""
    for name, spec in pod_specs(manifests):
        assert spec["enableServiceLinks"] is False, name


def test_database_url_is_mandatory_for_every_wardgate_container(manifests: Manifests) -> None:
    """No URL = the container does not start; never a silent per-pod SQLite file."""
    for name, spec in pod_specs(manifests):
        ref = env_of(spec["containers"][0], "WARDGATE_DATABASE_URL")["valueFrom"]["secretKeyRef"]
        assert ref.get("optional", False) is False, name


def test_secrets_reach_pods_by_reference_only(full_manifests: Manifests) -> None:
    secret = find(full_manifests, "Secret", "rel-wardgate")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded["WARDGATE_DATABASE_URL"].startswith("postgresql://wardgate:db-password-value@")
    assert decoded["WARDGATE_LDAP_PASSWORD"] == "ldap-password-value"
    outside_secrets = str([m for m in full_manifests if m["kind"] != "Secret"])
    for value in decoded.values():
        assert value not in outside_secrets
        assert base64.b64encode(value.encode()).decode() not in outside_secrets
    for name, spec in pod_specs(full_manifests):
        for var in spec["containers"][0]["env"]:
            assert "value" not in var, f"{name}: {var['name']} carries a literal value"


def test_existing_secret_replaces_the_rendered_one(helm: Helm) -> None:
    manifests = helm.template(ALL_FEATURES, **{"secrets.existingSecret": "wardgate-prod"})
    assert [m["metadata"]["name"] for m in manifests if m["kind"] == "Secret"] == []
    for name, spec in pod_specs(manifests):
        assert env_secret(spec["containers"][0], "WARDGATE_DATABASE_URL") == "wardgate-prod", name


def test_existing_policies_config_map_is_mounted_as_is(helm: Helm) -> None:
    manifests = helm.template(**{"policies.existingConfigMap": "corp-policies"})
    assert not [m for m in manifests if m["metadata"]["name"].endswith("-policies")]
    volumes = gateway_workload(manifests)["spec"]["template"]["spec"]["volumes"]
    assert {"name": "policies", "configMap": {"name": "corp-policies"}} in volumes


def test_spool_is_an_empty_dir_by_default_and_a_claim_per_pod_when_persistent(
    default_manifests: Manifests, full_manifests: Manifests
) -> None:
    volumes = find(default_manifests, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "spool", "emptyDir": {"sizeLimit": "1Gi"}} in volumes
    sts = find(full_manifests, "StatefulSet")
    assert [c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]] == ["spool"]
    claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == "fast-ssd"
    assert claim["resources"]["requests"]["storage"] == "5Gi"
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    assert all(v["name"] != "spool" for v in sts["spec"]["template"]["spec"]["volumes"])
    headless = find(full_manifests, "Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    hpa = find(full_manifests, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"


def test_autoscaling_owns_the_replica_count(
    default_manifests: Manifests, full_manifests: Manifests
) -> None:
    assert find(default_manifests, "Deployment")["spec"]["replicas"] == 2
    assert "replicas" not in gateway_workload(full_manifests)["spec"]
    hpa = find(full_manifests, "HorizontalPodAutoscaler")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 20)
    targets = {m["resource"]["name"]: m["resource"]["target"] for m in hpa["metrics"]}
    assert targets == {
        "cpu": {"type": "Utilization", "averageUtilization": 70},
        "memory": {"type": "Utilization", "averageUtilization": 80},
    }


def test_autoscaling_bounds_must_make_sense(helm: Helm) -> None:
    done = helm.run(
        "template",
        "rel",
        str(helm.chart),
        "--set",
        "autoscaling.enabled=true",
        "--set",
        "autoscaling.minReplicas=5",
        "--set",
        "autoscaling.maxReplicas=3",
    )
    assert done.returncode != 0
    assert "autoscaling.minReplicas (5) is above autoscaling.maxReplicas (3)" in done.stderr


def test_network_policy_opens_admin_only_to_named_sources(
    helm: Helm, full_manifests: Manifests
) -> None:
    policy = find(full_manifests, "NetworkPolicy", "rel-wardgate")["spec"]
    by_port = {rule["ports"][0]["port"]: rule for rule in policy["ingress"]}
    assert len(by_port["admin"]["from"]) == 2
    closed = helm.template(**{"networkPolicy.enabled": "true"})
    rules = find(closed, "NetworkPolicy", "rel-wardgate")["spec"]["ingress"]
    assert [r["ports"][0]["port"] for r in rules] == ["proxy"]
    assert "from" not in rules[0]  # the proxy stays reachable
    lockdown = find(closed, "NetworkPolicy", "rel-wardgate-no-ingress")["spec"]
    assert lockdown["policyTypes"] == ["Ingress"] and "ingress" not in lockdown


def test_config_changes_roll_the_pods(helm: Helm, default_manifests: Manifests) -> None:
    def checksums(manifests: Manifests) -> dict[str, str]:
        annotations = gateway_workload(manifests)["spec"]["template"]["metadata"]["annotations"]
        return {k: v for k, v in annotations.items() if k.startswith("checksum/")}

    before = checksums(default_manifests)
    assert checksums(helm.template()) == before  # stable when nothing changes
    changed = {
        "config.log.level": "debug",
        "secrets.hrSecret": "rotated",
        "policies.files.policy\\.csv": "p\\, sales\\, crm\\, /x\\, GET",
    }
    for setting, value in changed.items():
        after = checksums(helm.template(**{setting: value}))
        differing = {k for k in before if after.get(k) != before[k]}
        assert len(differing) == 1, f"{setting}: {differing}"
    sync = find(helm.template(ALL_FEATURES), "Deployment", "rel-wardgate-sync")
    annotations = sync["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/config" in annotations


def env_of(container: dict[str, Any], name: str) -> dict[str, Any]:
    return next(var for var in container["env"] if var["name"] == name)


def env_secret(container: dict[str, Any], name: str) -> str:
    return env_of(container, name)["valueFrom"]["secretKeyRef"]["name"]

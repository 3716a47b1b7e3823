"""What `helm install` prints tells the operator what is still missing."""

from __future__ import annotations

from tests.helm.chart import ALL_FEATURES, Helm


def install_notes(helm: Helm, *args: str) -> str:
    done = helm.run("install", "rel", str(helm.chart), "--dry-run=client", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.split("NOTES:", 1)[1]


def test_defaults_say_what_is_missing_before_traffic_can_pass(helm: Helm) -> None:
    notes = install_notes(helm)
    assert "NOT READY: no upstreams" in notes
    assert "NOT READY: no database URL" in notes
    assert "NOT READY: no policies" in notes
    assert "without Redis" in notes
    assert "audit spool is an emptyDir" in notes
    assert "port-forward svc/rel-wardgate-admin 8081" in notes
    assert "Migrations: not run: no database URL yet" in notes


def test_a_complete_install_has_no_warnings(helm: Helm) -> None:
    notes = install_notes(helm, "-f", str(ALL_FEATURES))
    assert "NOT READY" not in notes and "WARNING" not in notes
    assert "Directory sync: one pod, rel-wardgate-sync" in notes
    assert "Migrations: run by Helm before every install and upgrade" in notes
    assert "/erp/... -> erp (http://erp.internal:8080)" in notes


def test_a_service_monitor_behind_a_closed_admin_port_is_flagged(helm: Helm) -> None:
    notes = install_notes(helm, "-f", str(ALL_FEATURES), "--set", "networkPolicy.adminFrom=null")
    assert "Prometheus cannot scrape /metrics" in notes

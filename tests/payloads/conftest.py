"""Fixtures for the payload filters: the demo catalog and resource map, plans, a masker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.catalog import FieldCatalog
from gateway.fieldplan import FieldPlan, HideAction, HideRule
from gateway.masking import Masker
from gateway.payloads import FilterResult, filter_response
from gateway.resources import Resource, ResourceMap

POLICIES = Path(__file__).resolve().parents[2] / "policies"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
ERP = "http://demo.wardgate.dev/erp"
MAX_BYTES = 1 << 20


@pytest.fixture(scope="session")
def catalog() -> FieldCatalog:
    return FieldCatalog.load(POLICIES / "fields.yaml")


@pytest.fixture(scope="session")
def resources() -> ResourceMap:
    return ResourceMap.load(POLICIES / "resources.yaml")


@pytest.fixture(scope="session")
def masker() -> Masker:
    return Masker(b"test-hash-key-0123456789")


@pytest.fixture(scope="session")
def customers(resources: ResourceMap) -> Resource:
    found = resources.match("crm", "GET", "/api/customers", {}, None)
    assert found is not None
    return found


@pytest.fixture(scope="session")
def products(resources: ResourceMap) -> Resource:
    found = resources.match("erp", "POST", "/soap", {"SOAPAction": f"{ERP}/GetProducts"}, None)
    assert found is not None
    return found


def plan_hiding(
    entity: str, catalog: FieldCatalog, *names: str, mask_pii: bool = False, **actions: HideAction
) -> FieldPlan:
    """A plan hiding ``names`` as the catalog says (or ``actions[name]``), like the compiler."""
    specs = catalog.fields(entity) if entity in catalog.entity_names else {}
    hidden = {}
    for name in names:
        rule = specs[name].hide if name in specs else HideRule(name, HideAction.REDACT)
        if name in actions:
            rule = HideRule(name, actions[name], rule.keep_first, rule.keep_last)
        hidden[name] = rule
    return FieldPlan(entity, hidden=hidden, mask_pii=mask_pii)


Filter = Callable[..., FilterResult]


@pytest.fixture
def run_filter(catalog: FieldCatalog, masker: Masker) -> Filter:
    """``run_filter(resource, plan, content_type, body, encoding=None, max_bytes=…)``."""

    def run(
        resource: Resource | None,
        plan: FieldPlan | None,
        content_type: str,
        body: bytes,
        encoding: str | None = None,
        max_bytes: int = MAX_BYTES,
    ) -> FilterResult:
        return filter_response(
            resource, plan, content_type, encoding, body,
            masker=masker, catalog=catalog, max_bytes=max_bytes,
        )  # fmt: skip

    return run


class _Recorder:
    """A real HTTP server on loopback that counts every request it receives."""

    def __init__(self) -> None:
        import http.server
        import threading

        recorder = self
        self.requests: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.requests.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"<!ENTITY leak 'LEAKED-BY-NETWORK'>")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def loopback_server():
    server = _Recorder()
    yield server
    server.close()

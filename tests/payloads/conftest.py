"""Fixtures for the payload filters: the demo catalog and resource map, plans, a masker."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.catalog import FieldCatalog
from gateway.fieldplan import FieldPlan
from gateway.masking import Masker
from gateway.payloads import FilterResult, filter_response
from gateway.resources import Resource, ResourceMap

from .helpers import ERP, MAX_BYTES, POLICIES, Recorder


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


@pytest.fixture
def loopback_server():
    server = Recorder()
    yield server
    server.close()

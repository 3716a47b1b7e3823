"""Router: longest whole-segment prefix, case rules, prefix stripping, what the upstream gets."""

from __future__ import annotations

import pytest

from gateway.errors import BadRequest, ConfigError, NotFound
from gateway.routing import Route, Router
from tests.routing.conftest import upstream


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"/crm", Route("crm", "/crm", "/", "/")),
        (b"/crm/", Route("crm", "/crm", "/", "/")),
        (b"/crm/customers/7", Route("crm", "/crm/customers/7", "/customers/7", "/customers/7")),
        (b"/crm/a%20b/%C3%BC", Route("crm", "/crm/a b/ü", "/a b/ü", "/a%20b/%C3%BC")),
        (b"/crm/../erp/Orders", Route("erp", "/erp/orders", "/orders", "/soap/orders")),
        (b"/ERP/Orders/", Route("erp", "/erp/orders", "/orders", "/soap/orders")),
        (b"/erp", Route("erp", "/erp", "/", "/soap/")),
    ],
)
def test_resolve_routes_the_normalised_path(
    crm_router: Router, raw: bytes, expected: Route
) -> None:
    assert crm_router.resolve(raw) == expected


@pytest.mark.parametrize(
    "raw", [b"/crmx", b"/crmx/customers", b"/cr", b"/", b"/CRM/customers", b"/other"]
)
def test_prefixes_match_whole_segments_only(crm_router: Router, raw: bytes) -> None:
    with pytest.raises(NotFound) as refused:
        crm_router.resolve(raw)
    assert refused.value.reason_id == "no_upstream"
    assert refused.value.status == 404


def test_the_longest_prefix_wins() -> None:
    router = Router(
        {
            "root": upstream("/"),
            "crm": upstream("/crm"),
            "reports": upstream("/crm/reports", "http://127.0.0.1:9003/r"),
        }
    )
    assert router.resolve(b"/crm/reports/q1").upstream == "reports"
    assert router.resolve(b"/crm/reports/q1").upstream_target == "/r/q1"
    assert router.resolve(b"/crm/reportsx").upstream == "crm"
    assert router.resolve(b"/crm/x/../reports").upstream == "reports"
    assert router.resolve(b"/crmx").upstream == "root"
    assert router.resolve(b"/").upstream_path == "/"
    assert router.resolve(b"/a/b").upstream_path == "/a/b"


def test_a_case_sensitive_prefix_is_not_reached_by_a_case_variant() -> None:
    router = Router({"ci": upstream("/Shop", case_insensitive=True), "cs": upstream("/shop/api")})
    assert router.resolve(b"/shop/api/x").upstream == "cs"
    # '/SHOP/API' is not the case-sensitive '/shop/api': it belongs to the IIS-style upstream
    assert router.resolve(b"/SHOP/API/x") == Route("ci", "/shop/api/x", "/api/x", "/api/x")


def test_windows_aliases_are_refused_only_for_case_insensitive_upstreams(
    crm_router: Router,
) -> None:
    assert crm_router.resolve(b"/crm/admini~1").upstream_path == "/admini~1"
    with pytest.raises(BadRequest) as refused:
        crm_router.resolve(b"/erp/ADMINI~1")
    assert refused.value.reason_id == "path_ambiguous"


def test_strip_prefix_false_sends_the_whole_path() -> None:
    router = Router({"crm": upstream("/crm", "http://127.0.0.1:9001/v2", strip_prefix=False)})
    assert router.resolve(b"/crm/a/%2e%2e//x/") == Route("crm", "/crm/x", "/crm/x", "/v2/crm/x")


def test_normalisation_errors_come_before_routing(crm_router: Router) -> None:
    with pytest.raises(BadRequest) as refused:
        crm_router.resolve(b"/nowhere/%2f")
    assert refused.value.reason_id == "path_ambiguous"


@pytest.mark.parametrize(
    ("upstreams", "message"),
    [
        ({}, "at least one upstream"),
        ({"a": upstream("/crm/./x")}, "'/crm/./x' is not a normalised path"),
        ({"a": upstream("/crm;v=1")}, "'/crm;v=1' is not a normalised path"),
        ({"a": upstream("/crm/x.")}, "upstreams.a.prefix"),
        ({"a": upstream("/crm", "http://127.0.0.1:1/x?y=1")}, "upstreams.a.base_url"),
        ({"a": upstream("/crm", "http://127.0.0.1:1/x#y")}, "upstreams.a.base_url"),
        (
            {"a": upstream("/CRM"), "b": upstream("/crm", case_insensitive=True)},
            "prefix '/crm' also matches the prefix of upstream 'a'",
        ),
        (
            {
                "a": upstream("/Crm", case_insensitive=True),
                "b": upstream("/cRM", case_insensitive=True),
            },
            "prefix '/crm' also matches the prefix of upstream 'b'",
        ),
    ],
)
def test_bad_upstream_settings_are_refused_at_start(upstreams: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("?", r"\?")):
        Router(upstreams)

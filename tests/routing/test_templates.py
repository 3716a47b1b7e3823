"""Route templates: pattern syntax, the trie's signature, invalid patterns, Casbin agreement."""

from __future__ import annotations

import re

import casbin  # type: ignore[import-untyped]  # pycasbin ships no type hints
import pytest
from casbin.model import Model  # type: ignore[import-untyped]  # as above

from gateway.errors import ConfigError
from gateway.routing import RouteTemplates, pattern_matches

CUSTOMERS = "/api/customers/*"


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        ("/api/customers", CUSTOMERS, True),
        ("/api/customers/7", CUSTOMERS, True),
        ("/api/customers/7/orders", CUSTOMERS, True),
        ("/api/customersx", CUSTOMERS, False),
        ("/api", CUSTOMERS, False),
        ("/api/Customers/7", CUSTOMERS, False),
        ("/api/customers/7", "/api/customers/:id", True),
        ("/api/customers", "/api/customers/:id", False),
        ("/api/customers/7/orders", "/api/customers/:id", False),
        ("/api/customers//orders", "/api/customers/:id/orders", False),
        ("/api/customers/7/orders", "/api/customers/:id/orders", True),
        ("/api/customers/7/orders/1", "/api/:entity/:id/*", True),
        ("/api/customers", "/api/customers", True),
        ("/api/customers/7", "/api/customers", False),
        ("/", "/", True),
        ("/x", "/", False),
        ("/", "/*", True),
        ("/a/b/c", "/*", True),
        ("/", "*", True),
        ("/anything/at/all", "*", True),
        ("relative", "*", False),
        ("/a:b/c", "/a:b/:c", True),
    ],
)
def test_pattern_matches(path: str, pattern: str, expected: bool) -> None:
    assert pattern_matches(path, pattern) is expected
    templates = RouteTemplates({"crm": [pattern]}, {"crm": False})
    assert templates.match("crm", path) == ((pattern,) if expected else ())


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("", "must be '*' or start with '/'"),
        ("api/customers", "must be '*' or start with '/'"),
        ("/api//customers", "empty segment"),
        ("/api/customers/", "empty segment"),
        ("/api/*/orders", "only be the whole last segment"),
        ("/api/cust*", "only be the whole last segment"),
        ("/api/**", "only be the whole last segment"),
        ("/api/:", "a parameter is ':' followed by a name"),
        ("/api/:1d", "a parameter is ':' followed by a name"),
        ("/api/:id*", "a parameter is ':' followed by a name"),
        ("/api/./customers", "can never match"),
        ("/api/../customers", "can never match"),
        ("/api/admin;x", "can never match"),
        ("/api/admin.", "can never match"),
        ("/api/%2e", "can never match"),
        ("/api/ａdmin", "can never match"),
        ("/api/a\\b", "can never match"),
    ],
)
def test_invalid_patterns_are_config_errors_naming_them(pattern: str, why: str) -> None:
    with pytest.raises(
        ConfigError, match=re.escape(f"route pattern {pattern!r}") + ".*" + re.escape(why)
    ):
        RouteTemplates({"crm": [pattern]}, {})
    with pytest.raises(ConfigError):
        pattern_matches("/api/customers", pattern)


def test_case_insensitive_upstreams_need_lower_case_patterns() -> None:
    with pytest.raises(ConfigError, match="write 'Customers' as 'customers'"):
        RouteTemplates({"erp": ["/api/Customers/*"]}, {"erp": True})
    assert RouteTemplates({"crm": ["/api/Customers/*"]}, {"crm": False}).match(
        "crm", "/api/Customers/7"
    ) == ("/api/Customers/*",)
    ci = RouteTemplates({"erp": ["/api/:Entity/*"]}, {"erp": True})  # parameter names are free
    assert ci.match("erp", "/api/orders") == ("/api/:Entity/*",)


def test_match_returns_every_matching_pattern_of_the_upstream_sorted() -> None:
    patterns = ["*", "/api/customers/*", "/api/customers/:id", "/api/:entity/:id", "/api/orders/*"]
    templates = RouteTemplates({"crm": patterns, "erp": ["/api/customers/:id"]}, {})
    expected = ("*", "/api/:entity/:id", "/api/customers/*", "/api/customers/:id")
    assert templates.match("crm", "/api/customers/7") == expected
    assert templates.match("crm", "/api/customers/8") == expected  # same signature
    assert templates.match("crm", "/api/orders") == ("*", "/api/orders/*")
    assert templates.match("crm", "/other") == ("*",)
    assert templates.match("erp", "/api/orders/7") == ()
    assert templates.match("unknown", "/api/customers/7") == ()


def test_duplicate_patterns_appear_once() -> None:
    templates = RouteTemplates({"crm": ["/a/*", "/a/*", "/a/:x"]}, {})
    assert templates.match("crm", "/a/b") == ("/a/*", "/a/:x")


MODEL = """
[request_definition]
r = sub, obj
[policy_definition]
p = sub, obj
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = r.sub == p.sub && pathMatch(r.obj, p.obj)
"""
PATTERNS = [
    "*",
    "/",
    "/*",
    "/api/customers",
    "/api/customers/*",
    "/api/customers/:id",
    "/api/:entity/:id/orders",
    "/api/:entity/*",
    "/api/orders/:id/lines/*",
]


@pytest.fixture(scope="module")
def enforcer() -> casbin.Enforcer:
    model = Model()
    model.load_model_from_text(MODEL)
    enforcer = casbin.Enforcer(model)
    enforcer.add_function("pathMatch", pattern_matches)
    enforcer.add_policies([[f"role{i}", p] for i, p in enumerate(PATTERNS)])
    return enforcer


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api",
        "/api/customers",
        "/api/customers/7",
        "/api/customers/7/orders",
        "/api/orders/7/lines",
        "/api/orders/7/lines/2/x",
        "/api/orders//lines",
        "/x/y/z",
    ],
)
def test_casbin_with_pattern_matches_agrees_with_the_trie(
    enforcer: casbin.Enforcer, path: str
) -> None:
    signature = RouteTemplates({"crm": PATTERNS}, {}).match("crm", path)
    allowed_by_casbin = {p for i, p in enumerate(PATTERNS) if enforcer.enforce(f"role{i}", path)}
    assert allowed_by_casbin == set(signature)

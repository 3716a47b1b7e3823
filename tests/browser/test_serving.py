"""The console's HTTP surface: security headers, content types, only known files served."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from gateway.admin.console import ASSETS, CONTENT_SECURITY_POLICY
from tests.browser.apps import build_app
from tests.browser.asgi_server import AsgiServerThread
from tests.browser.standin_api import sample_data

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """One console (no OIDC) for the module: these tests only read."""
    with (
        AsgiServerThread(lambda url: build_app(sample_data())) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        yield http


def test_the_page_carries_a_strict_policy(client: httpx.Client) -> None:
    response = client.get("/console")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_the_page_has_no_inline_script_or_style(client: httpx.Client) -> None:
    html = client.get("/console").text
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S)
    assert scripts and all(body.strip() == "" for body in scripts)
    assert all('src="/console/static/' in tag for tag in re.findall(r"<script\b[^>]*>", html))
    assert "<style" not in html and " style=" not in html and " on" not in html.replace("\n", " ")


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("console.js", "text/javascript; charset=utf-8"),
        ("alerts.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
def test_assets_have_their_content_type_and_the_policy(
    client: httpx.Client, name: str, content_type: str
) -> None:
    response = client.get(f"/console/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.content == ASSETS[name][0]


@pytest.mark.parametrize(
    "path",
    [
        "/console/static/nope.js",
        "/console/static/console.py",
        "/console/static/..%2Fconsole.py",
        "/console/static/%2e%2e/oidc_login.py",
        "/console/static/../../errors.py",
        "/console/static/",
    ],
)
def test_only_the_console_files_are_served(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert b"import" not in response.content


def test_an_unknown_asset_is_a_problem_naming_it(client: httpx.Client) -> None:
    response = client.get("/console/static/nope.js")
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["reason_id"] == "console_asset_not_found"
    assert "nope.js" in response.json()["detail"]


def test_without_oidc_there_is_no_sign_in_route(client: httpx.Client) -> None:
    assert client.get("/console/config").json() == {"sso": False}
    assert client.get("/console/login").status_code == 404
    assert client.get("/console/callback?code=x&state=y").status_code == 404
    assert client.post("/console/session").status_code == 404

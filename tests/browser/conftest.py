"""Browser tests of the officers' console: headless Debian Chromium driven by Playwright.

The console router (and, for SSO, ``install_oidc``) is served by uvicorn on loopback next to
in-memory stand-ins of the officer API (``standin_api.py``). Chromium is required: without
it these tests fail (CI installs it); they never skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, sync_playwright

from gateway.admin import console
from gateway.admin.oidc_login import ConsoleOidcSettings, install_oidc
from tests.browser.asgi_server import AsgiServerThread
from tests.browser.oidc_provider import CLIENT_ID, CLIENT_SECRET, TinyOidcProvider
from tests.browser.standin_api import StandIn, install_standin, sample_data
from tests.support.servers import ServerThread

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SESSION_SECRET = "test-session-secret-0123456789abcdef0123456789"
OIDC_ENV = {"TEST_OIDC_SECRET": CLIENT_SECRET, "TEST_SESSION_SECRET": SESSION_SECRET}


def build_app(standin: StandIn, oidc: ConsoleOidcSettings | None = None) -> FastAPI:
    """An admin app as the lead builds it: problem handler, officer API (stand-in), console."""
    app = FastAPI()
    install_standin(app, standin)
    app.include_router(console.router)
    install_oidc(app, oidc, OIDC_ENV)
    return app


def oidc_settings(issuer: str, console_url: str) -> ConsoleOidcSettings:
    return ConsoleOidcSettings(
        issuer=issuer,
        client_id=CLIENT_ID,
        client_secret_env="TEST_OIDC_SECRET",
        redirect_url=f"{console_url}/console/callback",
        session_secret_env="TEST_SESSION_SECRET",
    )


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: install the Debian package `chromium` "
            "(CI does); the console's browser tests cannot run without it",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def standin() -> StandIn:
    return sample_data()


@pytest.fixture
def console_url(standin: StandIn) -> Iterator[str]:
    """The console with paste-a-token sign-in only."""
    with AsgiServerThread(lambda url: build_app(standin)) as server:
        yield server.url


@pytest.fixture
def provider(standin: StandIn) -> Iterator[TinyOidcProvider]:
    """A running OIDC provider; the ID tokens it issues are officers' tokens to the stand-in."""
    idp = TinyOidcProvider(on_issue=standin.officer_tokens.add)
    with ServerThread(idp.app_for):
        yield idp


@pytest.fixture
def sso_console_url(standin: StandIn, provider: TinyOidcProvider) -> Iterator[str]:
    """The console with OIDC sign-in through ``provider``."""
    with AsgiServerThread(lambda url: build_app(standin, oidc_settings(provider.issuer, url))) as s:
        yield s.url


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """Pages in fresh browser contexts; any uncaught script error fails the test."""
    contexts = []
    errors: list[str] = []

    def make(**context_options: object) -> Page:
        context = browser.new_context(**context_options)  # type: ignore[arg-type]
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(5000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"the console raised script errors: {errors}"


@pytest.fixture
def page(new_page: Callable[..., Page]) -> Page:
    return new_page()

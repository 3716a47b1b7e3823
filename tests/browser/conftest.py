"""Browser tests of the officers' console: headless Debian Chromium driven by Playwright.

The console router (and, for SSO, ``install_oidc``) is served by uvicorn on loopback next to
in-memory stand-ins of the officer API (``standin_api.py``). Chromium is required: without
it these tests fail (CI installs it); they never skip.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser.apps import build_app, oidc_settings
from tests.browser.asgi_server import AsgiServerThread
from tests.browser.oidc_provider import TinyOidcProvider
from tests.browser.standin_api import StandIn, sample_data
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


@pytest.fixture(autouse=True)
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Everything the server logged during the test, at every level, whatever another test
    configured (a CLI test may leave structlog writing to a closed stream at WARNING)."""
    saved = structlog.get_config()
    capture = structlog.testing.LogCapture()
    structlog.configure(
        processors=[capture],
        wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
        cache_logger_on_first_use=False,
    )
    try:
        yield capture.entries
    finally:
        structlog.configure(**saved)


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


@pytest.fixture(scope="package")
def _shared_standin() -> StandIn:
    return sample_data()


@pytest.fixture
def standin(_shared_standin: StandIn) -> StandIn:
    """The stand-in API's data, fresh for every test (the servers below outlive a test)."""
    _shared_standin.reset()
    return _shared_standin


@pytest.fixture(scope="package")
def _console_server(_shared_standin: StandIn) -> Iterator[AsgiServerThread]:
    with AsgiServerThread(lambda url: build_app(_shared_standin)) as server:
        yield server


@pytest.fixture
def console_url(standin: StandIn, _console_server: AsgiServerThread) -> str:
    """The console with paste-a-token sign-in only."""
    return _console_server.url


@pytest.fixture(scope="package")
def _provider(_shared_standin: StandIn) -> Iterator[TinyOidcProvider]:
    idp = TinyOidcProvider(on_issue=lambda token: _shared_standin.officer_tokens.add(token))
    with ServerThread(idp.app_for):
        yield idp


@pytest.fixture
def provider(standin: StandIn, _provider: TinyOidcProvider) -> TinyOidcProvider:
    """The running OIDC provider, its knobs and records reset; the ID tokens it issues are
    officers' tokens to the stand-in."""
    _provider.reset()
    return _provider


@pytest.fixture(scope="package")
def _sso_console_server(
    _shared_standin: StandIn, _provider: TinyOidcProvider
) -> Iterator[AsgiServerThread]:
    def make(url: str) -> FastAPI:
        return build_app(_shared_standin, oidc_settings(_provider.issuer, url))

    with AsgiServerThread(make) as server:
        yield server


@pytest.fixture
def sso_console_url(provider: TinyOidcProvider, _sso_console_server: AsgiServerThread) -> str:
    """The console with OIDC sign-in through ``provider``."""
    return _sso_console_server.url


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

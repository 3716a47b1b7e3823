"""The admin app the tests serve: the console router next to the officer API stand-in."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.admin import console
from gateway.admin.oidc_login import ConsoleOidcSettings, install_oidc
from tests.browser.oidc_provider import CLIENT_ID, CLIENT_SECRET
from tests.browser.standin_api import StandIn, install_standin

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

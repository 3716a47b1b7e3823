"""ConsoleOidcSettings and install_oidc: bad configuration stops the start, naming the fix."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from gateway.admin.oidc_login import ConsoleOidcSettings, install_oidc
from gateway.errors import ConfigError
from tests.browser.apps import OIDC_ENV, oidc_settings
from tests.browser.oidc_provider import CLIENT_ID

VALID = {
    "issuer": "https://login.example.com/realms/corp",
    "client_id": CLIENT_ID,
    "redirect_url": "https://wardgate-admin.example.com/console/callback",
}


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"issuer": "http://login.example.com"}, "must be an https:// URL"),
        ({"discovery_url": "ftp://login.example.com/x"}, "must be an https:// URL"),
        ({"redirect_url": "http://admin.example.com/console/callback"}, "https://"),
        ({"redirect_url": "https://admin.example.com/callback"}, "must end in /console/callback"),
        ({"redirect_url": "https://a.example.com/console/callback?next=x"}, "with no query"),
        ({"scopes": ["profile"]}, "must include 'openid'"),
        ({"client_id": ""}, "at least 1 character"),
        ({"hand_over": "refresh_token"}, "'id_token' or 'access_token'"),
        ({"surprise": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(
    change: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        ConsoleOidcSettings.model_validate({**VALID, **change})


def test_loopback_http_is_allowed_for_tests_and_the_demo() -> None:
    settings = ConsoleOidcSettings.model_validate(
        {
            **VALID,
            "issuer": "http://localhost:8090/",
            "redirect_url": "http://127.0.0.1:8081/console/callback",
        }
    )
    assert settings.issuer == "http://localhost:8090"
    assert settings.metadata_url == "http://localhost:8090/.well-known/openid-configuration"


@pytest.mark.parametrize(
    ("environ", "complaint"),
    [
        ({"TEST_OIDC_SECRET": "s"}, "set TEST_SESSION_SECRET to at least 32 random characters"),
        ({**OIDC_ENV, "TEST_SESSION_SECRET": "short"}, "TEST_SESSION_SECRET to at least 32"),
        ({"TEST_SESSION_SECRET": OIDC_ENV["TEST_SESSION_SECRET"]}, "TEST_OIDC_SECRET is empty"),
    ],
)
def test_missing_secrets_stop_the_start(environ: dict[str, str], complaint: str) -> None:
    settings = oidc_settings("https://login.example.com", "https://admin.example.com")
    app = FastAPI()
    with pytest.raises(ConfigError, match=complaint):
        install_oidc(app, settings, environ)
    assert app.user_middleware == []


def test_a_public_client_needs_no_secret() -> None:
    settings = oidc_settings("https://login.example.com", "https://admin.example.com")
    public = settings.model_copy(update={"client_secret_env": None})
    app = FastAPI()
    install_oidc(app, public, {"TEST_SESSION_SECRET": OIDC_ENV["TEST_SESSION_SECRET"]})
    assert len(app.user_middleware) == 1

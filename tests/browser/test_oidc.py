"""OIDC sign-in to the console (Authlib, code flow + PKCE) against a provider on loopback."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Page, Response, expect

from gateway.admin.oidc_login import (
    HANDOFF_COOKIE,
    LOGIN_COOKIE,
)
from tests.browser.apps import build_app, oidc_settings
from tests.browser.asgi_server import AsgiServerThread
from tests.browser.oidc_provider import SUBJECT, TinyOidcProvider, s256
from tests.browser.standin_api import StandIn

pytestmark = pytest.mark.browser
SSO_LINK = "Sign in with your company account"
TOKEN_KEY = "wardgate.console.token"


def sso_sign_in(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/console")
    page.get_by_role("link", name=SSO_LINK).click()


def test_sign_in_completes_and_the_token_never_touches_a_url_or_a_log(
    page: Page,
    sso_console_url: str,
    provider: TinyOidcProvider,
    standin: StandIn,
    logs: list[MutableMapping[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # Authlib logs the PKCE verifier at debug level
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    responses: list[Response] = []
    page.on("response", lambda r: responses.append(r))
    sso_sign_in(page, sso_console_url)
    expect(page.locator("table.alerts tbody tr")).to_have_count(2)
    expect(page.locator("#nav")).to_be_visible()
    (id_token,) = provider.issued
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") == id_token
    assert standin.calls[-1].authorization == f"Bearer {id_token}"
    assert not [u for u in urls if id_token in u or "access_token" in u]
    assert page.url == f"{sso_console_url}/console"
    # Authlib sent PKCE (S256), state and nonce; the provider checked the verifier.
    (authorize,) = provider.authorize_requests
    assert authorize["code_challenge_method"] == "S256"
    assert authorize["state"] and authorize["nonce"]
    (exchange,) = provider.token_requests
    assert s256(exchange["code_verifier"]) == authorize["code_challenge"]
    # The hand-off cookie: HttpOnly, SameSite=Strict, one path, one minute; then gone.
    (callback,) = [r for r in responses if "/console/callback" in r.url]
    (cookie,) = [
        h["value"] for h in callback.headers_array() if h["value"].startswith(HANDOFF_COOKIE)
    ]
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/console/session", "max-age=60"} <= attributes
    assert all(c["name"] != HANDOFF_COOKIE for c in page.context.cookies())
    status = page.evaluate("fetch('/console/session', {method: 'POST'}).then(r => r.status)")
    assert status == 204
    assert {"event": "console sign-in", "subject": SUBJECT, "log_level": "info"} in logs
    assert not [entry for entry in logs if id_token in repr(entry)]
    assert not [entry for entry in logs if exchange["code_verifier"] in repr(entry)]
    assert id_token not in caplog.text and exchange["code_verifier"] not in caplog.text


def test_the_login_state_cookie_is_scoped_and_short_lived(
    page: Page, sso_console_url: str, provider: TinyOidcProvider
) -> None:
    responses: list[Response] = []
    page.on("response", lambda r: responses.append(r))
    sso_sign_in(page, sso_console_url)
    expect(page.locator("table.alerts")).to_be_visible()
    (login,) = [r for r in responses if r.url.endswith("/console/login")]
    (cookie,) = [c["value"] for c in login.headers_array() if c["value"].startswith(LOGIN_COOKIE)]
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/console", "max-age=600"} <= attributes
    assert login.headers["location"].startswith(f"{provider.issuer}/authorize?")


def test_a_callback_this_browser_did_not_start_is_refused(
    page: Page,
    sso_console_url: str,
    provider: TinyOidcProvider,
    logs: list[MutableMapping[str, Any]],
) -> None:
    """Login CSRF: an attacker's own code and state, sent to the officer's browser."""
    page.goto(f"{sso_console_url}/console/callback?code=attackers-code&state=attackers-state")
    expect(page.locator("#notice")).to_contain_text(
        "Sign-in did not complete: the answer from the identity provider does not belong"
    )
    expect(page.get_by_role("link", name=SSO_LINK)).to_be_visible()
    assert provider.token_requests == []
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None
    assert {
        "event": "console sign-in failed",
        "reason_id": "sso_state_mismatch",
        "log_level": "warning",
    } in logs
    assert page.url == f"{sso_console_url}/console"


def test_a_replayed_callback_is_refused(
    page: Page, sso_console_url: str, provider: TinyOidcProvider
) -> None:
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if "/console/callback" in r.url else None)
    sso_sign_in(page, sso_console_url)
    expect(page.locator("table.alerts")).to_be_visible()
    page.evaluate("sessionStorage.clear()")
    page.goto(callbacks[0])
    expect(page.locator("#notice")).to_contain_text("Sign-in did not complete")
    assert len(provider.token_requests) == 1


def test_the_user_declining_at_the_provider_is_explained(
    page: Page, sso_console_url: str, provider: TinyOidcProvider
) -> None:
    provider.deny = True
    sso_sign_in(page, sso_console_url)
    expect(page.locator("#notice")).to_have_text(
        "The identity provider did not sign you in. Try again, or paste a token."
    )
    assert provider.token_requests == []


@pytest.mark.parametrize(
    "forgery",
    ["wrong_key", "wrong_nonce", "wrong_audience", "wrong_issuer", "expired"],
)
def test_a_forged_or_stale_id_token_is_refused(
    page: Page,
    sso_console_url: str,
    provider: TinyOidcProvider,
    standin: StandIn,
    forgery: str,
) -> None:
    now = int(time.time())
    if forgery == "wrong_key":
        provider.signer = provider.forged_signer()
    forgeries: dict[str, dict[str, Any]] = {
        "wrong_key": {},
        "wrong_nonce": {"nonce": "not-the-one-we-sent"},
        "wrong_audience": {"aud": "another-client"},
        "wrong_issuer": {"iss": "http://localhost:1/evil"},
        "expired": {"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600},
    }
    provider.forge = forgeries[forgery]
    sso_sign_in(page, sso_console_url)
    expect(page.locator("#notice")).to_have_text(
        "The identity provider's ID token failed verification, so sign-in was refused. "
        "Tell your Wardgate administrator."
    )
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None
    assert all(c.path != "/api/alerts" for c in standin.calls)


def test_hand_over_access_token_gives_the_page_the_access_token(
    page: Page, provider: TinyOidcProvider, standin: StandIn
) -> None:
    def make(url: str) -> FastAPI:
        settings = oidc_settings(provider.issuer, url)
        return build_app(standin, settings.model_copy(update={"hand_over": "access_token"}))

    with AsgiServerThread(make) as server:
        sso_sign_in(page, server.url)
        expect(page.locator("table.alerts tbody tr")).to_have_count(2)
    (access_token,) = provider.access_tokens
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") == access_token
    assert standin.calls[-1].authorization == f"Bearer {access_token}"


def test_a_discovery_document_for_another_issuer_is_refused(
    page: Page, provider: TinyOidcProvider, standin: StandIn
) -> None:
    def make(url: str) -> FastAPI:
        settings = oidc_settings(f"{provider.issuer}/realms/corp", url).model_copy(
            update={"discovery_url": f"{provider.issuer}/.well-known/openid-configuration"}
        )
        return build_app(standin, settings)

    with AsgiServerThread(make) as server:
        sso_sign_in(page, server.url)
        expect(page.locator("#notice")).to_contain_text("names a different issuer")
    assert provider.authorize_requests == []


def test_an_unreachable_provider_is_explained(page: Page, standin: StandIn) -> None:
    with AsgiServerThread(
        lambda url: build_app(standin, oidc_settings("http://127.0.0.1:9", url))
    ) as s:
        sso_sign_in(page, s.url)
        expect(page.locator("#notice")).to_have_text(
            "The identity provider could not be reached. Try again later, or paste a token."
        )


def test_the_hand_off_is_refused_to_other_sites(sso_console_url: str) -> None:
    with httpx.Client(base_url=sso_console_url) as http:
        http.cookies.set(HANDOFF_COOKIE, "a-token", path="/console/session")
        refused = http.post("/console/session", headers={"sec-fetch-site": "same-site"})
        assert refused.status_code == 403
        assert refused.json()["reason_id"] == "sso_cross_site"
        taken = http.post("/console/session", headers={"sec-fetch-site": "same-origin"})
        assert taken.json() == {"token": "a-token"}
        assert taken.headers["cache-control"] == "no-store"


def test_the_page_offers_sso_only_when_configured(
    new_page: Callable[..., Page], console_url: str, sso_console_url: str
) -> None:
    with_sso, without = new_page(), new_page()
    with_sso.goto(f"{sso_console_url}/console")
    without.goto(f"{console_url}/console")
    expect(with_sso.get_by_role("link", name=SSO_LINK)).to_be_visible()
    expect(without.get_by_label("Officer bearer token or API key")).to_be_visible()
    expect(without.get_by_role("link", name=SSO_LINK)).to_have_count(0)


@pytest.mark.parametrize("reason", ["you_have_been_hacked", "constructor", "__proto__"])
def test_an_unknown_sso_error_id_is_not_echoed(
    page: Page, sso_console_url: str, reason: str
) -> None:
    page.goto(f"{sso_console_url}/console#sso_error={reason}")
    expect(page.locator("#notice")).to_have_text(
        "Sign-in with your company account failed. Try again."
    )

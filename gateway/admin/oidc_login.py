"""Officers sign in to the console with the company's OpenID Connect provider (optional).

Authorization code flow with PKCE (S256); Authlib creates and checks ``state`` and
``nonce`` and verifies the ID token (signature against the provider's JWKS, issuer,
audience, expiry). Authlib keeps that per-login state (PKCE verifier, nonce) in Starlette's
session cookie: signed, not encrypted, HttpOnly, scoped to ``/console``, valid ten minutes.

The threat this module handles is the token leaking on its way to the page. It never goes
into a URL (browser history, proxy and access logs, ``Referer``) or a log line: the callback
puts it in a one-minute HttpOnly ``SameSite=Strict`` cookie readable only by
``POST /console/session``, which hands it to the page once and deletes the cookie. The page
keeps it in ``sessionStorage`` and sends it as a bearer token, like a pasted one.

    GET  /console/login     → redirect to the provider
    GET  /console/callback  → checks the answer, sets the hand-off cookie, → /console
    POST /console/session   → {"token": …} once, or 204 when there is none

A failed sign-in returns to ``/console#sso_error=<reason id>``: a fixed id, never text the
provider or an attacker chose.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import structlog
from authlib.integrations.base_client import (
    MismatchingStateError,
    OAuthError,
)

with warnings.catch_warnings():
    # Authlib 1.9 warns on import that it will move from httpx to httpx2; every `wardgate`
    # command would print it. Its client raises httpx errors today, caught below.
    warnings.filterwarnings("ignore", "The httpx module is deprecated", DeprecationWarning)
    from authlib.integrations.starlette_client import (
        OAuth,
        StarletteOAuth2App,
    )
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from joserfc.errors import JoseError
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.middleware.sessions import SessionMiddleware

from gateway.errors import ConfigError, Forbidden

log = structlog.get_logger(__name__)

CALLBACK_PATH = "/console/callback"
HANDOFF_COOKIE = "wardgate_console_token"
HANDOFF_PATH = "/console/session"
HANDOFF_MAX_AGE_S = 60
LOGIN_COOKIE = "wardgate_console_login"
LOGIN_MAX_AGE_S = 600
MIN_SESSION_SECRET = 32
# Browsers drop cookies over 4096 bytes; refuse clearly instead of losing the token.
MAX_HANDOFF_TOKEN = 3800
_STATE_KEY = "console_oidc"
_NO_STORE = {"cache-control": "no-store", "referrer-policy": "no-referrer"}


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ip_address(host).is_loopback
    except ValueError:
        return False


def _secure_url(value: str) -> str:
    """https, or http on loopback only (tests, ``wardgate demo``): tokens travel here."""
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and _loopback(parts.hostname):
        return value
    raise ValueError("must be an https:// URL (http:// only for localhost or 127.0.0.1)")


class ConsoleOidcSettings(BaseModel):
    """``admin.console_oidc``: OpenID Connect sign-in for the console (None = paste a token).

    The provider must issue tokens the admin API accepts: with ``hand_over: id_token``, list
    the provider in ``issuers`` with ``audience`` = ``client_id``; with ``access_token``,
    its access tokens must be JWTs for an audience listed there.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(description="e.g. https://login.example.com/realms/corp")
    discovery_url: str | None = Field(
        default=None, description="default: <issuer>/.well-known/openid-configuration"
    )
    client_id: str = Field(min_length=1)
    client_secret_env: str | None = Field(
        default="WARDGATE_CONSOLE_OIDC_SECRET",
        description="environment variable holding the client secret; null = public client",
    )
    redirect_url: str = Field(description="https://<admin host>/console/callback")
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    hand_over: Literal["id_token", "access_token"] = "id_token"
    session_secret_env: str = Field(
        default="WARDGATE_CONSOLE_SESSION_SECRET",
        description="environment variable with >= 32 random characters, the same on every "
        "instance (signs the login-state cookie)",
    )

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, v: str) -> str:
        return _secure_url(v).rstrip("/")

    @field_validator("discovery_url")
    @classmethod
    def _discovery(cls, v: str | None) -> str | None:
        return None if v is None else _secure_url(v)

    @field_validator("redirect_url")
    @classmethod
    def _redirect(cls, v: str) -> str:
        _secure_url(v)
        if urlsplit(v).path != CALLBACK_PATH or urlsplit(v).query:
            raise ValueError(f"must end in {CALLBACK_PATH}, with no query")
        return v

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, v: list[str]) -> list[str]:
        if "openid" not in v:
            raise ValueError("must include 'openid' (the ID token proves who signed in)")
        return v

    @property
    def metadata_url(self) -> str:
        return self.discovery_url or f"{self.issuer}/.well-known/openid-configuration"


@dataclass(frozen=True, slots=True)
class _Login:
    """What the routes need, built once by ``install_oidc``."""

    settings: ConsoleOidcSettings
    client: StarletteOAuth2App
    secure_cookies: bool


class _SignInFailed(Exception):
    def __init__(self, reason_id: str) -> None:
        super().__init__(reason_id)
        self.reason_id = reason_id


def sso_enabled(app: FastAPI) -> bool:
    """True when ``install_oidc`` configured a provider for this app."""
    return getattr(app.state, _STATE_KEY, None) is not None


def install_oidc(
    app: FastAPI,
    settings: ConsoleOidcSettings | None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Add OIDC sign-in to the admin app, or record that there is none (``settings`` None).

    Call before the app starts. Raises ``ConfigError`` naming the environment variable
    when a secret is missing or too short.
    """
    setattr(app.state, _STATE_KEY, None)
    if settings is None:
        return
    env = os.environ if environ is None else environ
    session_secret = env.get(settings.session_secret_env, "")
    if len(session_secret) < MIN_SESSION_SECRET:
        raise ConfigError(
            f"admin.console_oidc: set {settings.session_secret_env} to at least "
            f"{MIN_SESSION_SECRET} random characters (e.g. `openssl rand -hex 32`), the same "
            "on every instance"
        )
    client_secret = None
    if settings.client_secret_env is not None:
        client_secret = env.get(settings.client_secret_env) or None
        if client_secret is None:
            raise ConfigError(
                f"admin.console_oidc: {settings.client_secret_env} is empty; set it to the "
                "client secret, or set client_secret_env: null for a public client"
            )
    oauth = OAuth()
    client = oauth.register(
        name="console",
        client_id=settings.client_id,
        client_secret=client_secret,
        server_metadata_url=settings.metadata_url,
        client_kwargs={
            "scope": " ".join(settings.scopes),
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic" if client_secret else "none",
            "timeout": 10.0,
        },
    )
    # Authlib logs the PKCE code_verifier at debug level; keep it out of every log.
    logging.getLogger("authlib.integrations.base_client.sync_app").setLevel(logging.INFO)
    secure = urlsplit(settings.redirect_url).scheme == "https"
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret,
        session_cookie=LOGIN_COOKIE,
        max_age=LOGIN_MAX_AGE_S,
        path="/console",
        same_site="lax",  # the provider's redirect back is a cross-site navigation
        https_only=secure,
    )
    setattr(app.state, _STATE_KEY, _Login(settings, client, secure))
    app.include_router(router)


router = APIRouter(include_in_schema=False)


def _login(request: Request) -> _Login:
    login: _Login | None = getattr(request.app.state, _STATE_KEY, None)
    if login is None:  # the router is only included by install_oidc; guard anyway
        raise Forbidden("console sign-in with OIDC is not configured", reason_id="sso_disabled")
    return login


def _back_to_console(reason_id: str | None = None) -> RedirectResponse:
    target = "/console" if reason_id is None else f"/console#sso_error={reason_id}"
    return RedirectResponse(target, status_code=303, headers=_NO_STORE)


@router.get("/console/login")
async def start_login(request: Request) -> Response:
    """Redirect to the provider's authorization endpoint (PKCE, state, nonce)."""
    login = _login(request)
    try:
        await _check_provider(login)
        redirect: Response = await login.client.authorize_redirect(
            request, login.settings.redirect_url
        )
    except _SignInFailed as failed:
        log.warning("console sign-in not started", reason_id=failed.reason_id)
        return _back_to_console(failed.reason_id)
    redirect.headers.update(_NO_STORE)
    return redirect


@router.get(CALLBACK_PATH)
async def finish_login(request: Request) -> Response:
    """Check the provider's answer and hand the token to the page through a cookie."""
    login = _login(request)
    try:
        handed, subject = await _exchange_code(login, request)
    except _SignInFailed as failed:
        log.warning("console sign-in failed", reason_id=failed.reason_id)
        return _back_to_console(failed.reason_id)
    log.info("console sign-in", subject=subject)
    response = _back_to_console()
    response.set_cookie(
        HANDOFF_COOKIE,
        handed,
        max_age=HANDOFF_MAX_AGE_S,
        path=HANDOFF_PATH,
        httponly=True,
        samesite="strict",
        secure=login.secure_cookies,
    )
    return response


async def _check_provider(login: _Login) -> None:
    """The discovery document must name our issuer (OIDC Discovery 4.3) and its endpoints."""
    try:
        metadata = await login.client.load_server_metadata()
    except (httpx.HTTPError, ValueError) as exc:  # unreachable, 5xx, or not JSON
        log.warning("console sign-in: discovery failed", error=type(exc).__name__)
        raise _SignInFailed("sso_provider_unreachable") from None
    if str(metadata.get("issuer", "")).rstrip("/") != login.settings.issuer or not all(
        metadata.get(key) for key in ("authorization_endpoint", "token_endpoint", "jwks_uri")
    ):
        raise _SignInFailed("sso_provider_misconfigured")


async def _exchange_code(login: _Login, request: Request) -> tuple[str, str | None]:
    """The token to hand over and the verified subject.

    Authlib checks ``state``, sends the PKCE verifier, and verifies the ID token
    (signature, issuer, audience, expiry) and its ``nonce``.
    """
    try:
        token: dict[str, Any] = await login.client.authorize_access_token(request)
    except MismatchingStateError:
        raise _SignInFailed("sso_state_mismatch") from None
    except OAuthError as exc:
        reason = "sso_denied" if request.query_params.get("error") else "sso_code_refused"
        log.warning("console sign-in: provider said no", error=str(exc.error)[:64])
        raise _SignInFailed(reason) from None
    except JoseError as exc:
        log.warning("console sign-in: ID token rejected", error=type(exc).__name__)
        raise _SignInFailed("sso_id_token_invalid") from None
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("console sign-in: provider unreachable", error=type(exc).__name__)
        raise _SignInFailed("sso_provider_unreachable") from None
    claims = token.get("userinfo")
    if not claims:  # no ID token came back: nobody proved who signed in
        raise _SignInFailed("sso_id_token_missing")
    handed = str(token.get(login.settings.hand_over) or "")
    if not handed:
        raise _SignInFailed("sso_token_missing")
    if len(handed) > MAX_HANDOFF_TOKEN:
        raise _SignInFailed("sso_token_too_large")
    return handed, claims.get("sub")


@router.post(HANDOFF_PATH)
async def take_token(request: Request) -> Response:
    """Give the page the token from the callback once; 204 when there is none."""
    _login(request)
    if request.headers.get("sec-fetch-site", "same-origin") != "same-origin":
        raise Forbidden(
            "the console session is only handed to the console page itself",
            reason_id="sso_cross_site",
        )
    token = request.cookies.get(HANDOFF_COOKIE)
    if not token:
        return Response(status_code=204, headers=_NO_STORE)
    response = JSONResponse({"token": token}, headers=_NO_STORE)
    response.delete_cookie(HANDOFF_COOKIE, path=HANDOFF_PATH, httponly=True, samesite="strict")
    return response

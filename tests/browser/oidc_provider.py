"""A tiny OpenID Connect provider for the console's sign-in tests (aiohttp, loopback).

Discovery, an authorize endpoint that signs the user in at once and redirects back with a
code, a token endpoint that checks the client secret, the redirect URI and the PKCE
verifier (S256) and returns an RS256-signed ID token, and the JWKS. Its issuer uses the
name ``localhost`` while the console runs on ``127.0.0.1``: two sites, as in production,
so the browser applies its cross-site cookie rules to the redirects.

Knobs for adversarial tests: ``forge`` (claims that override the ID token's), ``signer``
(another key), ``deny`` (the user refuses consent).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import BasicAuth, web

from gateway.demo.idp import DemoIdP

CLIENT_ID = "wardgate-console"
CLIENT_SECRET = "console-client-secret-5d1e"
SUBJECT = "olga.officer"


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class TinyOidcProvider:
    """Build with ``app_for(url)`` (a ``ServerThread`` factory); read what it saw after.

    ``on_issue`` is called with every token it issues (ID and access token).
    """

    def __init__(self, on_issue: Callable[[str], None]) -> None:
        self.on_issue = on_issue
        self.issuer = ""
        self.idp: DemoIdP | None = None
        self.reset()

    def reset(self) -> None:
        """Honest again, with nothing seen: between tests sharing one running provider."""
        self.signer: DemoIdP | None = None
        self.forge: dict[str, Any] = {}
        self.deny = False
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.issued: list[str] = []  # ID tokens
        self.access_tokens: list[str] = []
        self._codes: dict[str, dict[str, str]] = {}

    def app_for(self, url: str) -> web.Application:
        self.issuer = url.replace("127.0.0.1", "localhost")
        self.idp = DemoIdP(self.issuer)
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        app.router.add_get("/jwks.json", self._jwks)
        return app

    def forged_signer(self) -> DemoIdP:
        """A key not in the JWKS that claims the real key's id."""
        assert self.idp is not None
        impostor = DemoIdP(self.issuer)
        impostor.kid = self.idp.kid
        return impostor

    async def _discovery(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks.json",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        assert self.idp is not None
        return web.json_response(self.idp.jwks())

    async def _authorize(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.authorize_requests.append(q)
        problems = [
            q.get("client_id") != CLIENT_ID and "client_id",
            q.get("response_type") != "code" and "response_type",
            "openid" not in q.get("scope", "").split() and "scope",
            q.get("code_challenge_method") != "S256" and "code_challenge_method",
            not q.get("code_challenge") and "code_challenge",
            not q.get("state") and "state",
            not q.get("redirect_uri") and "redirect_uri",
        ]
        if any(problems):
            return web.Response(status=400, text=f"bad authorize request: {problems}")
        if self.deny:
            back = {"error": "access_denied", "state": q["state"]}
            raise web.HTTPFound(f"{q['redirect_uri']}?{urlencode(back)}")
        code = secrets.token_urlsafe(24)
        self._codes[code] = {
            "redirect_uri": q["redirect_uri"],
            "challenge": q["code_challenge"],
            "nonce": q.get("nonce", ""),
        }
        raise web.HTTPFound(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}")

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests.append({k: str(v) for k, v in form.items()})
        try:
            auth = BasicAuth.decode(request.headers.get("authorization", ""))
        except ValueError:
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self._codes.pop(str(form.get("code")), None)  # one use only
        refused = (
            (auth.login, auth.password) != (CLIENT_ID, CLIENT_SECRET)
            or form.get("grant_type") != "authorization_code"
            or grant is None
            or form.get("redirect_uri") != grant["redirect_uri"]
            or s256(str(form.get("code_verifier", ""))) != grant["challenge"]
        )
        if refused or grant is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        signer = self.signer or self.idp
        assert signer is not None
        claims = {"nonce": grant["nonce"], "name": "Olga Officer", **self.forge}
        id_token = signer.issue(SUBJECT, audience=CLIENT_ID, ttl_s=600, extra=claims)
        access_token = secrets.token_urlsafe(32)
        self.issued.append(id_token)
        self.access_tokens.append(access_token)
        self.on_issue(id_token)
        self.on_issue(access_token)
        return web.json_response(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 600,
                "id_token": id_token,
            },
            headers={"cache-control": "no-store"},
        )

"""The demo IdP: its tokens verify with python-jose against the JWKS it serves, and only then."""

from __future__ import annotations

import time

import aiohttp
import pytest
from jose import jwt
from jose.exceptions import ExpiredSignatureError, JWTClaimsError, JWTError

from gateway.demo.idp import DemoIdP

AUDIENCE = "wardgate"


async def served_jwks(http: aiohttp.ClientSession, idp: DemoIdP) -> dict:
    """Discover the JWKS the way a relying party does: issuer → discovery → jwks_uri."""
    async with http.get(f"{idp.issuer}/.well-known/openid-configuration") as response:
        assert response.status == 200
        discovery = await response.json()
    assert discovery["issuer"] == idp.issuer
    assert discovery["id_token_signing_alg_values_supported"] == ["RS256"]
    async with http.get(discovery["jwks_uri"]) as response:
        assert response.status == 200
        return await response.json()


def verify(token: str, jwks: dict, issuer: str, audience: str = AUDIENCE) -> dict:
    return jwt.decode(token, jwks, algorithms=["RS256"], audience=audience, issuer=issuer)


async def test_tokens_verify_against_the_served_jwks(idp: DemoIdP, http) -> None:
    jwks = await served_jwks(http, idp)
    token = idp.issue("sales01", audience=AUDIENCE, extra={"roles": ["sales"]})
    claims = verify(token, jwks, idp.issuer)
    assert claims["sub"] == "sales01" and claims["roles"] == ["sales"]
    assert claims["iss"] == idp.issuer and idp.issuer.startswith("http://127.0.0.1:")
    assert claims["exp"] - claims["iat"] == 3600
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT", "kid": idp.kid}
    assert [k["kid"] for k in jwks["keys"]] == [idp.kid]


async def test_the_jwks_and_the_repr_hold_no_private_key_material(idp: DemoIdP, http) -> None:
    jwks = await served_jwks(http, idp)
    assert set(jwks["keys"][0]) == {"kty", "n", "e", "use", "alg", "kid"}
    assert "PRIVATE" not in repr(idp) and "PRIVATE" not in str(idp)


async def test_wrong_audience_expired_and_future_tokens_fail(idp: DemoIdP, http) -> None:
    jwks = await served_jwks(http, idp)
    with pytest.raises(JWTClaimsError):
        verify(idp.issue("a", audience="someone-else"), jwks, idp.issuer)
    with pytest.raises(ExpiredSignatureError):
        verify(idp.issue("a", audience=AUDIENCE, iat=time.time() - 7200), jwks, idp.issuer)
    with pytest.raises(JWTClaimsError):
        verify(idp.issue("a", audience=AUDIENCE, iat=time.time() + 600), jwks, idp.issuer)
    with pytest.raises(JWTClaimsError):
        verify(idp.issue("a", audience=AUDIENCE, extra={"iss": "https://evil"}), jwks, idp.issuer)


async def test_a_token_from_another_key_or_tampered_does_not_verify(idp: DemoIdP, http) -> None:
    jwks = await served_jwks(http, idp)
    stranger = DemoIdP(idp.issuer)  # same issuer name, different key
    assert stranger.kid != idp.kid
    with pytest.raises(JWTError):
        verify(stranger.issue("a", audience=AUDIENCE), jwks, idp.issuer)
    header, _payload, signature = idp.issue("sales01", audience=AUDIENCE).split(".")
    forged_payload = jwt.encode({"sub": "officer"}, "k", algorithm="HS256").split(".")[1]
    with pytest.raises(JWTError):
        verify(f"{header}.{forged_payload}.{signature}", jwks, idp.issuer)


def test_a_list_audience_and_token_ids_are_unique() -> None:
    idp = DemoIdP("http://idp.test/")
    assert idp.issuer == "http://idp.test"
    tokens = [idp.issue("a", audience=["wardgate", "crm"], ttl_s=60) for _ in range(2)]
    claims = [jwt.get_unverified_claims(t) for t in tokens]
    assert claims[0]["aud"] == ["wardgate", "crm"]
    assert claims[0]["jti"] != claims[1]["jti"]
    assert verify(tokens[0], idp.jwks(), idp.issuer, audience="crm")["sub"] == "a"

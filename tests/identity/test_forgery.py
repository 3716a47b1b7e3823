"""Forged and broken tokens: each is refused with the reason id a client and the audit see."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk as jose_jwk

from gateway.identity import Identifier

from .conftest import (
    ISSUER,
    JwksServer,
    MakeIdentifier,
    SigningKey,
    b64url,
    claims,
    ec_key,
    hs256,
    issuer_settings,
    rsa_key,
    unsigned,
)
from .test_jwt import refused


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", "", None])
async def test_alg_none_refused(identifier: Identifier, key: SigningKey, alg: str | None) -> None:
    header = {"alg": alg, "kid": key.kid, "typ": "JWT"}
    assert await refused(identifier, unsigned(header, claims())) == "token_algorithm_refused"
    # ... also with a real signature of the same claims glued on.
    real_sig = key.sign(claims()).rsplit(".", 1)[1]
    forged = unsigned(header, claims(), real_sig)
    assert await refused(identifier, forged) == "token_algorithm_refused"


@pytest.mark.parametrize("encoding", ["pem", "der"])
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
async def test_hmac_with_public_key_refused(
    identifier: Identifier, key: SigningKey, encoding: str, alg: str
) -> None:
    secret = key.public_pem if encoding == "pem" else key.public_der
    token = hs256(secret, {"alg": alg, "kid": key.kid, "typ": "JWT"}, claims())
    assert await refused(identifier, token) == "token_algorithm_refused"


async def test_unknown_kid(identifier: Identifier) -> None:
    stranger = rsa_key("not-published", slot="stranger")
    assert await refused(identifier, stranger.sign(claims())) == "token_unknown_key"


@pytest.mark.parametrize("kid", [None, "", 7, ["k1"], {"k": "k1"}])
async def test_kid_missing_or_not_a_string(
    identifier: Identifier, key: SigningKey, kid: object
) -> None:
    token = key.sign(claims(), kid=kid)
    assert await refused(identifier, token) == "token_unknown_key"


@pytest.mark.parametrize("kid", ["../../x", "../jwks", "/etc/passwd", "k1/../k1", "%2e%2e/x"])
async def test_kid_with_path_characters(
    identifier: Identifier, jwks_server: JwksServer, kid: str
) -> None:
    token = rsa_key(kid, slot="stranger").sign(claims())
    assert await refused(identifier, token) == "token_unknown_key"
    # The kid is a dictionary key only: the JWKS URL fetched never changes.
    assert set(jwks_server.requests) == {"/jwks"}


async def test_tampered_payload(identifier: Identifier, key: SigningKey) -> None:
    good = key.sign(claims(sub="alice", roles=["sales"]))
    other = key.sign(claims(sub="mallory", roles=["officer"]))
    header, _, signature = good.split(".")
    forged = f"{header}.{other.split('.')[1]}.{signature}"
    assert await refused(identifier, forged) == "token_invalid"


async def test_flipped_signature_bit(identifier: Identifier, key: SigningKey) -> None:
    header, payload, signature = key.sign(claims()).split(".")
    flipped = ("A" if signature[10] != "A" else "B").join([signature[:10], signature[11:]])
    assert await refused(identifier, f"{header}.{payload}.{flipped}") == "token_invalid"


async def test_same_kid_different_key(identifier: Identifier, key: SigningKey) -> None:
    impostor = rsa_key(key.kid, slot="impostor")
    assert await refused(identifier, impostor.sign(claims())) == "token_invalid"


@pytest.mark.parametrize("header_name", ["jku", "x5u"])
async def test_key_url_headers_never_fetched(
    identifier: Identifier, attacker_server: JwksServer, header_name: str
) -> None:
    attacker = rsa_key("attacker", slot="attacker")
    attacker_server.publish(attacker)
    url = attacker_server.url + "/jwks.json"
    token = attacker.sign(claims(), **{header_name: url})
    assert await refused(identifier, token) == "token_unknown_key"
    # Same kid as the real key: the real key is used, so the signature fails.
    impostor = rsa_key("k1", slot="attacker")
    forged = impostor.sign(claims(), **{header_name: url})
    assert await refused(identifier, forged) == "token_invalid"
    assert attacker_server.requests == []


async def test_embedded_jwk_and_x5c_ignored(
    identifier: Identifier, attacker_server: JwksServer
) -> None:
    attacker = rsa_key("k1", slot="attacker")
    embedded = attacker.public_jwk()
    for headers in ({"jwk": embedded}, {"x5c": [b64url(attacker.public_der)]}):
        token = attacker.sign(claims(), **headers)
        assert await refused(identifier, token) == "token_invalid"
    assert attacker_server.requests == []


async def test_jwks_keys_of_wrong_type_ignored(
    jwks_server: JwksServer, key: SigningKey, make_identifier: MakeIdentifier
) -> None:
    secret = b"s3cret-shared-with-nobody-but-the-attacker"
    ec = ec_key("ec1")
    short_rsa = jose_jwk.construct(_short_rsa_public_pem(), "RS256").to_dict()  # 1024 bits
    jwks_server.publish(
        key,
        {"kty": "oct", "kid": "hmac", "k": b64url(secret)},
        ec,
        {**short_rsa, "kid": "short"},
        {**rsa_key("enc", slot="enc").public_jwk(), "use": "enc"},
    )
    identifier = make_identifier(issuer_settings(jwks_server.url))
    hmac_token = hs256(secret, {"alg": "HS256", "kid": "hmac"}, claims())
    assert await refused(identifier, hmac_token) == "token_algorithm_refused"
    # An EC key published for an RS256-only issuer is not loaded at all.
    assert await refused(identifier, ec.sign(claims())) == "token_algorithm_refused"
    assert await refused(identifier, rsa_key("ec1", slot="x").sign(claims())) == "token_unknown_key"
    assert await refused(identifier, rsa_key("enc", slot="enc").sign(claims())) == (
        "token_unknown_key"
    )
    # The good key next to them still works.
    assert (await identifier.identify(f"Bearer {key.sign(claims())}", None)).subject == "alice"


async def test_algorithm_must_fit_key_type(
    jwks_server: JwksServer, key: SigningKey, make_identifier: MakeIdentifier
) -> None:
    """An issuer that allows RS256 and ES256: a token may not pair ES256 with an RSA key."""
    ec = ec_key("ec1")
    jwks_server.publish(key, ec)
    identifier = make_identifier(issuer_settings(jwks_server.url, algorithms=["RS256", "ES256"]))
    # ES256 header naming the RSA key (signed with the EC private key).
    confused = ec.sign(claims(), kid=key.kid)
    assert await refused(identifier, confused) == "token_algorithm_refused"
    assert (await identifier.identify(f"Bearer {ec.sign(claims())}", None)).subject == "alice"


async def test_jwk_alg_member_restricts_the_key(
    jwks_server: JwksServer, key: SigningKey, make_identifier: MakeIdentifier
) -> None:
    jwks_server.publish(key.public_jwk(alg="RS384"))
    identifier = make_identifier(issuer_settings(jwks_server.url, algorithms=["RS256", "RS384"]))
    assert await refused(identifier, key.sign(claims())) == "token_algorithm_refused"
    rs384 = rsa_key(key.kid, "RS384")
    assert (await identifier.identify(f"Bearer {rs384.sign(claims())}", None)).subject == "alice"


async def test_truncated_tokens(identifier: Identifier, key: SigningKey) -> None:
    token = key.sign(claims())
    header, payload, signature = token.split(".")
    assert await refused(identifier, f"{header}.{payload}.{signature[:-6]}") == "token_invalid"
    assert await refused(identifier, f"{header}.{payload}.") == "token_invalid"
    assert await refused(identifier, f"{header}.{payload}") == "token_malformed"
    assert await refused(identifier, f"{header}.{payload[:-7]}.{signature}") == "token_malformed"
    assert await refused(identifier, header) == "token_malformed"
    assert await refused(identifier, token[: len(header) + len(payload) // 2]) == "token_malformed"


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "a.b.c",
        "!!!.@@@.###",
        "eyJhbGciOiJSUzI1NiJ9.e30=.c2ln",  # '=' padding is not base64url
        "eyJhbGciOiJSUzI1NiJ9.e30.c2ln.extra",
        "eyJhbGciOiJSUzI1NiJ9..c2ln",
        ".e30.c2ln",
        "W10.e30.c2ln",  # header is a JSON list
        "eyJhbGciOiJSUzI1NiJ9.bnVsbA.c2ln",  # payload is JSON null
        "eyJhbGciOiJSUzI1NiJ9.e30.c2ln\u00e9",  # non-ASCII
        "eyJhbGciOiJSUzI1NiJ9.e30.c2lnX",  # impossible base64 length
    ],
)
async def test_garbage(identifier: Identifier, token: str) -> None:
    assert await refused(identifier, token) == "token_malformed"


async def test_enormous_token_refused_quickly(
    identifier: Identifier, key: SigningKey, jwks_server: JwksServer
) -> None:
    big = key.sign(claims(padding="x" * 100_000))
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        assert await refused(identifier, big) == "token_malformed"
        timings.append(time.perf_counter() - started)
    assert min(timings) < 0.001  # min: robust against a busy machine; parsing would cost more
    assert jwks_server.requests == []  # refused before any key was looked up


async def test_critical_header_extension_refused(identifier: Identifier, key: SigningKey) -> None:
    token = key.sign(claims(), crit=["b64"], b64=False)
    assert await refused(identifier, token) == "token_malformed"


async def test_issuer_a_token_checked_only_with_a_keys(
    jwks_server: JwksServer, attacker_server: JwksServer, make_identifier: MakeIdentifier
) -> None:
    """B's key must not vouch for a token that claims to be from A, even with a shared kid."""
    a_key, b_key = rsa_key("a1", slot="a"), rsa_key("b1", slot="b")
    jwks_server.publish(a_key)
    attacker_server.publish(b_key, rsa_key("a1", slot="b"))  # B also publishes a kid "a1"
    identifier = make_identifier(
        issuer_settings(jwks_server.url),
        issuer_settings(attacker_server.url, issuer="https://b.example.test"),
    )
    assert await refused(identifier, b_key.sign(claims(iss=ISSUER))) == "token_unknown_key"
    b_as_a1 = rsa_key("a1", slot="b").sign(claims(iss=ISSUER))
    assert await refused(identifier, b_as_a1) == "token_invalid"
    # Both issuers work for their own tokens.
    ok_b = b_key.sign(claims(iss="https://b.example.test"))
    assert (await identifier.identify(f"Bearer {ok_b}", None)).issuer == "https://b.example.test"
    assert (await identifier.identify(f"Bearer {a_key.sign(claims())}", None)).issuer == ISSUER


def _short_rsa_public_pem() -> bytes:
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

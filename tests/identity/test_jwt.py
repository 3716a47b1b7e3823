"""Valid JWTs are accepted with the right Principal; claims are checked as configured."""

from __future__ import annotations

import asyncio
import hashlib
import time

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding

from gateway.errors import ConfigError, Unauthenticated
from gateway.identity import Identifier

from .conftest import (
    AUDIENCE,
    ISSUER,
    Access,
    FakeClock,
    JwksServer,
    MakeIdentifier,
    SigningKey,
    b64url,
    claims,
    ec_key,
    issuer_settings,
    rsa_key,
)


async def refused(identifier: Identifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as info:
        await identifier.identify(f"Bearer {token}", None)
    assert info.value.status == 401
    assert "Bearer" in info.value.headers["www-authenticate"]
    return info.value.reason_id


async def test_valid_token_gives_principal(identifier: Identifier, key: SigningKey) -> None:
    token = key.sign(claims(sub="alice"))
    principal = await identifier.identify(f"Bearer {token}", None)
    assert principal.subject == "alice"
    assert principal.auth_method == "jwt"
    assert principal.issuer == ISSUER
    assert principal.granted_roles is None  # roles come from the role store by default
    assert principal.credential_id == hashlib.sha256(token.encode()).hexdigest()[:12]
    assert principal.expires_at is not None and principal.expires_at > time.time()
    assert principal.issued_at is not None and abs(principal.issued_at - time.time()) < 5


async def test_scheme_is_case_insensitive(identifier: Identifier, key: SigningKey) -> None:
    principal = await identifier.identify(f"bearer   {key.sign(claims())}", None)
    assert principal.subject == "alice"


async def test_trusted_issuer_grants_role_claims(
    jwks_server: JwksServer, key: SigningKey, make_identifier: MakeIdentifier
) -> None:
    jwks_server.publish(key)
    trusted = make_identifier(issuer_settings(jwks_server.url, trust_role_claims=True))
    token = key.sign(claims(roles=["sales", "finance"]))
    principal = await trusted.identify(f"Bearer {token}", None)
    assert principal.granted_roles == frozenset({"sales", "finance"})
    # A trusted issuer whose token carries no roles grants none (not "look them up").
    bare = await trusted.identify(f"Bearer {key.sign(claims(roles=None))}", None)
    assert bare.granted_roles == frozenset()
    # Roles that are not a list of names are refused, not guessed at.
    assert await refused(trusted, key.sign(claims(roles={"admin": True}))) == "token_malformed"


async def test_untrusted_issuer_ignores_role_claims(
    identifier: Identifier, key: SigningKey
) -> None:
    token = key.sign(claims(roles=["officer", "admin"]))
    principal = await identifier.identify(f"Bearer {token}", None)
    assert principal.granted_roles is None


async def test_nested_role_and_subject_claims(
    jwks_server: JwksServer, key: SigningKey, make_identifier: MakeIdentifier
) -> None:
    jwks_server.publish(key)
    keycloak = make_identifier(
        issuer_settings(
            jwks_server.url,
            trust_role_claims=True,
            roles_claim="realm_access.roles",
            subject_claim="preferred_username",
        )
    )
    token = key.sign(claims(realm_access={"roles": ["finance"]}, preferred_username="bob"))
    principal = await keycloak.identify(f"Bearer {token}", None)
    assert (principal.subject, principal.granted_roles) == ("bob", frozenset({"finance"}))
    assert await refused(keycloak, key.sign(claims())) == "token_malformed"  # no username


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 120}, "token_expired"),
        ({"exp": None}, "token_malformed"),
        ({"exp": "tomorrow"}, "token_malformed"),
        ({"exp": True}, "token_malformed"),
        ({"nbf": int(time.time()) + 600}, "token_not_yet_valid"),
        ({"iat": int(time.time()) + 600}, "token_not_yet_valid"),
        ({"iss": "https://evil.example.test"}, "token_wrong_issuer"),
        ({"iss": ISSUER + "/"}, "token_wrong_issuer"),
        ({"iss": None}, "token_wrong_issuer"),
        ({"iss": [ISSUER]}, "token_wrong_issuer"),
        ({"aud": "other-api"}, "token_wrong_audience"),
        ({"aud": ["other-api", "more"]}, "token_wrong_audience"),
        ({"aud": None}, "token_wrong_audience"),
        ({"aud": {"wardgate": 1}}, "token_wrong_audience"),
        ({"sub": None}, "token_malformed"),
        ({"sub": ""}, "token_malformed"),
        ({"sub": 42}, "token_malformed"),
    ],
)
async def test_bad_claims_refused(
    identifier: Identifier, key: SigningKey, overrides: dict[str, object], reason: str
) -> None:
    assert await refused(identifier, key.sign(claims(**overrides))) == reason


async def test_leeway_applies(identifier: Identifier, key: SigningKey) -> None:
    now = int(time.time())
    # 10 s over exp and 10 s before nbf are inside the 30 s leeway.
    late = key.sign(claims(exp=now - 10, iat=now - 300, nbf=now - 300))
    early = key.sign(claims(nbf=now + 10, iat=now + 10))
    assert (await identifier.identify(f"Bearer {late}", None)).subject == "alice"
    assert (await identifier.identify(f"Bearer {early}", None)).subject == "alice"


async def test_audience_list_containing_ours_accepted(
    identifier: Identifier, key: SigningKey
) -> None:
    token = key.sign(claims(aud=["account", AUDIENCE]))
    assert (await identifier.identify(f"Bearer {token}", None)).subject == "alice"


async def test_cached_token_expires_at_exp(
    jwks_server: JwksServer, key: SigningKey, make_identifier: MakeIdentifier
) -> None:
    jwks_server.publish(key)
    now = [time.time()]
    identifier = make_identifier(issuer_settings(jwks_server.url), clock=lambda: now[0])
    token = key.sign(claims(exp=int(now[0]) + 60))
    await identifier.identify(f"Bearer {token}", None)
    now[0] += 60 + 31  # past exp and the leeway: the cache must not keep it alive
    assert await refused(identifier, token) == "token_expired"


async def test_access_check_runs_on_every_request(
    identifier: Identifier, key: SigningKey, access: Access
) -> None:
    token = key.sign(claims(sub="carol"))
    await identifier.identify(f"Bearer {token}", None)  # now cached
    for reason in ("person_suspended", "person_revoked", "token_revoked"):
        access.refused["carol"] = reason
        with pytest.raises(Unauthenticated) as info:
            await identifier.identify(f"Bearer {token}", None)
        assert info.value.reason_id == reason
        assert "contact" in info.value.detail
    del access.refused["carol"]
    assert (await identifier.identify(f"Bearer {token}", None)).subject == "carol"


async def test_key_removed_from_jwks_stops_cached_tokens(
    jwks_server: JwksServer, key: SigningKey, make_identifier: MakeIdentifier, jwks_clock: FakeClock
) -> None:
    jwks_server.publish(key)
    identifier = make_identifier(issuer_settings(jwks_server.url))
    token = key.sign(claims())
    await identifier.identify(f"Bearer {token}", None)
    # The IdP withdraws the key (compromise). Once the keys are past their TTL, the next
    # request still answers from the current keys and refreshes them in the background.
    jwks_server.publish(rsa_key("k2"))
    jwks_clock.now += 601
    assert (await identifier.identify(f"Bearer {key.sign(claims(sub='x'))}", None)).subject == "x"
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:  # the cached token stops working once keys swap
        try:
            await identifier.identify(f"Bearer {token}", None)
        except Unauthenticated as exc:
            assert exc.reason_id == "token_unknown_key"
            break
        await asyncio.sleep(0.005)
    else:
        pytest.fail("the withdrawn key was still trusted 2 s after the TTL refresh")
    assert len(jwks_server.requests) == 2
    assert await refused(identifier, key.sign(claims(sub="y"))) == "token_unknown_key"


async def test_es256_issuer(jwks_server: JwksServer, make_identifier: MakeIdentifier) -> None:
    signer = ec_key("ec1")
    jwks_server.publish(signer)
    identifier = make_identifier(issuer_settings(jwks_server.url, algorithms=["ES256"]))
    principal = await identifier.identify(f"Bearer {signer.sign(claims())}", None)
    assert principal.subject == "alice"


@pytest.mark.parametrize(
    ("authorization", "api_key"),
    [
        (None, None),
        ("", ""),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic YWxpY2U6c2VjcmV0", None),
        ("Token abc", None),
    ],
)
async def test_no_usable_credential(
    identifier: Identifier, authorization: str | None, api_key: str | None
) -> None:
    with pytest.raises(Unauthenticated) as info:
        await identifier.identify(authorization, api_key)
    assert info.value.reason_id == "token_missing"
    assert "Bearer" in info.value.detail


async def test_two_credentials_refused(identifier: Identifier, key: SigningKey) -> None:
    with pytest.raises(Unauthenticated) as info:
        await identifier.identify(f"Bearer {key.sign(claims())}", "wgk_something")
    assert info.value.reason_id == "token_missing"
    assert "exactly one" in info.value.detail


def _sign_raw(header: dict[str, object], body: dict[str, object], sign) -> str:
    signing_input = f"{b64url(orjson.dumps(header))}.{b64url(orjson.dumps(body))}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


async def test_ps256_issuer(jwks_server: JwksServer, make_identifier: MakeIdentifier) -> None:
    """PS256 (RSASSA-PSS), which python-jose lacks, verified with the same care."""
    signer = rsa_key("ps1")
    jwks_server.publish(signer)
    identifier = make_identifier(issuer_settings(jwks_server.url, algorithms=["PS256"]))
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    token = _sign_raw(
        {"alg": "PS256", "kid": "ps1"},
        claims(),
        lambda data: signer.private.sign(data, pss, hashes.SHA256()),
    )
    assert (await identifier.identify(f"Bearer {token}", None)).subject == "alice"
    # The same key signing RS256 (PKCS#1 v1.5) is not PS256, and RS256 is not configured.
    assert await refused(identifier, signer.sign(claims())) == "token_algorithm_refused"
    forged = _sign_raw(
        {"alg": "PS256", "kid": "ps1"},
        claims(sub="mallory"),
        lambda data: signer.private.sign(data, padding.PKCS1v15(), hashes.SHA256()),
    )
    assert await refused(identifier, forged) == "token_invalid"


async def test_eddsa_issuer(jwks_server: JwksServer, make_identifier: MakeIdentifier) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    jwks_server.publish({"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "kid": "ed1"})
    identifier = make_identifier(issuer_settings(jwks_server.url, algorithms=["EdDSA"]))
    token = _sign_raw({"alg": "EdDSA", "kid": "ed1"}, claims(), private.sign)
    assert (await identifier.identify(f"Bearer {token}", None)).subject == "alice"
    other = ed25519.Ed25519PrivateKey.generate()
    forged = _sign_raw({"alg": "EdDSA", "kid": "ed1"}, claims(), other.sign)
    assert await refused(identifier, forged) == "token_invalid"


async def test_error_details_do_not_echo_long_attacker_values(
    identifier: Identifier, key: SigningKey
) -> None:
    with pytest.raises(Unauthenticated) as info:
        await identifier.identify(f"Bearer {key.sign(claims(iss='x' * 5000))}", None)
    assert info.value.reason_id == "token_wrong_issuer"
    assert len(info.value.detail) < 300


@pytest.mark.parametrize(
    "issuers",
    [
        [{"audience": []}],
        [{}, {"audience": "other"}],  # the same issuer twice
    ],
)
async def test_bad_issuer_configuration_refused_at_start(
    jwks_server: JwksServer, make_identifier: MakeIdentifier, issuers: list[dict[str, object]]
) -> None:
    with pytest.raises(ConfigError) as info:
        make_identifier(*(issuer_settings(jwks_server.url, **i) for i in issuers))
    assert ISSUER in info.value.detail

"""Offboarding end to end: HR webhook, SCIM and the CLI revoke people in the running gateway.

Only people nobody else's tests use are changed: ``hrtarget`` and ``scimtarget`` (reserved in
``directory.yaml``) and people these tests create through signed HR ``transferred`` events
under a fresh random subject.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
import orjson
import pytest

from tests.e2e.conftest import HR_SECRET, SCIM_TOKEN, Gateway
from tests.e2e.helpers import hr_event, sign_hr, wait_until_key_loaded

PROBE = "/crm/api/customers?page=1&page_size=1"
REFUSED_WITHIN_S = 1.0


def post_hr(gateway: Gateway, body: bytes, signature: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Wardgate-Signature"] = signature
    return httpx.post(f"{gateway.admin_url}/hr/events", content=body, headers=headers, timeout=10)


def wait_for(
    check: Callable[[], httpx.Response], done: Callable[[httpx.Response], bool], within_s: float
) -> tuple[httpx.Response, float]:
    """Call ``check`` until ``done`` holds; return the last answer and the seconds it took."""
    started = time.monotonic()
    while True:
        answer = check()
        elapsed = time.monotonic() - started
        if done(answer) or elapsed > within_s:
            return answer, elapsed
        time.sleep(0.02)


def person(gateway: Gateway, subject: str) -> httpx.Response:
    return httpx.get(
        f"{gateway.admin_url}/api/people/{subject}", headers=gateway.auth("officer01"), timeout=10
    )


@pytest.fixture()
def newcomer(gateway: Gateway, client: httpx.Client) -> str:
    """A fresh salesperson, created by a signed HR transfer, whose token already works."""
    subject = f"e2e-hr-{uuid.uuid4().hex[:10]}"
    body = hr_event("transferred", subject, department="sales")
    assert post_hr(gateway, body, sign_hr(body)).json()["status"] == "applied"
    r, _ = wait_for(
        lambda: client.get(PROBE, headers=gateway.auth(subject)),
        lambda a: a.status_code == 200,
        within_s=3.0,
    )
    assert r.status_code == 200, r.text
    return subject


def test_hr_termination_refuses_live_token_and_api_key_within_a_second(
    gateway: Gateway, client: httpx.Client
):
    token = {"Authorization": f"Bearer {gateway.token('hrtarget')}"}
    made = gateway.cli(
        "keys",
        "create",
        "hrtarget's report tool",
        "--subject",
        "hrtarget",
        "--role",
        "sales",
        "--config",
        str(gateway.config),
    )
    assert made.returncode == 0, made.stderr
    key = {"X-API-Key": next(w for w in made.stdout.split() if w.startswith("wgk_"))}
    wait_until_key_loaded(gateway, key["X-API-Key"])
    assert client.get(PROBE, headers=token).status_code == 200
    assert client.get(PROBE, headers=key).status_code == 200

    body = hr_event("terminated", "hrtarget")
    answer = post_hr(gateway, body, sign_hr(body))
    assert answer.status_code == 200 and answer.json()["status"] == "applied", answer.text
    refused, elapsed = wait_for(
        lambda: client.get(PROBE, headers=token), lambda a: a.status_code == 401, REFUSED_WITHIN_S
    )
    assert refused.status_code == 401, f"still {refused.status_code} after {elapsed:.2f} s"
    assert refused.json()["reason_id"] in ("person_revoked", "token_revoked")
    by_key = client.get(PROBE, headers=key)
    assert by_key.status_code == 401
    assert by_key.json()["reason_id"] in ("api_key_revoked", "person_revoked")
    fresh = client.get(PROBE, headers=gateway.auth("hrtarget"))  # a token minted afterwards
    assert fresh.status_code == 401 and fresh.json()["reason_id"] == "person_revoked"
    assert person(gateway, "hrtarget").json()["status"] == "left"


def test_scim_deactivation_refuses_the_next_request(gateway: Gateway, client: httpx.Client):
    token = {"Authorization": f"Bearer {gateway.token('scimtarget')}"}
    assert client.get(PROBE, headers=token).status_code == 200
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    url = f"{gateway.admin_url}/scim/v2/Users/scimtarget"
    wrong = httpx.patch(url, json=patch, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    assert client.get(PROBE, headers=token).status_code == 200  # the refused call changed nothing

    done = httpx.patch(url, json=patch, headers={"Authorization": f"Bearer {SCIM_TOKEN}"})
    assert done.status_code == 200, done.text
    assert done.json()["active"] is False
    refused, elapsed = wait_for(
        lambda: client.get(PROBE, headers=token), lambda a: a.status_code == 401, REFUSED_WITHIN_S
    )
    assert refused.status_code == 401, f"still {refused.status_code} after {elapsed:.2f} s"
    assert refused.json()["reason_id"] in ("person_revoked", "token_revoked")


def test_forged_stale_and_malformed_hr_events_are_refused_and_change_nothing(
    gateway: Gateway, client: httpx.Client, newcomer: str
):
    body = hr_event("terminated", newcomer)
    now = int(time.time())
    attempts = {
        "no signature": (body, None, "signature_missing"),
        "wrong secret": (body, sign_hr(body, secret="guessed-" + HR_SECRET), "signature_invalid"),
        "body changed after signing": (
            body,
            sign_hr(hr_event("notice_given", newcomer)),
            "signature_invalid",
        ),
        "stale": (body, sign_hr(body, t=now - 360), "signature_expired"),
        "from the future": (body, sign_hr(body, t=now + 360), "signature_expired"),
        "malformed header": (body, "v1=" + "0" * 64, "signature_invalid"),
        "two timestamps": (body, sign_hr(body) + f",t={now}", "signature_invalid"),
    }
    for what, (raw, signature, reason) in attempts.items():
        r = post_hr(gateway, raw, signature)
        assert r.status_code == 401, (what, r.status_code, r.text)
        assert r.json()["reason_id"] == reason, what
    bad = orjson.dumps({"id": "e2e-bad", "type": "terminated"})  # names nobody
    r = post_hr(gateway, bad, sign_hr(bad))
    assert r.status_code == 400 and r.json()["reason_id"] == "bad_body"
    unknown = orjson.dumps({"id": f"e2e-{uuid.uuid4().hex}", "type": "fired", "subject": newcomer})
    assert post_hr(gateway, unknown, sign_hr(unknown)).status_code == 400

    assert client.get(PROBE, headers=gateway.auth(newcomer)).status_code == 200
    assert person(gateway, newcomer).json()["status"] == "active"


def test_replayed_hr_event_changes_nothing(gateway: Gateway, client: httpx.Client, newcomer: str):
    to_finance = hr_event("transferred", newcomer, department="finance")
    signature = sign_hr(to_finance)
    assert post_hr(gateway, to_finance, signature).json()["status"] == "applied"
    back = hr_event("transferred", newcomer, department="sales")
    assert post_hr(gateway, back, sign_hr(back)).json()["status"] == "applied"

    replay = post_hr(gateway, to_finance, signature)  # captured and sent again, byte for byte
    assert replay.status_code in (200, 401, 409), replay.text
    if replay.status_code == 200:
        assert replay.json()["status"] == "duplicate"
    same_id = orjson.loads(to_finance)
    tampered = orjson.dumps({**same_id, "type": "terminated"})  # same id, new body, signed
    conflict = post_hr(gateway, tampered, sign_hr(tampered))
    assert conflict.status_code == 409 and conflict.json()["reason_id"] == "hr_event_conflict"

    seen = person(gateway, newcomer).json()
    assert seen["department"] == "sales" and seen["status"] == "active"
    assert {r["role"] for r in seen["roles"]} == {"sales"}
    r, _ = wait_for(
        lambda: client.get(PROBE, headers=gateway.auth(newcomer)),
        lambda a: a.status_code == 200,
        within_s=1.0,
    )
    assert r.status_code == 200, r.text


def test_cli_revoke_refuses_the_person_within_a_second(
    gateway: Gateway, client: httpx.Client, newcomer: str
):
    token = {"Authorization": f"Bearer {gateway.token(newcomer)}"}
    done = gateway.cli(
        "revoke", newcomer, "--reason", "contract ended", "--config", str(gateway.config)
    )
    assert done.returncode == 0, done.stderr
    refused, elapsed = wait_for(
        lambda: client.get(PROBE, headers=token), lambda a: a.status_code == 401, REFUSED_WITHIN_S
    )
    assert refused.status_code == 401, f"still {refused.status_code} after {elapsed:.2f} s"
    assert refused.json()["reason_id"] in ("person_revoked", "token_revoked")
    assert person(gateway, newcomer).json()["status"] in ("left", "disabled")


def test_notice_given_marks_departing_and_keeps_access(
    gateway: Gateway, client: httpx.Client, newcomer: str
):
    assert person(gateway, newcomer).json()["departing"] is False
    body = hr_event("notice_given", newcomer, last_day="2026-12-31")
    answer = post_hr(gateway, body, sign_hr(body))
    assert answer.status_code == 200 and answer.json()["status"] == "applied"
    seen = person(gateway, newcomer).json()
    assert seen["departing"] is True and seen["last_day"] == "2026-12-31"
    assert seen["status"] == "active"
    assert client.get(PROBE, headers=gateway.auth(newcomer)).status_code == 200
    # the people list is for officers only
    r = httpx.get(f"{gateway.admin_url}/api/people/{newcomer}", headers=gateway.auth("sales01"))
    assert r.status_code == 403


def scim_active(gateway: Gateway, subject: str, active: bool) -> httpx.Response:
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": active}}],
    }
    return httpx.patch(
        f"{gateway.admin_url}/scim/v2/Users/{subject}",
        json=patch,
        headers={"Authorization": f"Bearer {SCIM_TOKEN}"},
        timeout=10,
    )


def test_scim_reactivation_never_revives_old_tokens(
    gateway: Gateway, client: httpx.Client, newcomer: str
):
    old = {"Authorization": f"Bearer {gateway.token(newcomer)}"}
    assert scim_active(gateway, newcomer, False).status_code == 200
    assert client.get(PROBE, headers=old).status_code == 401
    back = scim_active(gateway, newcomer, True)
    assert back.status_code == 200 and back.json()["active"] is True, back.text
    refused = client.get(PROBE, headers=old)
    assert refused.status_code == 401 and refused.json()["reason_id"] == "token_revoked"
    # A token minted after the re-activation (iat has whole-second resolution) is served at
    # once: the re-activation gave back the roles of the person's department (no sync ran).
    later = {"Authorization": f"Bearer {gateway.token(newcomer, iat=time.time() + 1)}"}
    r, elapsed = wait_for(
        lambda: client.get(PROBE, headers=later), lambda a: a.status_code == 200, within_s=3.0
    )
    assert r.status_code == 200, f"{r.status_code} after {elapsed:.2f} s: {r.text}"


def test_scim_cannot_undo_a_termination_by_hr(
    gateway: Gateway, client: httpx.Client, newcomer: str
):
    body = hr_event("terminated", newcomer)
    assert post_hr(gateway, body, sign_hr(body)).json()["status"] == "applied"
    undo = scim_active(gateway, newcomer, True)
    assert undo.status_code == 409, undo.text
    fresh = {"Authorization": f"Bearer {gateway.token(newcomer, iat=time.time() + 1)}"}
    assert client.get(PROBE, headers=fresh).status_code == 401
    assert person(gateway, newcomer).json()["status"] == "left"


def test_scheduled_termination_takes_effect_by_itself(
    gateway: Gateway, client: httpx.Client, newcomer: str
):
    token = {"Authorization": f"Bearer {gateway.token(newcomer)}"}
    effective = time.time() + 1.5
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(effective))
    body = hr_event(
        "terminated", newcomer, effective_at=f"{stamp}.{int(effective % 1 * 1000):03d}Z"
    )
    assert post_hr(gateway, body, sign_hr(body)).json()["status"] == "applied"
    assert client.get(PROBE, headers=token).status_code == 200  # still their last hours
    refused, _ = wait_for(
        lambda: client.get(PROBE, headers=token),
        lambda a: a.status_code == 401,
        within_s=effective - time.time() + REFUSED_WITHIN_S,
    )
    assert refused.status_code == 401, refused.text
    assert time.time() >= effective - 0.05  # not before its time
    assert refused.json()["reason_id"] == "person_revoked"

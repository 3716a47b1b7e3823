"""HR webhook over a real loopback listener: signatures, replays, ordering, scheduling."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.directory.model import DirectoryUnavailable
from gateway.directory.settings import DirectorySettings
from gateway.directory.source import make_source
from gateway.directory.status import RoleStore
from gateway.directory.store import RoleChange, get_person
from gateway.directory.sync import SyncRunner
from tests.directory.conftest import HR_SECRET, SCIM_TOKEN, AdminServer, sync_file

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def signed(
    body: dict[str, object], skew: int = 0, secret: str = HR_SECRET
) -> tuple[bytes, dict[str, str]]:
    raw = orjson.dumps(body)
    t = int(time.time()) + skew
    mac = hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    return raw, {"x-wardgate-signature": f"t={t},v1={mac}", "content-type": "application/json"}


async def post(server: AdminServer, body: dict[str, object], **kw: object) -> httpx.Response:
    raw, headers = signed(body, **kw)  # type: ignore[arg-type]
    async with httpx.AsyncClient(base_url=server.url) as client:
        return await client.post("/hr/events", content=raw, headers=headers)


def changes_count(server: AdminServer) -> int:
    with Session(server.engine) as session:
        return session.scalar(select(func.count()).select_from(RoleChange)) or 0


@pytest.fixture
async def hr(admin_server: AdminServer, directory_file: Path) -> AdminServer:
    await sync_file(admin_server.engine, admin_server.people, directory_file)
    return admin_server


async def test_signed_termination_revokes_at_once(hr: AdminServer) -> None:
    issued_at = time.time() - 30
    response = await post(hr, {"id": "ev-1", "type": "terminated", "subject": "sales01"})

    assert response.status_code == 200 and response.json() == {"status": "applied", "id": "ev-1"}
    assert hr.people.refusal("sales01", issued_at) == "person_revoked"
    assert not [g for g in RoleStore(hr.engine).grants() if g[0] == "sales01"]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"secret": "not-the-secret"}, "signature_invalid"),
        ({"skew": -302}, "signature_expired"),
        ({"skew": 302}, "signature_expired"),
    ],
    ids=["wrong-secret", "stale", "future"],
)
async def test_unsigned_or_stale_events_are_refused_and_change_nothing(
    hr: AdminServer, tamper: dict[str, object], reason: str
) -> None:
    before = changes_count(hr)
    response = await post(hr, {"id": "ev-x", "type": "terminated", "subject": "sales01"}, **tamper)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["reason_id"] == reason
    assert hr.people.refusal("sales01", None) is None and changes_count(hr) == before


async def test_body_changed_after_signing_is_refused(hr: AdminServer) -> None:
    raw, headers = signed({"id": "ev-2", "type": "notice_given", "subject": "sales02"})
    forged = raw.replace(b"notice_given", b"terminated")
    async with httpx.AsyncClient(base_url=hr.url) as client:
        response = await client.post("/hr/events", content=forged, headers=headers)
        missing = await client.post("/hr/events", content=raw)

    assert response.status_code == 401 and missing.status_code == 401
    assert missing.json()["reason_id"] == "signature_missing"
    assert hr.people.refusal("sales02", None) is None


async def test_replay_is_idempotent_and_a_reused_id_with_another_body_conflicts(
    hr: AdminServer,
) -> None:
    event = {"id": "ev-3", "type": "notice_given", "subject": "sales03", "last_day": "2026-12-31"}
    first = await post(hr, event)
    after_first = changes_count(hr)
    replay = await post(hr, event)
    reused = await post(hr, {**event, "type": "terminated"})

    assert first.json()["status"] == "applied"
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    assert reused.status_code == 409 and reused.json()["reason_id"] == "hr_event_conflict"
    assert changes_count(hr) == after_first
    assert hr.people.refusal("sales03", None) is None and hr.people.is_departing("sales03")
    person = get_person(hr.engine, "sales03")
    assert person is not None and str(person.last_day) == "2026-12-31"


async def test_late_notice_or_transfer_after_termination_re_enables_no_one(hr: AdminServer) -> None:
    await post(hr, {"id": "ev-4", "type": "terminated", "subject": "sales04"})
    notice = await post(hr, {"id": "ev-5", "type": "notice_given", "subject": "sales04"})
    transfer = await post(
        hr, {"id": "ev-6", "type": "transferred", "subject": "sales04", "department": "finance"}
    )

    assert notice.status_code == transfer.status_code == 200
    assert hr.people.refusal("sales04", None) == "person_revoked"
    assert not hr.people.is_departing("sales04")
    assert not [g for g in RoleStore(hr.engine).grants() if g[0] == "sales04"]


async def test_a_termination_outlasts_an_earlier_revocation_by_scim_or_the_directory(
    hr: AdminServer, directory_file: Path
) -> None:
    """HR has no re-hire event (a person who left comes back through the directory); what
    HR terminated must not come back through whoever had revoked the person before."""
    scim = httpx.AsyncClient(
        base_url=f"{hr.url}/scim/v2", headers={"authorization": f"Bearer {SCIM_TOKEN}"}
    )

    def active(value: bool) -> dict[str, object]:
        return {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": value}}]}

    async with scim:
        assert (await scim.patch("/Users/sales08", json=active(False))).status_code == 200
        for subject in ("sales08", "leaver01"):  # leaver01 is disabled in the directory
            terminated = {"id": f"ev-late-{subject}", "type": "terminated", "subject": subject}
            assert (await post(hr, terminated)).json()["status"] == "applied"
        undo = await scim.patch("/Users/sales08", json=active(True))
    directory_file.write_text(
        directory_file.read_text().replace("status: disabled", "status: active")
    )
    await sync_file(hr.engine, hr.people, directory_file)  # the directory enables leaver01

    assert undo.status_code == 409
    for subject in ("sales08", "leaver01"):
        assert hr.people.refusal(subject, time.time() + 1) == "person_revoked"
        assert not [g for g in RoleStore(hr.engine).grants() if g[0] == subject]


async def test_transfer_swaps_department_roles(hr: AdminServer) -> None:
    response = await post(
        hr, {"id": "ev-7", "type": "transferred", "employee_id": "E1005", "department": "finance"}
    )

    assert response.status_code == 200
    person = get_person(hr.engine, "sales05")
    assert person is not None and person.department == "finance"
    assert person.roles == [("finance", "*")]


async def test_scheduled_termination_takes_effect_by_itself(hr: AdminServer) -> None:
    when = datetime.now(UTC) + timedelta(seconds=1.0)
    response = await post(
        hr,
        {
            "id": "ev-8",
            "type": "terminated",
            "subject": "sales06",
            "effective_at": when.isoformat(),
        },
    )

    assert response.status_code == 200
    assert hr.people.refusal("sales06", None) is None
    await asyncio.sleep(max(0.0, (when - datetime.now(UTC)).total_seconds()) + 0.05)
    assert hr.people.refusal("sales06", None) == "person_revoked"
    deadline = time.monotonic() + 3  # the background loop also records it in the database
    while (p := get_person(hr.engine, "sales06")) and p.status != "left":
        assert time.monotonic() < deadline, "scheduled revocation not applied"
        await asyncio.sleep(0.05)
    assert p is not None and p.roles == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"id": "ev-9", "type": "fired", "subject": "sales07"}, 400),
        ({"id": "ev-9", "type": "terminated"}, 400),
        ({"id": "ev-9", "type": "transferred", "subject": "sales07"}, 400),
        (
            {
                "id": "ev-9",
                "type": "terminated",
                "subject": "sales07",
                "effective_at": "2026-01-01T00:00:00",
            },
            400,
        ),
        ({"id": "ev-9", "type": "terminated", "employee_id": "E-nobody"}, 404),
        ({"id": "e" * 300, "type": "terminated", "subject": "sales07"}, 400),
    ],
    ids=[
        "unknown-type",
        "no-person",
        "transfer-without-department",
        "naive-time",
        "unknown-employee",
        "id-too-long",
    ],
)
async def test_bad_events_are_refused_with_a_clear_error(
    hr: AdminServer, body: dict[str, object], status: int
) -> None:
    before = changes_count(hr)
    response = await post(hr, body)

    assert response.status_code == status and response.json()["detail"]
    assert changes_count(hr) == before
    assert hr.people.refusal("sales07", None) is None


async def test_without_a_secret_every_event_is_refused(
    hr: AdminServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WARDGATE_TEST_HR_SECRET")
    response = await post(hr, {"id": "ev-10", "type": "terminated", "subject": "sales08"})

    assert response.status_code == 503 and "WARDGATE_TEST_HR_SECRET" in response.json()["detail"]
    assert hr.people.refusal("sales08", None) is None


async def test_hr_still_revokes_while_the_directory_is_unreachable(
    hr: AdminServer, directory_file: Path
) -> None:
    directory_file.unlink()
    settings = DirectorySettings(source="file", file=str(directory_file))
    with pytest.raises(DirectoryUnavailable):
        await SyncRunner(settings, hr.engine, hr.people, make_source(settings)).run_once()
    stale = get_person(hr.engine, "sales09")
    assert stale is not None and stale.stale and stale.roles == [("sales", "*")]

    response = await post(hr, {"id": "ev-11", "type": "terminated", "subject": "sales09"})

    assert response.status_code == 200
    assert hr.people.refusal("sales09", None) == "person_revoked"


async def test_garbage_signatures_and_huge_bodies_are_refused_cleanly(hr: AdminServer) -> None:
    raw, _ = signed({"id": "ev-12", "type": "terminated", "subject": "sales10"})
    t = int(time.time())
    async with httpx.AsyncClient(base_url=hr.url) as client:
        answers = [
            await client.post("/hr/events", content=raw, headers={"x-wardgate-signature": header})
            for header in (
                f"t={t},v1=é".encode("latin-1"),
                f"t={t}",
                "v1=00",
                f"t=-{t},v1=00",
                "t=1,t=2,v1=00",
            )
        ]
        huge = await client.post("/hr/events", content=b"{" + b" " * 70_000 + b"}")

    assert [a.status_code for a in answers] == [401] * 5
    assert huge.status_code == 413 and huge.json()["reason_id"] == "request_body_too_large"
    assert hr.people.refusal("sales10", None) is None


async def test_the_same_event_delivered_twice_at_once_is_applied_once(hr: AdminServer) -> None:
    raw, headers = signed({"id": "ev-13", "type": "terminated", "subject": "sales11"})
    async with httpx.AsyncClient(base_url=hr.url) as client:
        answers = await asyncio.gather(
            *(client.post("/hr/events", content=raw, headers=headers) for _ in range(4))
        )

    assert sorted(a.json()["status"] for a in answers) == [
        "applied",
        "duplicate",
        "duplicate",
        "duplicate",
    ]
    assert hr.people.refusal("sales11", None) == "person_revoked"

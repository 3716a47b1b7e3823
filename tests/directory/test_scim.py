"""SCIM 2.0 Users over a real loopback listener: provisioning and, above all, deprovisioning."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gateway.directory.scim import ENTERPRISE_SCHEMA, ERROR_SCHEMA
from gateway.directory.status import RoleStore
from gateway.directory.store import RoleChange
from tests.directory.conftest import SCIM_TOKEN, AdminServer, sync_file

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
async def scim(admin_server: AdminServer, directory_file: Path) -> AsyncIterator[httpx.AsyncClient]:
    await sync_file(admin_server.engine, admin_server.people, directory_file)
    headers = {"authorization": f"Bearer {SCIM_TOKEN}"}
    async with httpx.AsyncClient(base_url=f"{admin_server.url}/scim/v2", headers=headers) as client:
        yield client


def assert_scim_error(response: httpx.Response, status: int, scim_type: str | None = None) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/scim+json"
    body = response.json()
    assert body["schemas"] == [ERROR_SCHEMA] and body["status"] == str(status) and body["detail"]
    assert body.get("scimType") == scim_type


async def test_filter_by_user_name_and_paging(scim: httpx.AsyncClient) -> None:
    one = (await scim.get("/Users", params={"filter": 'userName eq "sales01"'})).json()
    page = (await scim.get("/Users", params={"startIndex": 3, "count": 2})).json()

    assert one["totalResults"] == 1 and one["Resources"][0]["displayName"] == "王芳"
    assert one["Resources"][0]["active"] is True
    assert page["totalResults"] == 16 and page["startIndex"] == 3 and page["itemsPerPage"] == 2
    assert [u["userName"] for u in page["Resources"]] == ["officer01", "sales01"]  # sorted


async def test_unsupported_filter_is_a_scim_error(scim: httpx.AsyncClient) -> None:
    response = await scim.get("/Users", params={"filter": 'userName co "sales" or 1 eq 1'})
    assert_scim_error(response, 400, "invalidFilter")


async def test_create_then_duplicate(scim: httpx.AsyncClient, admin_server: AdminServer) -> None:
    user = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "new01",
        "displayName": "Nina New",
        "emails": [{"value": "new01@example.com", "primary": True}],
        ENTERPRISE_SCHEMA: {"employeeNumber": "E5001", "department": "finance"},
    }
    created = await scim.post("/Users", json=user)
    again = await scim.post("/Users", json=user)

    assert created.status_code == 201 and created.json()["id"] == "new01"
    assert ("new01", "finance", "*") in RoleStore(admin_server.engine).grants()
    assert_scim_error(again, 409, "uniqueness")
    assert (await scim.get("/Users/new01")).json()["emails"][0]["value"] == "new01@example.com"


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "active", "value": False},
        {"op": "replace", "value": {"active": False}},
        {"op": "Replace", "path": "active", "value": "False"},  # as some IdPs send it
    ],
    ids=["path-form", "value-form", "string-form"],
)
async def test_patch_active_false_is_refused_on_the_next_check(
    scim: httpx.AsyncClient, admin_server: AdminServer, operation: dict[str, object]
) -> None:
    issued_at = time.time() - 10
    response = await scim.patch(
        "/Users/sales02", json={"schemas": [PATCH], "Operations": [operation]}
    )

    assert response.status_code == 200 and response.json()["active"] is False
    assert admin_server.people.refusal("sales02", issued_at) == "person_revoked"


async def test_reactivation_only_undoes_scim_deprovisioning(
    scim: httpx.AsyncClient, admin_server: AdminServer
) -> None:
    issued_at = time.time() - 10
    off = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    on = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": True}]}
    await scim.patch("/Users/sales03", json=off)
    back = await scim.patch("/Users/sales03", json=on)
    leaver = await scim.patch("/Users/leaver01", json=on)  # disabled by the directory

    assert back.status_code == 200
    assert admin_server.people.refusal("sales03", issued_at) == "token_revoked"
    assert admin_server.people.refusal("sales03", time.time() + 1) is None
    assert_scim_error(leaver, 409)
    assert admin_server.people.refusal("leaver01", None) == "person_revoked"


OFF = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
ON = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": True}]}


def grants(engine: Engine, subject: str) -> set[tuple[str, str]]:
    """What the policy module reads: the grants of active people."""
    return {(role, domain) for who, role, domain in RoleStore(engine).grants() if who == subject}


def history(engine: Engine, subject: str, cause: str) -> list[tuple[str, str | None, str]]:
    with Session(engine) as session:
        rows = session.scalars(
            select(RoleChange)
            .where(RoleChange.subject == subject, RoleChange.cause == cause)
            .order_by(RoleChange.id)
        )
        return [(r.kind, r.role, r.detail or "") for r in rows]


@pytest.mark.parametrize("how", ["patch", "put"])
async def test_reactivation_gives_back_the_department_roles_at_once(
    scim: httpx.AsyncClient, admin_server: AdminServer, how: str
) -> None:
    engine = admin_server.engine
    assert grants(engine, "sales03") == {("sales", "*")}
    await scim.patch("/Users/sales03", json=OFF)
    assert grants(engine, "sales03") == set()
    assert admin_server.people.refusal("sales03", time.time() + 1) == "person_revoked"

    if how == "patch":
        back, department = await scim.patch("/Users/sales03", json=ON), "sales"
    else:  # a PUT may move the person too: the new department's roles come back
        department = "finance"
        user = {
            "userName": "sales03",
            "active": True,
            ENTERPRISE_SCHEMA: {"employeeNumber": "E1003", "department": department},
        }
        back = await scim.put("/Users/sales03", json=user)

    assert back.status_code == 200 and back.json()["active"] is True
    assert grants(engine, "sales03") == {(department, "*")}  # no directory sync ran
    assert admin_server.people.refusal("sales03", time.time() + 1) is None
    why = f"re-activated by SCIM; roles of department {department}"
    assert history(engine, "sales03", "scim")[-2:] == [
        ("status", None, f"left -> active ({why})"),
        ("grant", department, why),
    ]


@pytest.mark.parametrize("revoker", ["hr:ev-77", "admin:officer01"])
async def test_a_revocation_by_hr_or_an_officer_sticks_even_after_scim_deprovisioning(
    scim: httpx.AsyncClient, admin_server: AdminServer, revoker: str
) -> None:
    """SCIM deprovisions first, HR or an officer revokes the same person later: SCIM must not
    bring them back (with their roles) by re-activating its own deprovisioning."""
    await scim.patch("/Users/sales06", json=OFF)
    await admin_server.people.revoke("sales06", reason="terminated", cause=revoker)
    patched = await scim.patch("/Users/sales06", json=ON)
    put = await scim.put("/Users/sales06", json={"userName": "sales06", "active": True})

    assert_scim_error(patched, 409)
    assert_scim_error(put, 409)
    assert revoker in patched.json()["detail"]
    assert admin_server.people.refusal("sales06", time.time() + 1) == "person_revoked"
    assert grants(admin_server.engine, "sales06") == set()


async def test_scim_cannot_lift_an_officers_suspension(
    scim: httpx.AsyncClient, admin_server: AdminServer
) -> None:
    await admin_server.people.suspend("sales07", by="officer01", reason="investigation")
    await scim.patch("/Users/sales07", json=ON)

    assert admin_server.people.refusal("sales07", time.time() + 1) == "person_suspended"


async def test_delete_revokes_at_once_and_the_user_is_gone(
    scim: httpx.AsyncClient, admin_server: AdminServer
) -> None:
    response = await scim.delete("/Users/sales04")

    assert response.status_code == 204
    assert admin_server.people.refusal("sales04", None) == "person_revoked"
    assert_scim_error(await scim.get("/Users/sales04"), 404)
    assert_scim_error(
        await scim.put("/Users/sales04", json={"userName": "sales04", "active": True}), 404
    )


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ({"Operations": [{"op": "remove", "path": "active"}]}, "invalidSyntax"),
        ({"Operations": [{"op": "replace", "path": "roles", "value": ["admin"]}]}, "invalidPath"),
        ({"Operations": [{"op": "replace", "path": "active", "value": "maybe"}]}, "invalidValue"),
        ({"Operations": []}, "invalidSyntax"),
    ],
    ids=["remove", "roles", "not-a-boolean", "no-operations"],
)
async def test_bad_patches_change_nothing(
    scim: httpx.AsyncClient, admin_server: AdminServer, body: dict[str, object], scim_type: str
) -> None:
    assert_scim_error(await scim.patch("/Users/sales05", json=body), 400, scim_type)
    assert admin_server.people.refusal("sales05", None) is None


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Basic {SCIM_TOKEN}", "Bearer"]
)
async def test_bad_token_is_refused(admin_server: AdminServer, authorization: str | None) -> None:
    headers = {"authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(base_url=f"{admin_server.url}/scim/v2", headers=headers) as client:
        listing = await client.get("/Users")
        delete = await client.delete("/Users/sales01")
    assert_scim_error(listing, 401)
    assert_scim_error(delete, 401)
    assert admin_server.people.refusal("sales01", None) is None


async def test_without_a_configured_token_scim_is_unavailable(
    admin_server: AdminServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WARDGATE_TEST_SCIM_TOKEN")
    async with httpx.AsyncClient(base_url=f"{admin_server.url}/scim/v2") as client:
        response = await client.get("/Users", headers={"authorization": "Bearer anything"})
    assert_scim_error(response, 503)


async def test_oversized_body_is_refused(scim: httpx.AsyncClient) -> None:
    response = await scim.post("/Users", json={"userName": "big", "displayName": "x" * 70_000})
    assert_scim_error(response, 413)
    assert_scim_error(await scim.get("/Users/big"), 404)

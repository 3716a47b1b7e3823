"""Fixtures of the directory tests: a real slapd per session, a fresh LDAP subtree and a
fresh SQLite database per test, PostgreSQL schemas and Redis for the multi-instance case."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import structlog
import uvicorn
from fastapi import FastAPI
from ldap3 import MODIFY_ADD, MODIFY_DELETE, Connection, Server
from sqlalchemy import Engine

from audit.store import make_engine
from gateway.directory.hr import router as hr_router
from gateway.directory.scim import router as scim_router
from gateway.directory.settings import DirectorySettings
from gateway.directory.source import make_source
from gateway.directory.status import PeopleStatus, RoleStore
from gateway.directory.store import init_directory_db
from gateway.directory.sync import SyncRunner
from gateway.settings import settings_from_dict
from tests.directory.slapd import ROOT_DN, ROOT_PW, SUFFIX, Slapd, start_slapd, stop_slapd
from tests.support.postgres import schema_url, temporary_schema

DEMO_DIRECTORY = Path(__file__).resolve().parents[2] / "policies" / "directory.yaml"
PASSWORD_ENV = "WARDGATE_TEST_LDAP_PASSWORD"
_tree_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def default_logging() -> None:
    """Other suites run the CLI under CliRunner, which leaves structlog printing to a closed
    stream; start every directory test from structlog's defaults."""
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    workdir = Path(tempfile.mkdtemp(prefix="wardgate-slapd-"))
    server, proc = start_slapd(workdir)
    try:
        yield server
    finally:
        stop_slapd(proc, workdir)


@dataclass
class LdapTree:
    """A subtree of the session's slapd that belongs to one test."""

    conn: Connection
    base: str
    url: str

    @property
    def people(self) -> str:
        return f"ou=people,{self.base}"

    @property
    def groups(self) -> str:
        return f"ou=groups,{self.base}"

    def user_dn(self, uid: str) -> str:
        return f"uid={uid},{self.people}"

    def group_dn(self, cn: str) -> str:
        return f"cn={cn},{self.groups}"

    def add_user(self, uid: str, department: str = "staff") -> None:
        self.conn.add(
            self.user_dn(uid),
            ["inetOrgPerson"],
            {
                "uid": uid,
                "cn": uid,
                "sn": uid,
                "displayName": f"User {uid}",
                "mail": f"{uid}@example.com",
                "employeeNumber": f"E-{uid}",
                "departmentNumber": department,
                "userPassword": f"{uid}-pw",
            },
        )

    def add_group(self, cn: str, members: list[str]) -> None:
        self.conn.add(self.group_dn(cn), ["groupOfNames"], {"cn": cn, "member": members})

    def add_member(self, cn: str, member_dn: str) -> None:
        self.conn.modify(self.group_dn(cn), {"member": [(MODIFY_ADD, [member_dn])]})

    def remove_member(self, cn: str, member_dn: str) -> None:
        self.conn.modify(self.group_dn(cn), {"member": [(MODIFY_DELETE, [member_dn])]})

    def delete_user(self, uid: str) -> None:
        self.conn.delete(self.user_dn(uid))

    def settings(
        self, ldap: dict[str, object] | None = None, **directory: object
    ) -> DirectorySettings:
        ldap_section = {
            "url": self.url,
            "bind_dn": ROOT_DN,
            "password_env": PASSWORD_ENV,
            "user_base": self.people,
            "group_base": self.groups,
            "page_size": 5,  # smaller than the tree: paging is exercised
            **(ldap or {}),
        }
        rules = [
            {"group": "crm-sales", "role": "sales"},
            {"group_dn": self.group_dn("finance"), "role": "finance", "domain": "erp"},
            {"group": "security-*", "role": "officer"},
        ]
        return DirectorySettings.model_validate(
            {"source": "ldap", "ldap": ldap_section, "role_rules": rules, **directory}
        )


@pytest.fixture
def ldap_tree(slapd: Slapd, monkeypatch: pytest.MonkeyPatch) -> Iterator[LdapTree]:
    """12 people: u01 in crm-sales directly, u02..u06 through nested crm-sales-north,
    u07/u08 in finance, u09 in security-officers, u10..u12 in staff only."""
    monkeypatch.setenv(PASSWORD_ENV, ROOT_PW)
    conn = Connection(Server(slapd.url), ROOT_DN, ROOT_PW, auto_bind=True, raise_exceptions=True)
    tree = LdapTree(conn, f"ou=t{next(_tree_ids)}-{uuid.uuid4().hex[:6]},{SUFFIX}", slapd.url)
    conn.add(tree.base, ["organizationalUnit"], {"ou": tree.base.split(",")[0][3:]})
    conn.add(tree.people, ["organizationalUnit"], {"ou": "people"})
    conn.add(tree.groups, ["organizationalUnit"], {"ou": "groups"})
    departments = {1: "sales", 7: "finance", 8: "finance", 9: "security"}
    for n in range(1, 13):
        tree.add_user(f"u{n:02}", departments.get(n, "sales" if n <= 6 else "staff"))
    tree.add_group("crm-sales-north", [tree.user_dn(f"u{n:02}") for n in range(2, 7)])
    tree.add_group("crm-sales", [tree.user_dn("u01"), tree.group_dn("crm-sales-north")])
    tree.add_group("finance", [tree.user_dn("u07"), tree.user_dn("u08")])
    tree.add_group("security-officers", [tree.user_dn("u09")])
    tree.add_group("staff", [tree.user_dn(f"u{n:02}") for n in range(10, 13)])
    yield tree
    conn.unbind()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'directory.db'}")
    init_directory_db(eng)
    yield eng
    eng.dispose()


@pytest.fixture
async def people(engine: Engine) -> AsyncIterator[PeopleStatus]:
    status = PeopleStatus(engine, None, roles=RoleStore(engine), refresh_s=0.05)
    await status.start()
    yield status
    await status.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL schema of its own, dropped afterwards."""
    with temporary_schema("wg_dir") as schema:
        yield schema_url(schema)


HR_SECRET = "test-hr-secret-0123456789"
SCIM_TOKEN = "test-scim-token-0123456789"


@dataclass
class AdminServer:
    """The HR and SCIM routers on a real uvicorn listener on loopback."""

    url: str
    people: PeopleStatus
    engine: Engine


def admin_app(people: PeopleStatus, engine: Engine, directory: DirectorySettings) -> FastAPI:
    settings = settings_from_dict(
        {
            "upstreams": {"crm": {"base_url": "http://127.0.0.1:9", "prefix": "/crm"}},
            "directory": directory.model_dump(exclude_none=True),
            "admin": {
                "hr_secret_env": "WARDGATE_TEST_HR_SECRET",
                "scim_token_env": "WARDGATE_TEST_SCIM_TOKEN",
            },
        }
    )
    app = FastAPI()
    app.include_router(hr_router)
    app.include_router(scim_router)
    app.state.services = SimpleNamespace(settings=settings, people=people, engine=engine)
    return app


@pytest.fixture
def directory_file(tmp_path: Path) -> Path:
    """A copy of the demo directory that a test may edit."""
    path = tmp_path / "directory.yaml"
    shutil.copy(DEMO_DIRECTORY, path)
    return path


@pytest.fixture
async def admin_server(
    people: PeopleStatus, engine: Engine, directory_file: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AdminServer]:
    monkeypatch.setenv("WARDGATE_TEST_HR_SECRET", HR_SECRET)
    monkeypatch.setenv("WARDGATE_TEST_SCIM_TOKEN", SCIM_TOKEN)
    directory = DirectorySettings(source="file", file=str(directory_file))
    config = uvicorn.Config(
        admin_app(people, engine, directory),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield AdminServer(f"http://127.0.0.1:{port}", people, engine)
    finally:
        server.should_exit = True
        await task


async def sync_file(engine: Engine, people: PeopleStatus, path: Path) -> None:
    settings = DirectorySettings(source="file", file=str(path))
    await SyncRunner(settings, engine, people, make_source(settings)).run_once()

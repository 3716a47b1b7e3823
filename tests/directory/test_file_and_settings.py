"""The file directory (the demo's), and settings that must refuse what would be unsafe."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine

from gateway.directory.file import FileSource
from gateway.directory.settings import DirectorySettings, LdapSettings
from gateway.directory.status import PeopleStatus, RoleStore
from gateway.errors import ConfigError
from tests.directory.conftest import DEMO_DIRECTORY, sync_file


async def test_demo_directory(engine: Engine, people: PeopleStatus) -> None:
    await sync_file(engine, people, DEMO_DIRECTORY)
    grants = RoleStore(engine).grants()
    by_subject = {s: (r, d) for s, r, d in grants}

    assert by_subject["sales01"] == ("sales", "*")
    assert {s for s, r, _ in grants if r == "sales"} == {f"sales{n:02}" for n in range(1, 13)}
    assert by_subject["finance01"] == ("finance", "*")
    assert by_subject["officer01"] == ("officer", "*")
    assert by_subject["sync-bot"] == ("sync", "*")
    assert "leaver01" not in by_subject
    assert people.refusal("leaver01", time.time()) == "person_revoked"
    assert people.refusal("sales01", time.time()) is None


def write(tmp_path: Path, text: str) -> FileSource:
    path = tmp_path / "dir.yaml"
    path.write_text(text, encoding="utf-8")
    return FileSource(path, DirectorySettings(source="file", file=str(path)))


def test_nested_groups_with_a_cycle_are_walked_once(tmp_path: Path) -> None:
    source = write(
        tmp_path,
        """
role_rules: [{group: a, role: ra}, {group: b, role: rb, domain: crm}]
groups:
  a: {groups: [b]}
  b: {groups: [a], members: [x]}
people: [{subject: x}, {subject: y, groups: [a]}]
""",
    )
    people = source.snapshot().people
    assert people["x"].roles == frozenset({("ra", "*"), ("rb", "crm")})
    assert people["y"].roles == frozenset({("ra", "*"), ("rb", "crm")})  # b ⊂ a ⊂ b


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("people: [{subject: x, groups: [nope]}]", "nope"),
        ("people: [{subject: x}, {subject: x}]", "listed twice"),
        ("people: [{subject: x, status: gone}]", "status"),
        ("people: [{subject: x, role: admin}]", "role"),  # roles cannot be slipped in per person
        ("people: [x", "not valid YAML"),
    ],
)
def test_bad_directory_file_is_refused_naming_the_problem(
    tmp_path: Path, text: str, names: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        write(tmp_path, text).snapshot()
    assert names in refused.value.detail


@pytest.mark.parametrize(
    "ldap",
    [
        {"url": "http://dc1"},
        {"url": "ldaps://dc1", "start_tls": True},
        {"url": "ldap://dc1", "bind_dn": "cn=sync"},  # a bind without a password source
        {"url": "ldap://dc1", "password": "hunter2"},  # passwords never live in the YAML
        {"url": "ldap://dc1", "password_env": "A", "password_file": "/b"},
    ],
)
def test_unsafe_ldap_settings_are_refused(ldap: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        LdapSettings.model_validate({"user_base": "ou=p", "group_base": "ou=g", **ldap})


def test_role_rule_needs_exactly_one_matcher() -> None:
    for rule in ({"role": "r"}, {"role": "r", "group": "g", "group_dn": "cn=g"}):
        with pytest.raises(ValidationError):
            DirectorySettings.model_validate({"role_rules": [rule]})


def test_password_comes_from_env_or_file_and_a_missing_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = {"url": "ldap://dc1", "user_base": "ou=p", "group_base": "ou=g", "bind_dn": "cn=sync"}
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-file\n")
    monkeypatch.setenv("WG_TEST_PW", "from-env")
    assert (
        LdapSettings.model_validate({**base, "password_env": "WG_TEST_PW"}).password() == "from-env"
    )
    assert (
        LdapSettings.model_validate({**base, "password_file": str(secret_file)}).password()
        == "from-file"
    )
    monkeypatch.delenv("WG_TEST_PW")
    with pytest.raises(ConfigError, match="WG_TEST_PW"):
        LdapSettings.model_validate({**base, "password_env": "WG_TEST_PW"}).password()
    settings = LdapSettings.model_validate({**base, "password_file": str(secret_file)})
    assert "from-file" not in repr(settings)

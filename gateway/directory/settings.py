"""Settings of directory sync and offboarding (section ``directory:`` of wardgate.yaml).

Secrets never live here: the LDAP bind password is read at connection time from the
environment variable named by ``password_env`` or the file named by ``password_file``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.errors import ConfigError


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoleRule(_Frozen):
    """Members of a group (by exact DN, or by name glob such as ``crm-*``) get ``role``."""

    role: str = Field(min_length=1)
    domain: str = Field(default="*", min_length=1, description="an upstream name, or * for all")
    group_dn: str | None = None
    group: str | None = Field(default=None, description="group name (cn) glob")

    @model_validator(mode="after")
    def _one_matcher(self) -> RoleRule:
        if (self.group_dn is None) == (self.group is None):
            raise ValueError("give exactly one of group_dn (exact DN) or group (name glob)")
        return self


class AttributeMap(_Frozen):
    """Which LDAP attribute holds each field of a person."""

    login: str = "uid"
    mail: str = "mail"
    employee_id: str = "employeeNumber"
    department: str = "departmentNumber"
    manager: str = "manager"
    display_name: str = "displayName"


class LdapSettings(_Frozen):
    url: str = Field(description="ldap://host:389 or ldaps://host:636")
    start_tls: bool = False
    ca_file: str | None = Field(default=None, description="CA bundle for ldaps:// / StartTLS")
    bind_dn: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    user_base: str
    user_filter: str = "(objectClass=inetOrgPerson)"
    group_base: str
    group_filter: str = "(objectClass=groupOfNames)"
    dialect: Literal["openldap", "ad"] = "openldap"
    # expand: Wardgate walks group→group membership; memberof: the server's recursive
    # memberOf (dynlist); in_chain: AD's LDAP_MATCHING_RULE_IN_CHAIN. Default by dialect.
    nested_groups: Literal["expand", "memberof", "in_chain"] | None = None
    attributes: AttributeMap = AttributeMap()
    status_attribute: str | None = None
    disabled_values: list[str] = Field(default_factory=list)
    lockout_duration_s: int = Field(
        default=0, ge=0, description="ppolicy pwdLockoutDuration; 0 = until cleared"
    )
    page_size: int = Field(default=500, ge=1, le=10_000)
    timeout_s: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _ldap_url(cls, v: str) -> str:
        if not v.startswith(("ldap://", "ldaps://")):
            raise ValueError("must start with ldap:// or ldaps://")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> LdapSettings:
        if self.start_tls and self.url.startswith("ldaps://"):
            raise ValueError("start_tls applies to ldap:// only; ldaps:// is already TLS")
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        if self.bind_dn and not (self.password_env or self.password_file):
            raise ValueError("bind_dn needs password_env or password_file")
        return self

    @property
    def membership(self) -> Literal["expand", "memberof", "in_chain"]:
        if self.nested_groups:
            return self.nested_groups
        return "in_chain" if self.dialect == "ad" else "expand"

    def password(self) -> str | None:
        """The bind password, read now from its env var or file (never stored in settings)."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if not value:
                raise ConfigError(
                    f"directory.ldap.password_env: environment variable {self.password_env} "
                    "is not set; export it with the bind password"
                )
            return value
        if self.password_file:
            try:
                return Path(self.password_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"directory.ldap.password_file: cannot read {self.password_file} "
                    f"({exc.strerror}); check the path and permissions"
                ) from None
        return None


class DirectorySettings(_Frozen):
    source: Literal["file", "ldap", "none"] = "none"
    file: str | None = None
    ldap: LdapSettings | None = None
    role_rules: list[RoleRule] = Field(default_factory=list)
    # department → roles (domain *), used by HR "transferred" events and by the file source
    department_roles: dict[str, list[str]] = Field(default_factory=dict)
    interval_s: float = Field(default=60.0, ge=1, le=86_400)
    change_poll_s: float = Field(default=5.0, ge=0.5, le=3_600)
    max_revoke_share: float = Field(default=0.10, ge=0, le=1)

    @model_validator(mode="after")
    def _source_configured(self) -> DirectorySettings:
        if self.source == "file" and not self.file:
            raise ValueError("source 'file' needs directory.file (path to the YAML directory)")
        if self.source == "ldap" and self.ldap is None:
            raise ValueError("source 'ldap' needs a directory.ldap section")
        return self

"""Settings: one YAML file plus ``WARDGATE_…`` environment overrides, validated at start.

``WARDGATE_DATABASE__URL=postgresql://…`` overrides ``database: {url: …}``; a double
underscore descends one level; values are read as YAML scalars (``true``, ``5``, ``[a, b]``).
A bad file stops the process with one line per problem naming the key, the value and what
is expected. Everything here is frozen: settings are compiled once, never re-read per
request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from audit.settings import AuditSettings
from gateway.admin.oidc_login import ConsoleOidcSettings
from gateway.directory.settings import DirectorySettings
from gateway.errors import ConfigError

ENV_PREFIX = "WARDGATE_"
SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UpstreamSettings(_Frozen):
    base_url: str = Field(description="e.g. http://crm.internal:8000")
    prefix: str = Field(description="public path prefix, e.g. /crm")
    kind: Literal["rest", "soap"] = "rest"
    timeout_s: float = Field(30.0, gt=0, le=600)
    connect_timeout_s: float = Field(5.0, gt=0, le=120)
    case_insensitive: bool = False  # IIS-style upstreams: compare paths case-folded
    strip_prefix: bool = True
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="sent to this upstream on every request (its own credentials)",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v.startswith("/") or v != v.strip() or "//" in v:
            raise ValueError("must start with '/' and contain no spaces or '//'")
        return v.rstrip("/") or "/"


class IssuerSettings(_Frozen):
    issuer: str
    jwks_url: str
    audience: str | list[str]
    algorithms: list[str] = Field(default_factory=lambda: ["RS256"])
    leeway_s: int = Field(30, ge=0, le=300)
    trust_role_claims: bool = False
    roles_claim: str = "roles"
    subject_claim: str = "sub"

    @field_validator("algorithms")
    @classmethod
    def _algorithms(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if a not in SUPPORTED_ALGORITHMS]
        if bad or not v:
            allowed = ", ".join(sorted(SUPPORTED_ALGORITHMS))
            raise ValueError(f"unsupported algorithm {bad or v}; allowed: {allowed}")
        return v


class ListenSettings(_Frozen):
    proxy_host: str = "0.0.0.0"  # noqa: S104 - the proxy is meant to be reached
    proxy_port: int = Field(8080, ge=1, le=65535)
    admin_host: str = "127.0.0.1"
    admin_port: int = Field(8081, ge=1, le=65535)


class PolicySettings(_Frozen):
    dir: str = "policies"
    model: str = "model.conf"
    rules: str = "policy.csv"
    fields: str = "fields.yaml"
    resources: str = "resources.yaml"
    detection: str = "detection.yaml"

    def path(self, name: str) -> Path:
        return Path(self.dir) / getattr(self, name)


class LimitSettings(_Frozen):
    max_request_body: int = Field(10 * 1024 * 1024, ge=1024)
    max_filtered_response: int = Field(64 * 1024 * 1024, ge=1024)


class LogSettings(_Frozen):
    format: Literal["json", "console"] = "json"
    level: Literal["debug", "info", "warning", "error"] = "info"


class AdminSettings(_Frozen):
    officer_role: str = "officer"
    console_oidc: ConsoleOidcSettings | None = None  # single sign-on for the console
    scim_token_env: str = "WARDGATE_SCIM_TOKEN"  # noqa: S105 - the variable's name, not a secret
    hr_secret_env: str = "WARDGATE_HR_SECRET"  # noqa: S105 - the variable's name, not a secret


class Settings(_Frozen):
    listen: ListenSettings = ListenSettings()
    upstreams: dict[str, UpstreamSettings]
    issuers: list[IssuerSettings] = Field(default_factory=list)
    trusted_proxies: int = Field(0, ge=0, le=10)
    policy: PolicySettings = PolicySettings()
    limits: LimitSettings = LimitSettings()
    database_url: str = "sqlite:///.wardgate/wardgate.db"
    redis_url: str | None = None
    field_hash_key_env: str = "WARDGATE_FIELD_HASH_KEY"
    audit: AuditSettings = AuditSettings()
    directory: DirectorySettings = DirectorySettings()
    admin: AdminSettings = AdminSettings()
    log: LogSettings = LogSettings()

    @field_validator("upstreams")
    @classmethod
    def _distinct_prefixes(cls, v: dict[str, UpstreamSettings]) -> dict[str, UpstreamSettings]:
        if not v:
            raise ValueError("at least one upstream is required")
        seen: dict[str, str] = {}
        for name, up in v.items():
            if up.prefix in seen:
                raise ValueError(f"upstreams {seen[up.prefix]!r} and {name!r} share {up.prefix}")
            seen[up.prefix] = name
        return v


def load_settings(path: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, override and validate; raise ``ConfigError`` listing every problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"settings file {path} not found; pass --config FILE") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {raw!r}")
    apply_env_overrides(raw, os.environ if environ is None else environ)
    return settings_from_dict(raw, source=str(path))


def settings_from_dict(raw: dict[str, Any], source: str = "settings") -> Settings:
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from None


def apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Apply ``WARDGATE_<KEY>[__<SUBKEY>…]`` whose first key is a settings section.

    Other ``WARDGATE_`` variables (secrets such as ``WARDGATE_HR_SECRET``) are left alone.
    """
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = name[len(ENV_PREFIX) :].lower().split("__")
        if keys[0] not in Settings.model_fields:
            continue
        node = raw
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name}: cannot override inside {key!r}, not a mapping")
        node[keys[-1]] = yaml.safe_load(value) if value else value


def describe_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid settings"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(
                f"  {key}: unknown key (value {err['input']!r}); remove it or fix its spelling"
            )
        elif err["type"] == "missing":
            lines.append(f"  {key}: required but missing")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  {key}: {msg} (got {err['input']!r})")
    return "\n".join(lines)

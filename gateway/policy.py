"""The authorize stage: Casbin decides, Wardgate caches what it decided.

Casbin (``policies/model.conf`` + ``policies/policy.csv``) is the policy language and the source
of truth. Its plain ``Enforcer`` scans every rule on every call, so nothing on the hot path calls
it directly:

- a route decision depends only on (roles, upstream, route template signature, action), where
  the signature is the set of policy path patterns the path matches (``RouteTemplates``). Two
  paths with the same signature get the same answer from Casbin, so the answer is cached on
  that key, per policy version;
- a field plan depends only on (roles, upstream, entity) and is compiled once per version.

Deny by default and deny overrides allow, also across roles: one role's deny beats another
role's allow.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import casbin
import structlog

from gateway.catalog import FieldCatalog
from gateway.errors import ConfigError
from gateway.fieldplan import FieldPlan, HideRule
from gateway.principal import Principal
from gateway.routing import RouteTemplates, pattern_matches
from gateway.settings import Settings

log = structlog.get_logger(__name__)

ANY = "*"
PII_FIELD = "#pii"  # field rule object that lets a role see PII the catalog does not name


class RoleGrants(Protocol):
    """The role store (directory sync, HR, SCIM): which person holds which role where."""

    @property
    def version(self) -> int: ...

    def grants(self) -> list[tuple[str, str, str]]: ...


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason_id: str  # allowed | no_matching_rule | explicit_deny
    matched_rule: str | None = None


# --- Casbin custom functions (pure; registered once) ---------------------------------------


def domain_match(request_domain: str, policy_domain: str) -> bool:
    return policy_domain in (ANY, request_domain) or request_domain == ANY


def object_match(request_obj: str, policy_obj: str) -> bool:
    """Paths match path patterns (routing's syntax); ``entity.field`` objects match globs."""
    if policy_obj == ANY:
        return True
    if request_obj.startswith("/"):
        return policy_obj.startswith("/") and pattern_matches(request_obj, policy_obj)
    if policy_obj.startswith("/"):
        return False
    return fnmatch.fnmatchcase(request_obj.lower(), policy_obj.lower())


def action_match(request_act: str, policy_act: str) -> bool:
    return policy_act == ANY or request_act in policy_act.split("|")


def _rule_text(rule: list[str]) -> str:
    return "p, " + ", ".join(rule)


class Policy:
    """Compiled view of the Casbin policy for one version of the files and the role store."""

    def __init__(
        self,
        settings: Settings,
        catalog: FieldCatalog,
        role_store: RoleGrants | None = None,
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._role_store = role_store
        self._model_path = settings.policy.path("model")
        self._rules_path = settings.policy.path("rules")
        self._case_insensitive = {n: u.case_insensitive for n, u in settings.upstreams.items()}
        self._enforcer = self._load_enforcer()
        self.templates = self._compile_templates()
        self._file_version = self._digest()
        self._grants_version = -1
        self._person_roles: dict[str, list[tuple[str, str]]] = {}
        self._clear_caches()
        self.refresh_grants()

    # --- loading --------------------------------------------------------------------------

    def _load_enforcer(self) -> casbin.Enforcer:
        for path in (self._model_path, self._rules_path):
            if not Path(path).is_file():
                raise ConfigError(f"policy file {path} not found (policy.dir in settings)")
        try:
            enforcer = casbin.Enforcer(str(self._model_path), str(self._rules_path))
        except Exception as exc:  # casbin raises bare exceptions for syntax errors
            raise ConfigError(f"cannot load {self._rules_path}: {exc}") from exc
        enforcer.add_function("domainMatch", domain_match)
        enforcer.add_function("objectMatch", object_match)
        enforcer.add_function("actionMatch", action_match)
        enforcer.add_named_domain_matching_func("g", domain_match)
        enforcer.enable_auto_build_role_links(True)
        enforcer.build_role_links()
        self._validate(enforcer.get_policy())
        return enforcer

    def _validate(self, rules: list[list[str]]) -> None:
        known = set(self._settings.upstreams) | {ANY}
        for rule in rules:
            where = f"{self._rules_path}: {_rule_text(rule)}"
            if len(rule) != 5:
                raise ConfigError(f"{where}: expected p, role, upstream, object, action, effect")
            _, domain, _, _, effect = rule
            if effect not in ("allow", "deny"):
                raise ConfigError(f"{where}: effect {effect!r} must be allow or deny")
            if domain not in known:
                raise ConfigError(f"{where}: unknown upstream {domain!r}; known: {sorted(known)}")

    def _compile_templates(self) -> RouteTemplates:
        patterns: dict[str, set[str]] = {name: set() for name in self._settings.upstreams}
        for _, domain, obj, _, _ in self._enforcer.get_policy():
            if obj == ANY or obj.startswith("/"):
                targets = patterns.keys() if domain == ANY else (domain,)
                for name in targets:
                    patterns[name].add(obj)
        return RouteTemplates(patterns, self._case_insensitive)

    def _digest(self) -> str:
        h = hashlib.sha256()
        for path in (self._model_path, self._rules_path):
            h.update(Path(path).read_bytes())
        return h.hexdigest()[:16]

    def _clear_caches(self) -> None:
        self._decisions: dict[tuple[object, ...], Decision] = {}
        self._plans: dict[tuple[object, ...], FieldPlan] = {}
        self._roles: dict[tuple[str, str], frozenset[str]] = {}

    @property
    def grants_version(self) -> int:
        return self._grants_version

    @property
    def version(self) -> str:
        return f"{self._file_version}.{self._grants_version}"

    def refresh_grants(self) -> bool:
        """Pick up a new role-store version; returns True when something changed."""
        if self._role_store is None or self._role_store.version == self._grants_version:
            return False
        version = self._role_store.version
        person_roles: dict[str, list[tuple[str, str]]] = {}
        for subject, role, domain in self._role_store.grants():
            person_roles.setdefault(subject, []).append((role, domain))
        self._person_roles = person_roles
        self._grants_version = version
        self._roles = {}
        return True

    # --- questions asked per request --------------------------------------------------------

    def roles_for(self, principal: Principal, upstream: str) -> frozenset[str]:
        """The roles a caller holds on ``upstream`` (``*`` = on any upstream)."""
        if principal.granted_roles is not None:
            return principal.granted_roles
        key = (principal.subject, upstream)
        roles = self._roles.get(key)
        if roles is None:
            roles = frozenset(
                role
                for role, domain in self._person_roles.get(principal.subject, ())
                if domain_match(upstream, domain)
            )
            self._roles[key] = roles
        return roles

    def decide(self, roles: frozenset[str], upstream: str, path: str, action: str) -> Decision:
        """May ``roles`` do ``action`` (HTTP method or SOAP operation) on ``path``?"""
        signature = self.templates.match(upstream, path)
        if not signature:
            return Decision(False, "no_matching_rule")
        key = (roles, upstream, signature, action)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._enforce(roles, upstream, path, action)
            self._decisions[key] = decision
        return decision

    def field_plan(self, roles: frozenset[str], upstream: str, entity: str) -> FieldPlan:
        key = (roles, upstream, entity)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._compile_plan(roles, upstream, entity)
            self._plans[key] = plan
        return plan

    # --- cache misses: ask Casbin ---------------------------------------------------------

    def _enforce(self, roles: Iterable[str], upstream: str, obj: str, action: str) -> Decision:
        allow_rule: list[str] | None = None
        for role in sorted(roles):
            allowed, rule = self._enforcer.enforce_ex(role, upstream, obj, action)
            if rule and rule[-1] == "deny":
                return Decision(False, "explicit_deny", _rule_text(rule))
            if allowed and allow_rule is None:
                allow_rule = rule
        if allow_rule is not None:
            return Decision(True, "allowed", _rule_text(allow_rule))
        return Decision(False, "no_matching_rule")

    def _compile_plan(self, roles: frozenset[str], upstream: str, entity: str) -> FieldPlan:
        hidden: dict[str, HideRule] = {}
        write_denied: set[str] = set()
        for name, spec in self._catalog.fields(entity).items():
            read = self._enforce(roles, upstream, f"{entity}.{name}", "read")
            if not read.allowed and (spec.sensitive or read.reason_id == "explicit_deny"):
                hidden[name] = spec.hide
            if not self._enforce(roles, upstream, f"{entity}.{name}", "write").allowed:
                write_denied.add(name)
        pii_allowed = self._enforce(roles, upstream, f"{entity}.{PII_FIELD}", "read").allowed
        mask_pii = self._catalog.entity(entity).pii_masking and not pii_allowed
        return FieldPlan(entity, hidden, frozenset(write_denied), mask_pii)

"""The field catalog (``policies/fields.yaml``): every entity's fields and how to hide them.

Per field: a sensitivity class (public, internal, confidential, pii), the ``hide`` action
used when a role may not read it, and ``sensitive`` — a sensitive field is hidden unless a
policy rule allows it (the policy compiler reads this; it defaults to true for confidential
and pii fields). Per entity: ``pii_masking`` (mask PII detected in uncovered string fields).

``always_mask`` is the safety net: key / element names masked wherever they appear outside
mapped records. Inside a mapped record the plan decides for the fields the entity declares;
an always-mask name the entity does not declare is masked there too (a plan can only allow
what the catalog knows). Field names are compared case-insensitively everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml

from gateway.errors import ConfigError
from gateway.fieldplan import HideAction, HideRule

Sensitivity = Literal["public", "internal", "confidential", "pii"]
_SENSITIVITIES = ("public", "internal", "confidential", "pii")
_FIELD_KEYS = frozenset({"class", "hide", "keep_first", "keep_last", "sensitive"})


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of an entity: its class, how it is hidden, and whether it is sensitive."""

    name: str
    sensitivity: Sensitivity
    hide: HideRule
    sensitive: bool


@dataclass(frozen=True, slots=True)
class EntityCatalog:
    """The declared fields of one entity (keyed by name as spelled in the file)."""

    name: str
    fields: Mapping[str, FieldSpec]
    pii_masking: bool
    folded_names: frozenset[str]  # casefolded field names, for case-insensitive matching


class FieldCatalog:
    """Compiled ``fields.yaml``."""

    def __init__(self, entities: Mapping[str, EntityCatalog], always_mask: frozenset[str]):
        self._entities = entities
        self.always_mask = always_mask

    @classmethod
    def load(cls, path: str | Path) -> FieldCatalog:
        """Read and validate the file; raise ``ConfigError`` naming file, key and value."""
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: file not found") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        return _parse(str(path), raw)

    @property
    def entity_names(self) -> frozenset[str]:
        return frozenset(self._entities)

    def entity(self, name: str) -> EntityCatalog:
        """The entity's catalog; ``ConfigError`` if the catalog does not declare it."""
        try:
            return self._entities[name]
        except KeyError:
            raise ConfigError(f"entity {name!r} is not declared in the field catalog") from None

    def fields(self, entity: str) -> Mapping[str, FieldSpec]:
        return self.entity(entity).fields

    def declared(self, entity: str) -> frozenset[str]:
        """Casefolded field names the entity declares (empty for an unknown entity)."""
        known = self._entities.get(entity)
        return known.folded_names if known else frozenset()


def _fail(source: str, key: str, value: object, expected: str) -> ConfigError:
    return ConfigError(f"{source}: {key}: {expected} (got {value!r})")


def _parse(source: str, raw: Any) -> FieldCatalog:
    if not isinstance(raw, dict) or not set(raw) <= {"always_mask", "entities"}:
        raise _fail(source, "(top level)", raw, "expected a mapping with 'always_mask', 'entities'")
    always = raw.get("always_mask", [])
    if not isinstance(always, list) or not all(isinstance(n, str) and n for n in always):
        raise _fail(source, "always_mask", always, "expected a list of field names")
    entities_raw = raw.get("entities", {})
    if not isinstance(entities_raw, dict):
        raise _fail(source, "entities", entities_raw, "expected a mapping entity -> spec")
    entities = {
        str(name): _parse_entity(source, f"entities.{name}", str(name), spec)
        for name, spec in entities_raw.items()
    }
    return FieldCatalog(MappingProxyType(entities), frozenset(always))


def _parse_entity(source: str, key: str, name: str, spec: Any) -> EntityCatalog:
    if not isinstance(spec, dict) or not set(spec) <= {"fields", "pii_masking"}:
        raise _fail(source, key, spec, "expected a mapping with 'fields' and 'pii_masking'")
    pii_masking = spec.get("pii_masking", False)
    if not isinstance(pii_masking, bool):
        raise _fail(source, f"{key}.pii_masking", pii_masking, "expected true or false")
    fields_raw = spec.get("fields", {})
    if not isinstance(fields_raw, dict):
        raise _fail(source, f"{key}.fields", fields_raw, "expected a mapping field -> spec")
    fields: dict[str, FieldSpec] = {}
    folded: set[str] = set()
    for field_name, field_spec in fields_raw.items():
        field_key = f"{key}.fields.{field_name}"
        if str(field_name).casefold() in folded:
            raise _fail(source, field_key, field_name, "declared twice (names ignore case)")
        folded.add(str(field_name).casefold())
        fields[str(field_name)] = _parse_field(source, field_key, str(field_name), field_spec)
    return EntityCatalog(name, MappingProxyType(fields), pii_masking, frozenset(folded))


def _parse_field(source: str, key: str, name: str, spec: Any) -> FieldSpec:
    if not isinstance(spec, dict) or not set(spec) <= _FIELD_KEYS:
        raise _fail(source, key, spec, f"expected a mapping with keys from {sorted(_FIELD_KEYS)}")
    sensitivity = spec.get("class", "internal")
    if sensitivity not in _SENSITIVITIES:
        raise _fail(source, f"{key}.class", sensitivity, f"expected one of {list(_SENSITIVITIES)}")
    try:
        action = HideAction(spec.get("hide", "redact"))
    except ValueError:
        raise _fail(
            source,
            f"{key}.hide",
            spec.get("hide"),
            f"expected one of {[a.value for a in HideAction]}",
        ) from None
    keep = {}
    for keep_key in ("keep_first", "keep_last"):
        value = spec.get(keep_key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 64:
            raise _fail(source, f"{key}.{keep_key}", value, "expected an integer 0..64")
        if value and action is not HideAction.PARTIAL:
            raise _fail(source, f"{key}.{keep_key}", value, "only meaningful with hide: partial")
        keep[keep_key] = value
    sensitive = spec.get("sensitive", sensitivity in ("confidential", "pii"))
    if not isinstance(sensitive, bool):
        raise _fail(source, f"{key}.sensitive", sensitive, "expected true or false")
    return FieldSpec(name, sensitivity, HideRule(name, action, **keep), sensitive)

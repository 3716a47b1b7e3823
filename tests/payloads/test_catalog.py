"""Field catalog: the demo content, and errors that name file, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.catalog import FieldCatalog
from gateway.errors import ConfigError
from gateway.fieldplan import HideAction, HideRule


def test_demo_catalog(catalog):
    customer = catalog.fields("customer")
    assert customer["id_number"].hide == HideRule("id_number", HideAction.PARTIAL, 6, 4)
    assert customer["id_number"].sensitivity == "pii" and customer["id_number"].sensitive
    assert customer["phone"].hide == HideRule("phone", HideAction.PARTIAL, 3, 4)
    assert customer["credit_limit"].sensitivity == "confidential"
    assert catalog.fields("product")["CostPrice"].hide.action is HideAction.REMOVE
    assert catalog.fields("product")["CostPrice"].sensitive
    assert catalog.fields("invoice")["BankAccount"].hide == HideRule(
        "BankAccount", HideAction.PARTIAL, 4, 4
    )
    assert catalog.entity("customer").pii_masking
    assert {"password", "CostPrice", "BankAccount", "id_number"} <= catalog.always_mask
    assert catalog.entity_names == {"customer", "order", "product", "invoice"}
    assert catalog.declared("product") >= {"costprice", "code"}
    assert catalog.declared("unknown") == frozenset()


def test_unknown_entity_is_a_config_error(catalog):
    with pytest.raises(ConfigError, match="'ghost'"):
        catalog.entity("ghost")


@pytest.mark.parametrize(
    "text,named",
    [
        ("always_mask: password", "always_mask"),
        ("entities: {e: {fields: {f: {class: secret}}}}", "entities.e.fields.f.class"),
        ("entities: {e: {fields: {f: {hide: shred}}}}", "entities.e.fields.f.hide"),
        ("entities: {e: {fields: {f: {hide: partial, keep_first: -1}}}}", "keep_first"),
        ("entities: {e: {fields: {f: {hide: redact, keep_last: 2}}}}", "keep_last"),
        ("entities: {e: {fields: {f: {sensitive: maybe}}}}", "sensitive"),
        ("entities: {e: {fields: {Phone: {}, phone: {}}}}", "phone"),
        ("entities: {e: {pii_masking: 1}}", "pii_masking"),
        ("entities: {e: {colour: red}}", "entities.e"),
        ("rules: []", "top level"),
    ],
)
def test_load_errors(tmp_path: Path, text, named):
    path = tmp_path / "fields.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        FieldCatalog.load(path)
    assert str(path) in err.value.detail and named in err.value.detail


def test_sensitive_defaults_to_class(tmp_path: Path):
    path = tmp_path / "fields.yaml"
    path.write_text("entities: {e: {fields: {a: {class: pii}, b: {class: internal}, c: {}}}}")
    fields = FieldCatalog.load(path).fields("e")
    assert fields["a"].sensitive and not fields["b"].sensitive and not fields["c"].sensitive
    assert fields["c"].hide.action is HideAction.REDACT


def test_every_mapped_entity_is_in_the_catalog(catalog, resources):
    assert resources.entities == {"customer", "order", "product", "invoice"}
    assert resources.entities <= catalog.entity_names

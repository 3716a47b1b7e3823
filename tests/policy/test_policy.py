"""The authorize stage: Casbin decisions, their cache, field plans and the policy test runner."""

from __future__ import annotations

import shutil
from pathlib import Path

import casbin
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.catalog import FieldCatalog
from gateway.errors import ConfigError
from gateway.policy import Policy, action_match, domain_match, object_match
from gateway.policytest import run_policy_tests
from gateway.principal import Principal
from gateway.settings import load_settings

REPO = Path(__file__).parent.parent.parent
SETTINGS = load_settings(REPO / "wardgate.yaml", environ={})


class FakeRoles:
    def __init__(self, grants: list[tuple[str, str, str]]) -> None:
        self.version = 1
        self._grants = grants

    def grants(self) -> list[tuple[str, str, str]]:
        return self._grants


def make_policy(policy_dir: Path = REPO / "policies", grants=None) -> Policy:
    settings = SETTINGS.model_copy(
        update={"policy": SETTINGS.policy.model_copy(update={"dir": str(policy_dir)})}
    )
    catalog = FieldCatalog.load(settings.policy.path("fields"))
    return Policy(settings, catalog, FakeRoles(grants or []))


@pytest.fixture(scope="module")
def policy() -> Policy:
    return make_policy()


SALES = frozenset({"sales"})


def test_allow_explicit_deny_and_deny_by_default(policy: Policy):
    allowed = policy.decide(SALES, "crm", "/api/customers/7", "GET")
    assert allowed.allowed and allowed.matched_rule and "/api/customers/:id" in allowed.matched_rule
    denied = policy.decide(SALES, "crm", "/admin/users", "GET")
    assert (denied.allowed, denied.reason_id) == (False, "explicit_deny")
    nothing = policy.decide(frozenset({"finance"}), "crm", "/api/orders", "GET")
    assert (nothing.allowed, nothing.reason_id) == (False, "no_matching_rule")
    assert not policy.decide(frozenset(), "crm", "/api/customers", "GET").allowed


def test_deny_of_one_role_beats_allow_of_another(policy: Policy):
    assert policy.decide(frozenset({"crm_admin"}), "crm", "/admin/users", "GET").allowed
    both = policy.decide(frozenset({"crm_admin", "sales"}), "crm", "/admin/users", "GET")
    assert (both.allowed, both.reason_id) == (False, "explicit_deny")


def test_role_inheritance_from_grouping_rules(policy: Policy):
    assert policy.decide(frozenset({"sales_manager"}), "crm", "/api/customers", "GET").allowed
    assert not policy.decide(frozenset({"sales_manager"}), "crm", "/admin/x", "GET").allowed


def test_soap_operations_are_the_action(policy: Policy):
    assert policy.decide(SALES, "erp", "/soap", "GetProducts").allowed
    assert not policy.decide(SALES, "erp", "/soap", "GetInvoices").allowed
    assert not policy.decide(SALES, "erp", "/soap", "POST").allowed


SEGMENTS = st.sampled_from(["api", "customers", "orders", "admin", "7", "export.csv", "soap", "x"])
ROLES = st.frozensets(
    st.sampled_from(
        ["sales", "finance", "officer", "sync", "crm_admin", "sales_manager", "nobody"]
    ),
    max_size=3,
)
METHODS = st.sampled_from(["GET", "HEAD", "PATCH", "POST", "DELETE", "GetProducts"])


@settings(max_examples=300, deadline=None)
@given(ROLES, st.sampled_from(["crm", "erp"]), st.lists(SEGMENTS, max_size=4), METHODS)
def test_cached_decisions_agree_with_plain_casbin(policy: Policy, roles, upstream, segs, method):
    """Whatever the cache key, the answer is the one Casbin gives for the concrete path."""
    path = "/" + "/".join(segs)
    cached = policy.decide(roles, upstream, path, method).allowed
    enforcer = casbin.Enforcer(str(REPO / "policies/model.conf"), str(REPO / "policies/policy.csv"))
    enforcer.add_function("domainMatch", domain_match)
    enforcer.add_function("objectMatch", object_match)
    enforcer.add_function("actionMatch", action_match)
    enforcer.add_named_domain_matching_func("g", domain_match)
    enforcer.build_role_links()
    results = [enforcer.enforce_ex(r, upstream, path, method) for r in roles]
    denied = any(rule and rule[-1] == "deny" for _, rule in results)
    assert cached == (not denied and any(ok for ok, _ in results))


def test_field_plans(policy: Policy):
    sales_products = policy.field_plan(SALES, "erp", "product")
    assert set(sales_products.hidden) == {"CostPrice"}
    assert sales_products.hidden["CostPrice"].action == "remove"
    assert policy.field_plan(frozenset({"finance"}), "erp", "product").hidden == {}
    sales_customers = policy.field_plan(SALES, "crm", "customer")
    assert "id_number" in sales_customers.hidden and sales_customers.mask_pii
    assert "contact_name" not in sales_customers.write_denied
    assert "credit_limit" in sales_customers.write_denied
    officer = policy.field_plan(frozenset({"officer"}), "crm", "customer")
    assert officer.hidden == {} and not officer.mask_pii
    finance = policy.field_plan(frozenset({"finance"}), "crm", "customer")
    assert {"contact_name", "phone"} <= finance.write_denied
    assert policy.field_plan(SALES, "erp", "product") is sales_products  # compiled once


def test_roles_come_from_the_role_store_per_upstream():
    policy = make_policy(grants=[("alice", "sales", "*"), ("alice", "finance", "erp")])
    alice = Principal("alice", "jwt")
    assert policy.roles_for(alice, "crm") == {"sales"}
    assert policy.roles_for(alice, "erp") == {"sales", "finance"}
    assert policy.roles_for(Principal("mallory", "jwt"), "crm") == frozenset()
    keyed = Principal("bot", "api-key", granted_roles=frozenset({"sync"}))
    assert policy.roles_for(keyed, "crm") == {"sync"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("p, sales, nosuch, /x, GET, allow", "unknown upstream 'nosuch'"),
        ("p, sales, crm, /x, GET, maybe", "effect 'maybe' must be allow or deny"),
    ],
)
def test_bad_rules_name_the_problem(tmp_path: Path, line: str, message: str):
    shutil.copytree(REPO / "policies", tmp_path / "p")
    with (tmp_path / "p" / "policy.csv").open("a") as f:
        f.write(line + "\n")
    with pytest.raises(ConfigError, match=message):
        make_policy(tmp_path / "p")


def test_policy_tests_pass_and_catch_a_leaky_policy(tmp_path: Path, capsys):
    assert (
        run_policy_tests(
            REPO / "wardgate.yaml", policy_dir=REPO / "policies", tests_dir=REPO / "policies/tests"
        )
        == 0
    )
    shutil.copytree(REPO / "policies", tmp_path / "p")
    with (tmp_path / "p" / "policy.csv").open("a") as f:
        f.write("p, sales, erp, product.CostPrice, read, allow\n")
        f.write("p, finance, crm, customer.contact_name, write, allow\n")
    failures = run_policy_tests(
        REPO / "wardgate.yaml", policy_dir=tmp_path / "p", tests_dir=REPO / "policies/tests"
    )
    assert failures == 2
    out = capsys.readouterr().out
    assert "field 'CostPrice' should be absent" in out

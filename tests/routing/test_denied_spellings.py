"""Every spelling of /crm/admin/users is refused or normalises to exactly that path.

The corpus sections together cover every line, so each line is checked for its exact outcome.
"""

from __future__ import annotations

import pytest

from gateway.errors import BadRequest, NotFound
from gateway.routing import Router
from tests.routing.conftest import load_corpus, upstream

CORPUS = load_corpus()
TARGET = "/crm/admin/users"


def _router(case_insensitive: bool) -> Router:
    return Router({"crm": upstream("/crm", case_insensitive=case_insensitive)})


def _outcome(router: Router, raw: bytes) -> str:
    try:
        route = router.resolve(raw)
    except (BadRequest, NotFound) as refused:
        return f"refused:{refused.reason_id}"
    if route.public_path == TARGET:
        assert route.upstream_path == "/admin/users"
        assert route.upstream_target == "/admin/users"
    return route.public_path


def test_corpus_is_large_and_has_every_section() -> None:
    assert {"normalised", "case", "refused"} <= CORPUS.keys()
    assert sum(len(lines) for lines in CORPUS.values()) >= 60
    assert len(CORPUS["refused"]) >= 60


@pytest.mark.parametrize("raw", CORPUS["refused"])
@pytest.mark.parametrize("case_insensitive", [False, True], ids=["case-sensitive", "iis"])
def test_refused_spellings_are_refused(raw: bytes, case_insensitive: bool) -> None:
    assert _outcome(_router(case_insensitive), raw).startswith("refused:")


@pytest.mark.parametrize("raw", CORPUS["normalised"])
@pytest.mark.parametrize("case_insensitive", [False, True], ids=["case-sensitive", "iis"])
def test_harmless_spellings_normalise_to_the_plain_path(raw: bytes, case_insensitive: bool) -> None:
    assert _outcome(_router(case_insensitive), raw) == TARGET


@pytest.mark.parametrize("raw", CORPUS["case"])
def test_case_variants_depend_on_the_upstreams_case_rule(raw: bytes) -> None:
    assert _outcome(_router(False), raw) == "refused:no_upstream"
    assert _outcome(_router(True), raw) == TARGET

"""Attacker-chosen text (subjects, explanations, entity names, paths) renders as text only.

The browser context bypasses the Content-Security-Policy, so these tests would catch a
view that parsed data as HTML even though the CSP would block the script in production.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.standin_api import OFFICER_TOKEN, XSS_EXPLANATION, XSS_SUBJECT, StandIn
from tests.browser.test_console import sign_in

pytestmark = pytest.mark.browser
XSS_ENTITY = "<svg onload=window.__pwned=4>"
XSS_PATH = "/crm/api/customers?q=<img src=x onerror=window.__pwned=5>"


@pytest.fixture
def hostile(standin: StandIn) -> StandIn:
    """An alert, a person, exports and an audit event whose text is markup."""
    alert = dict(standin.alerts["a-1001"])
    alert.update(
        id="a-666",
        subject=XSS_SUBJECT,
        explanation=XSS_EXPLANATION,
        entity=XSS_ENTITY,
        evidence={XSS_ENTITY: XSS_PATH, "top_paths": [XSS_PATH]},
        transitions=[],
    )
    standin.alerts = {"a-666": alert}
    person = dict(standin.people["li.wei"], subject=XSS_SUBJECT, display_name=XSS_EXPLANATION)
    standin.people[XSS_SUBJECT] = person
    standin.exports[XSS_SUBJECT] = [
        dict(standin.exports["li.wei"][0], entity=XSS_ENTITY),
    ]
    standin.events = [dict(standin.events[0], subject=XSS_SUBJECT, path=XSS_PATH)]
    return standin


@pytest.fixture
def csp_free_page(new_page: Callable[..., Page]) -> Page:
    return new_page(bypass_csp=True)


def assert_inert(page: Page) -> None:
    """No element came from the data and no script ran."""
    view = page.locator("#view")
    expect(view.locator("img, script, b, svg[onload], [onerror], [onmouseover]")).to_have_count(0)
    assert page.evaluate("window.__pwned") is None


def test_inbox_and_alert_show_markup_as_text(
    csp_free_page: Page, console_url: str, hostile: StandIn
) -> None:
    page = csp_free_page
    sign_in(page, console_url)
    row = page.locator("table.alerts tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text(XSS_SUBJECT)
    expect(row.locator("td").nth(3)).to_have_text(XSS_EXPLANATION)
    assert_inert(page)
    row.get_by_role("link", name=XSS_EXPLANATION).click()
    expect(page.locator("p.explanation")).to_have_text(XSS_EXPLANATION)
    expect(page.locator("dl.evidence dt").first).to_have_text(XSS_ENTITY)
    expect(page.locator("dl.evidence")).to_contain_text(XSS_PATH)
    assert_inert(page)


def test_person_view_and_chart_show_markup_as_text(
    csp_free_page: Page, console_url: str, hostile: StandIn
) -> None:
    page = csp_free_page
    sign_in(page, console_url)
    page.locator("table.alerts").get_by_role("link", name=XSS_SUBJECT).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(XSS_EXPLANATION)
    expect(page.locator("dl.facts dd").first).to_have_text(XSS_SUBJECT)
    expect(page.locator("ul.legend li")).to_have_text([XSS_ENTITY])
    expect(page.locator("svg.chart g.bar title")).to_contain_text(XSS_ENTITY)
    assert_inert(page)
    # The subject reached the API as one path segment, markup and all.
    assert hostile.calls[-1].path.startswith("/api/people/<img src=x onerror=")


def test_audit_rows_show_markup_as_text(
    csp_free_page: Page, console_url: str, hostile: StandIn
) -> None:
    page = csp_free_page
    sign_in(page, console_url, route="#/audit")
    expect(page.locator("table.events td.path")).to_have_text(XSS_PATH)
    expect(page.locator("table.events").get_by_role("link", name=XSS_SUBJECT)).to_be_visible()
    assert_inert(page)


def test_a_problem_detail_with_markup_is_shown_as_text(
    csp_free_page: Page, console_url: str, standin: StandIn
) -> None:
    page = csp_free_page
    sign_in(page, console_url, route=f"#/people/{XSS_SUBJECT}")
    expect(page.locator("#notice")).to_have_text(
        f"The request failed: 404 no person {XSS_SUBJECT!r} in the directory"
    )
    assert_inert(page)


def test_the_csp_itself_blocks_injected_inline_script(page: Page, console_url: str) -> None:
    """Second line of defence: even markup put into the page by hand runs no script."""
    sign_in(page, console_url, token=OFFICER_TOKEN)
    expect(page.locator("table.alerts")).to_be_visible()
    page.evaluate(
        """() => {
            const probe = document.createElement('div');
            probe.innerHTML = '<img src=x onerror="window.__pwned=9">';
            document.body.append(probe);
            const script = document.createElement('script');
            script.textContent = 'window.__pwned = 10';
            document.body.append(script);
        }"""
    )
    expect(page.locator("img[src=x]")).to_have_js_property("complete", True)
    assert page.evaluate("window.__pwned") is None

"""The console in Chromium: sign in with a token, review and act on alerts, people, audit."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.standin_api import CLERK_TOKEN, OFFICER_TOKEN, StandIn

pytestmark = pytest.mark.browser
TOKEN_KEY = "wardgate.console.token"


def sign_in(page: Page, base_url: str, token: str = OFFICER_TOKEN, route: str = "") -> None:
    page.goto(f"{base_url}/console{route}")
    page.get_by_label("Officer bearer token or API key").fill(token)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_with_a_token_lists_open_alerts_newest_first(
    page: Page, console_url: str, standin: StandIn
) -> None:
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    sign_in(page, console_url)
    rows = page.locator("table.alerts tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("zhang.min")
    expect(rows.nth(0)).to_contain_text("crawl")
    expect(rows.nth(0)).to_contain_text("20 min ago")
    expect(rows.nth(1)).to_contain_text("high")
    expect(rows.nth(1)).to_contain_text("li.wei exported 12,400 customers records in 1 h")
    expect(rows.nth(1)).to_contain_text("12,400")
    expect(rows.nth(1)).to_contain_text("3 h ago")
    assert standin.calls[-1].authorization == f"Bearer {OFFICER_TOKEN}"
    # The token lives in this tab's sessionStorage only: not localStorage, cookies or URLs.
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") == OFFICER_TOKEN
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    assert not [url for url in requested if OFFICER_TOKEN in url]


def test_state_filter_and_empty_state(page: Page, console_url: str, standin: StandIn) -> None:
    sign_in(page, console_url)
    page.get_by_label("Show").select_option("resolved")
    expect(page.locator("table.alerts tbody tr")).to_have_count(1)
    expect(page.locator("table.alerts")).to_contain_text("chen.jie")
    assert standin.calls[-1].query == {"state": "resolved"}
    page.get_by_label("Show").select_option("acknowledged")
    expect(page.get_by_text("No acknowledged alerts.")).to_be_visible()


def test_acknowledge_then_resolve_sends_exactly_those_calls(
    page: Page, console_url: str, standin: StandIn
) -> None:
    sign_in(page, console_url)
    page.get_by_role("link", name=re.compile("li.wei exported 12,400")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("volume alert for li.wei")
    expect(page.locator("dl.evidence")).to_contain_text("/crm/api/customers?page=2")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#notice")).to_have_text("Alert acknowledged.")
    expect(page.get_by_role("button", name="Acknowledge")).to_be_disabled()
    page.get_by_label("True positive").check()
    page.get_by_label("Note (what you found)").fill("Confirmed with her manager: not approved.")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#notice")).to_have_text("Alert resolved.")
    expect(page.get_by_text("This alert is resolved; nothing left to do.")).to_be_visible()
    history = page.locator("table.transitions tbody tr")
    expect(history).to_have_count(3)
    expect(history.nth(2)).to_contain_text("Confirmed with her manager: not approved.")
    assert standin.writes() == [
        ("POST", "/api/alerts/a-1001/acknowledge", {}),
        (
            "POST",
            "/api/alerts/a-1001/resolve",
            {"verdict": "true_positive", "note": "Confirmed with her manager: not approved."},
        ),
    ]


def test_resolve_without_a_verdict_asks_for_one_and_sends_nothing(
    page: Page, console_url: str, standin: StandIn
) -> None:
    sign_in(page, console_url, route="#/alerts/a-1002")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#notice")).to_have_text("Choose a verdict before resolving the alert.")
    assert standin.writes() == []


def test_a_refused_transition_shows_the_api_detail(
    page: Page, console_url: str, standin: StandIn
) -> None:
    sign_in(page, console_url, route="#/alerts/a-1002")
    expect(page.get_by_role("button", name="Acknowledge")).to_be_enabled()
    standin.alerts["a-1002"]["state"] = "resolved"  # another officer was quicker
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#notice")).to_have_text(
        "The request failed: 409 alert a-1002 is resolved; it can become acknowledged only "
        "from open"
    )


def test_person_view_draws_the_exports_chart(page: Page, console_url: str) -> None:
    sign_in(page, console_url, route="#/people/li.wei")
    expect(page.get_by_role("heading", level=1)).to_have_text("Li Wei")
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("active")
    expect(facts).to_contain_text("sales")
    expect(facts).to_contain_text("crm_reader (crm)")
    expect(facts).to_contain_text("Yes — last day 2026-12-18")
    chart = page.locator("svg.chart")
    expect(chart).to_be_visible()
    # Two hours with exports in the last 30 days; the 40-day-old hour is outside the chart.
    expect(chart.locator("g.bar")).to_have_count(2)
    expect(chart.locator("rect.series")).to_have_count(3)
    expect(chart.locator("g.bar title").first).to_contain_text("customers: 12,400")
    expect(page.locator("ul.legend li")).to_have_text(["customers", "orders"])
    expect(page.locator("figure.exports figcaption")).to_contain_text(
        "13,550 records in 30 days; busiest hour"
    )
    expect(page.locator("table.alerts tbody tr")).to_have_count(1)


def test_people_list_leads_to_a_person_and_their_trail(
    page: Page, console_url: str, standin: StandIn
) -> None:
    sign_in(page, console_url)
    page.get_by_role("link", name="People", exact=True).click()
    rows = page.locator("section.people tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.filter(has_text="chen.jie")).to_contain_text("suspended")
    expect(rows.filter(has_text="li.wei")).to_contain_text("Yes — last day 2026-12-18")
    rows.get_by_role("link", name="li.wei").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Li Wei")
    page.get_by_role("link", name="Their audit trail →").click()
    expect(page.get_by_label("Person")).to_have_value("li.wei")
    expect(page.locator("table.events tbody tr")).to_have_count(50)
    assert standin.calls[-1].query == {"limit": "50", "subject": "li.wei"}


def test_a_person_without_exports_gets_an_empty_state(page: Page, console_url: str) -> None:
    sign_in(page, console_url, route="#/people/zhang.min")
    expect(page.get_by_text("No records exported in the last 30 days.")).to_be_visible()


def test_suspend_asks_for_confirmation_and_cancel_sends_nothing(
    page: Page, console_url: str, standin: StandIn
) -> None:
    sign_in(page, console_url, route="#/people/zhang.min")
    page.get_by_role("button", name="Suspend…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Suspend Zhang Min? Every token and API key")
    assert standin.writes() == []
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="Suspend…").click()
    dialog.get_by_label("Reason").fill("Crawling orders, see alert a-1002")
    dialog.get_by_role("button", name="Yes, suspend").click()
    expect(page.locator("#notice")).to_have_text("Zhang Min is suspended.")
    expect(page.locator("dl.facts")).to_contain_text("suspended")
    page.get_by_role("button", name="Reinstate…").click()
    page.get_by_role("dialog").get_by_role("button", name="Yes, reinstate").click()
    expect(page.locator("#notice")).to_have_text("Zhang Min is reinstated.")
    assert standin.writes() == [
        ("POST", "/api/people/zhang.min/suspend", {"reason": "Crawling orders, see alert a-1002"}),
        ("POST", "/api/people/zhang.min/reinstate", {}),
    ]


def test_people_who_left_cannot_be_suspended_from_the_console(page: Page, console_url: str) -> None:
    sign_in(page, console_url, route="#/people/wang.fang")
    expect(
        page.get_by_text("Wang Fang is left; the directory decides their access.")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Suspend…")).to_have_count(0)


def test_a_token_without_the_officer_role_gets_a_clear_error(page: Page, console_url: str) -> None:
    sign_in(page, console_url, token=CLERK_TOKEN)
    expect(page.locator("#notice")).to_have_text(
        "Your token is not an officer's: 403 this admin route needs the officer role; "
        "ask a security administrator for it"
    )
    expect(page.get_by_label("Officer bearer token or API key")).to_be_visible()
    expect(page.locator("#nav")).to_be_hidden()
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None


def test_an_unknown_token_is_refused_with_the_api_detail(page: Page, console_url: str) -> None:
    sign_in(page, console_url, token="made-up")
    expect(page.locator("#notice")).to_have_text(
        "Your token was not accepted: 401 the token is not valid"
    )


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Paste an officer's bearer token or API key first."),
        ("two words", "That is not a token: a token is one line of letters, digits and symbols"),
        ("tökén", "That is not a token"),
    ],
)
def test_a_malformed_token_is_refused_before_any_call(
    page: Page, console_url: str, standin: StandIn, typed: str, message: str
) -> None:
    sign_in(page, console_url, token=typed)
    expect(page.locator("#notice")).to_contain_text(message)
    assert standin.calls == []


def test_sign_out_forgets_the_token(page: Page, console_url: str) -> None:
    sign_in(page, console_url)
    expect(page.locator("table.alerts")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#notice")).to_have_text("You are signed out.")
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None
    page.reload()
    expect(page.get_by_label("Officer bearer token or API key")).to_be_visible()


def test_audit_search_sends_the_filters_and_pages_with_the_cursor(
    page: Page, console_url: str, standin: StandIn
) -> None:
    sign_in(page, console_url, route="#/audit")
    expect(page.locator("table.events tbody tr")).to_have_count(50)
    page.get_by_label("Person").fill("li.wei")
    page.get_by_label("Decision").select_option("allow")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.events tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("li.wei")
    assert standin.calls[-1].query == {"limit": "50", "subject": "li.wei", "decision": "allow"}
    page.get_by_role("button", name="Load more").click()
    expect(rows).to_have_count(51)  # 51 of li.wei's 60 events are allowed
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    assert standin.calls[-1].query["cursor"] == "50"
    assert "li.wei" in page.url


def test_audit_times_are_sent_as_utc(page: Page, console_url: str, standin: StandIn) -> None:
    sign_in(page, console_url, route="#/audit")
    page.get_by_label("Since (UTC)").fill("2026-11-20T08:30")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No events match these filters.")).to_be_visible()
    assert standin.calls[-1].query == {"limit": "50", "since": "2026-11-20T08:30:00Z"}

"""Signing in to the console: the key is checked by the API before it is kept, kept for the tab
only, and a wrong key is refused with the API's reason. Without a key the page shows nothing
and asks the API for nothing."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, expect

from tests.api.conftest import KEY_A
from tests.console.conftest import StartConsole, screenshot


def test_a_wrong_key_is_refused_and_nothing_is_shown(
    start_console: StartConsole, context: BrowserContext
) -> None:
    console = start_console()
    page = console.page(context)
    page.goto(f"{console.url}/console#/history")
    expect(page.locator("#api-key")).to_be_focused()
    # Before a key: no data was asked for, no navigation is offered.
    assert [url for url in console.requests if "/console" not in url] == []
    expect(page.locator("#nav")).to_be_hidden()

    page.fill("#api-key", "not-a-key-at-all")
    page.press("#api-key", "Enter")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The API key was refused: invalid API key (invalid_api_key)")
    screenshot(page, "sign-in-refused")
    assert page.evaluate("Object.keys(sessionStorage).length") == 0
    expect(page.locator("#nav")).to_be_hidden()
    expect(page.locator("#history-table")).to_have_count(0)


def test_a_good_key_opens_the_console_for_this_tab_only(
    start_console: StartConsole, context: BrowserContext
) -> None:
    console = start_console()
    page = console.page(context)
    console.sign_in(page, view="#/providers")
    expect(page.locator("#providers-table")).to_be_visible()  # where the user was going
    expect(page.locator("tr[data-provider=openai]")).to_contain_text("available")
    screenshot(page, "providers")
    assert page.evaluate("sessionStorage.getItem('reasoning-agent.api-key')") == KEY_A
    assert page.evaluate("localStorage.getItem('reasoning-agent.api-key')") is None
    # Every data call carried the key as X-API-Key (a request without it would be a 401).
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if "/query" in r.url else None)
    page.click("#nav >> text=History")
    expect(page.locator("#history-table, .notice.info").first).to_be_visible()
    assert statuses == [200]

    # Another tab has its own sessionStorage: it must sign in again.
    other = console.page(context)
    other.goto(f"{console.url}/console#/history")
    expect(other.locator("#api-key")).to_be_visible()

    page.click("#signout")
    expect(page.locator("#api-key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('reasoning-agent.api-key')") is None


def test_the_sign_in_page_at_phone_width(
    start_console: StartConsole, context: BrowserContext
) -> None:
    console = start_console()
    page = console.page(context)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{console.url}/console")
    expect(page.locator("#api-key")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "sign-in-phone")

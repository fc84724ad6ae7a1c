"""The history page: text search, filters and cursor paging over GET /query, by mouse and by
keyboard, at laptop and at phone width, in light and dark."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import BrowserContext, expect

from tests.api.conftest import headers
from tests.console.conftest import Console, StartConsole, screenshot


def _run(console: Console, prompt: str, **body: object) -> str:
    response = httpx.post(
        f"{console.url}/task",
        headers=headers(),
        json={"prompt": prompt, "provider": "echo", **body},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    task_id: str = response.json()["id"]
    return task_id


def test_the_history_is_searched_filtered_and_paged(
    start_console: StartConsole, context: BrowserContext
) -> None:
    console = start_console()
    zebras = [_run(console, f"Final answer: zebra {i}") for i in range(3)]
    _run(console, "Final answer: giraffe", strategy="self_consistency", samples=3)
    _run(console, "Final answer: okapi", strategy="cot")
    page = console.page(context)
    console.sign_in(page)
    rows = page.locator("#history-table tbody tr")
    expect(rows).to_have_count(5)
    screenshot(page, "history")

    page.fill("#q", "zebra")
    page.select_option("#limit", "20")
    page.press("#q", "Enter")
    expect(rows).to_have_count(3)
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.task)") == zebras[::-1]  # newest first
    expect(page).to_have_url(re.compile(r"#/history\?q=zebra"))

    page.fill("#q", "")
    page.select_option("#strategy", "self_consistency")
    page.click("form.filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("giraffe")
    expect(rows.first).to_contain_text("100%")  # its confidence
    expect(rows.first.locator("[data-label=Calls]")).to_have_text("3")

    page.select_option("#strategy", "")
    page.select_option("#status", "failed")
    page.click("form.filters button[type=submit]")
    expect(page.locator(".notice.info")).to_have_text("No task matches.")

    # Paging: two per page, newest first, through the cursors and back.
    page.goto(f"{console.url}/console#/history?q=zebra&limit=2")
    page.reload()  # the key is kept for the tab, across reloads
    expect(rows).to_have_count(2)
    page.click("a[rel=next]")
    expect(rows).to_have_count(1)
    assert rows.first.get_attribute("data-task") == zebras[0]
    expect(page.locator("a[rel=next]")).to_have_count(0)
    page.click("text=Newest")
    expect(rows).to_have_count(2)


def test_a_task_is_reached_by_keyboard_alone(
    start_console: StartConsole, context: BrowserContext
) -> None:
    console = start_console()
    task_id = _run(console, "Final answer: 5", strategy="self_consistency", samples=2)
    page = console.page(context)
    page.goto(f"{console.url}/console")
    page.keyboard.type("test-key-alpha-0001")  # the key field has the focus
    page.keyboard.press("Enter")
    rows = page.locator("#history-table tbody tr")
    expect(rows).to_have_count(1)
    link = page.locator("#history-table a.prompt")
    for _ in range(40):  # Tab through the page until the task's link has the focus
        page.keyboard.press("Tab")
        if link.evaluate("a => a === document.activeElement"):
            break
    expect(link).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{console.url}/console#/task/{task_id}")
    expect(page.locator("#vote-chart")).to_be_visible()


def test_pages_fit_a_phone_and_follow_the_theme(
    start_console: StartConsole, context: BrowserContext
) -> None:
    console = start_console()
    task_id = _run(console, "Final answer: 3 " + "long-words " * 40, strategy="self_consistency")
    page = console.page(context)
    console.sign_in(page)
    page.set_viewport_size({"width": 390, "height": 844})
    for view, ready in (
        ("#/history", "#history-table"),
        (f"#/task/{task_id}", "#timeline"),
        ("#/new", "#prompt"),
        ("#/providers", "#providers-table"),
    ):
        page.goto(f"{console.url}/console{view}")
        page.wait_for_selector(ready)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{view} is {overflow}px wider than a phone"
        screenshot(page, f"phone-{view.strip('#/').split('/')[0]}")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{console.url}/console#/task/{task_id}")
    page.wait_for_selector("#timeline")
    background = "getComputedStyle(document.body).backgroundColor"
    light = page.evaluate(background)
    page.click("#theme")  # auto -> light
    page.click("#theme")  # light -> dark
    expect(page.locator("#theme")).to_have_text("Theme: dark")
    dark = page.evaluate(background)
    assert light != dark and dark == "rgb(17, 20, 23)"
    screenshot(page, "task-dark")
    page.reload()  # the choice is remembered (it is not a secret: localStorage)
    expect(page.locator("#theme")).to_have_text("Theme: dark")
    page.click("#theme")  # dark -> auto
    page.emulate_media(color_scheme="dark")
    assert page.evaluate(background) == dark  # automatic follows the system

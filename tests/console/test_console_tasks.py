"""Running tasks from the console: a streamed task's progress as it happens, a vote's chart and
its trace, a vote across providers broken down by provider, and a background task started,
watched and cancelled. The upstream is the mock OpenAI server, slowed down so progress shows."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from tests.api.conftest import headers
from tests.console.conftest import Console, StartConsole, cycling, screenshot


def _new_task(console: Console, page: Page, prompt: str, strategy: str, **fields: str) -> None:
    page.click("#nav >> text=New task")
    page.fill("#prompt", prompt)
    page.select_option("#provider", "openai")
    page.select_option("#strategy", strategy)
    for name, value in fields.items():
        page.fill(f"#{name}", value)


def test_a_streamed_task_shows_its_progress_call_by_call(
    start_console: StartConsole, context: BrowserContext
) -> None:
    console = start_console(latency=0.6)  # each of refine's three calls takes 0.6 s upstream
    page = console.page(context)
    console.sign_in(page)
    _new_task(console, page, "Final answer: 7", "refine")
    page.click("text=Run task")

    progress = page.locator("#task-progress")
    text = page.locator("#progress-text")
    # Seen mid-way: one call of three done, the next one out (its bar growing).
    expect(text).to_have_text("1 of 3 calls done")
    assert progress.evaluate("p => [p.value, p.max]") == [1, 3]
    expect(page.locator("#live-timeline li.call.running")).to_have_count(1)
    screenshot(page, "new-task-streaming")
    expect(text).to_have_text("2 of 3 calls done")

    final = page.locator("#final-answer")
    expect(final).to_be_visible()
    expect(text).to_have_text("3 calls done")
    assert progress.evaluate("p => [p.value, p.max]") == [3, 3]
    calls = page.locator("#live-timeline li.call")
    expect(calls).to_have_count(3)
    expect(calls.nth(0)).to_contain_text("draft")
    expect(calls.nth(1)).to_contain_text("critique 1")
    expect(calls.nth(2)).to_contain_text("revise 1")
    # The calls were timed as they happened: each started after the one before ended.
    starts = calls.evaluate_all("items => items.map(li => Number(li.dataset.startMs))")
    assert starts[1] - starts[0] >= 500 and starts[2] - starts[1] >= 500, starts
    screenshot(page, "new-task-done")
    assert console.upstream.calls == 3


def test_a_vote_opens_on_its_chart_and_trace(
    start_console: StartConsole, context: BrowserContext
) -> None:
    # Five samples: the upstream answers 42, 42, 41, 42, 42 (in whatever order they arrive).
    console = start_console(
        latency=0.3, responder=cycling("Final answer: 42", "Final answer: 42", "Final answer: 41")
    )
    page = console.page(context)
    console.sign_in(page)
    _new_task(console, page, "What is 6 * 7?", "self_consistency", **{"opt-samples": "5"})
    page.click("text=Run task")
    final = page.locator("#final-answer")
    expect(final.locator(".answer")).to_have_text("42")
    expect(final).to_contain_text("80%")

    page.click("#open-task")
    expect(page.locator("#task-status")).to_have_text("succeeded")
    chart = page.locator("#vote-chart")
    winner = chart.locator("li.winner")
    expect(winner).to_have_attribute("data-answer", "42")
    expect(winner).to_have_attribute("data-votes", "4")
    expect(winner).to_contain_text("4 votes (80%)")
    expect(chart.locator("li[data-answer='41']")).to_contain_text("1 vote (20%)")
    expect(chart.locator("figcaption")).to_contain_text("5 votes cast · confidence 80%")
    # The winner's bar is four times as long as the loser's.
    widths = chart.locator("rect.fill").evaluate_all(
        "rects => rects.map(r => Number(r.getAttribute('width')))"
    )
    assert widths == [80.0, 20.0]
    trace = page.locator("#timeline li.call")
    expect(trace).to_have_count(5)
    candidates = page.locator("#timeline q.candidate").all_inner_texts()
    assert sorted(candidates) == ["41", "42", "42", "42", "42"]
    expect(trace.first).to_contain_text("openai / gpt-4.1-mini")
    expect(trace.first).to_contain_text("tokens")
    # The history's trace places the calls on one time axis at the starts it recorded: the
    # samples went out together, so all started before the first of them (0.3 s) ended.
    starts = trace.evaluate_all("items => items.map(li => li.dataset.startMs ?? null)")
    assert None not in starts, starts
    assert max(map(int, starts)) - min(map(int, starts)) < 200, starts
    expect(page.locator("figure.trace figcaption")).to_contain_text("on one time axis")
    # A record made before starts were kept has durations only: bars scaled to the longest.
    old = page.evaluate(
        """async () => {
        const { timeline } = await import("/console/views/trace.js");
        const figure = timeline([
          { index: 0, purpose: "sample 1", latency_ms: 100 },
          { index: 1, purpose: "sample 2", latency_ms: 50 },
        ]);
        return {
          caption: figure.querySelector("figcaption").textContent,
          starts: [...figure.querySelectorAll("li")].map((li) => li.dataset.startMs ?? null),
        };
    }"""
    )
    assert old["starts"] == [None, None] and "longest call" in old["caption"], old
    screenshot(page, "task-vote-and-trace")


def test_a_vote_across_providers_is_broken_down_by_provider(
    start_console: StartConsole, context: BrowserContext
) -> None:
    console = start_console(
        responder=cycling("Final answer: 42", "Final answer: 41", "Final answer: 42")
    )
    page = console.page(context)
    console.sign_in(page)
    _new_task(console, page, "Final answer: 42", "self_consistency")
    page.fill("#seat-openai", "3")
    page.fill("#seat-echo", "2")  # echo repeats the prompt: "Final answer: 42"
    page.click("text=Run task")
    table = page.locator("#final-answer #vote-breakdown")
    expect(table).to_be_visible()
    openai = table.locator("tr[data-seat^='openai/']")
    expect(openai.locator("td")).to_have_text(["2", "1"])  # columns: 42, 41
    expect(table.locator("tr[data-seat^='echo/'] td")).to_have_text(["2", "0"])
    screenshot(page, "new-task-cross-provider-vote")

    page.click("#open-task")
    expect(page.locator("#task-status")).to_have_text("succeeded")  # the task's page, not this one
    expect(page.locator("#vote-chart li.winner")).to_have_attribute("data-votes", "4")
    recorded = page.locator("#vote-breakdown")
    expect(recorded.locator("tbody tr")).to_have_count(2)
    expect(recorded.locator("tr[data-seat^='echo/'] td")).to_have_text(["2", "0"])


def test_a_background_task_is_watched_then_cancelled(
    start_console: StartConsole, context: BrowserContext
) -> None:
    console = start_console(latency=5.0)  # long enough to be caught running
    page = console.page(context)
    console.sign_in(page)
    _new_task(console, page, "Final answer: 1", "refine")
    page.check("input[name=mode][value=background]")
    page.click("text=Run task")

    expect(page).to_have_url(re.compile(r"#/task/[0-9a-f]+$"))
    task_id = page.url.rsplit("/", 1)[1]
    expect(page.locator(".live-status")).to_contain_text("Running: draft")
    expect(page.locator("#live-timeline li.call.running")).to_have_count(1)
    screenshot(page, "task-background-running")

    page.click("#cancel-task")
    # The page redraws from the history once the task has ended.
    expect(page.locator("#task-status")).to_have_text("cancelled", timeout=10_000)
    expect(page.locator("#section-error + *")).to_contain_text("cancelled")
    expect(page.locator("#cancel-task")).to_have_count(0)
    screenshot(page, "task-background-cancelled")
    record = httpx.get(f"{console.url}/task/{task_id}", headers=headers()).json()
    assert record["status"] == "cancelled"
    assert console.upstream.closed_early == 1  # its draft call was closed, not waited for

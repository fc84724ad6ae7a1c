"""The console's safety: a strict Content-Security-Policy on every console response, files
served only from the package, and prompts and answers rendered as text. The injection check
runs twice: with the policy bypassed (the page's own escaping must hold alone) and with it."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from api.console import ASSETS
from tests.api.conftest import ADMIN_KEY, headers
from tests.console.conftest import StartConsole, screenshot

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HOSTILE = (
    '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
    "<b>bold?</b> Final answer: 9"
)


def test_every_console_response_carries_the_security_headers(start_console: StartConsole) -> None:
    console = start_console()
    with httpx.Client(base_url=console.url) as http:
        for path in ("/console", "/console/", "/console/app.js", "/console/views/task.js"):
            response = http.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-security-policy"] == CSP
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert response.headers["x-frame-options"] == "DENY"
        assert http.get("/console").headers["content-type"] == "text/html; charset=utf-8"
        script = http.get("/console/app.js")
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert script.headers["content-encoding"] == "gzip"  # httpx asked for it
        assert script.content == ASSETS["app.js"].body
        # Unchanged files move no bytes on the next load.
        again = http.get("/console/app.js", headers={"If-None-Match": script.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        head = http.head("/console/style.css")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-security-policy"] == CSP


def test_only_the_packaged_files_are_served(start_console: StartConsole) -> None:
    console = start_console()
    with httpx.Client(base_url=console.url) as http:
        for path in ("/console/nope.js", "/console/..%2F__init__.py", "/console/%2e%2e/app.py"):
            response = http.get(path)
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == "not_found"
        # The console is no API operation: the OpenAPI document does not list it.
        paths = http.get("/openapi.json", headers=headers(ADMIN_KEY)).json()["paths"]
        assert paths and not [path for path in paths if path.startswith("/console")]


def test_console_false_serves_no_console(start_console: StartConsole) -> None:
    console = start_console(CONSOLE="false")
    assert httpx.get(f"{console.url}/console").status_code == 404
    assert httpx.get(f"{console.url}/healthz").status_code == 200


@pytest.mark.parametrize("policy", ["bypassed", "enforced"])
def test_a_prompt_with_html_and_script_renders_as_text(
    start_console: StartConsole, browser: Browser, policy: str
) -> None:
    console = start_console()
    context: BrowserContext = browser.new_context(bypass_csp=policy == "bypassed")
    try:
        page = console.page(context)
        console.sign_in(page)
        page.click("#nav >> text=New task")
        page.fill("#prompt", HOSTILE)
        page.select_option("#provider", "echo")  # echo answers with the prompt itself
        page.select_option("#strategy", "direct")
        page.click("text=Run task")
        expect(page.locator("#final-answer .answer")).to_have_text(HOSTILE)
        expect(page.locator("#live-answer")).to_have_text(HOSTILE)  # the streamed deltas too

        page.click("#open-task")
        expect(page.locator(".prose.prompt")).to_have_text(HOSTILE)
        expect(page.locator(".prose.answer")).to_have_text(HOSTILE)
        page.click("#timeline details summary")
        expect(page.locator("#timeline details pre")).to_have_text(HOSTILE)
        page.click("#nav >> text=History")
        expect(page.locator("#history-table a.prompt")).to_contain_text("<img src=x onerror=")
        expect(page.locator("#history-table a.prompt")).to_contain_text("<script>")
        screenshot(page, f"history-hostile-prompt-csp-{policy}")

        # Nothing of it became markup, and nothing ran.
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert page.locator("img").count() == 0
        assert page.locator("b").count() == 0
        assert page.evaluate("[...document.scripts].map(s => s.getAttribute('src'))") == [
            "/console/app.js"
        ]
        assert not [url for url in console.requests if url.endswith("/x")]
    finally:
        context.close()

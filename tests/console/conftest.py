"""Fixtures for the console's browser tests: a real server (`reasoning-agent serve`) whose
`openai` provider is the local mock upstream, and a headless Chromium driven by Playwright.

The browser is the system's Chromium (Debian's `chromium` package; `CHROMIUM` to point
elsewhere): Playwright's own browser download is not reachable from every machine. Without
it the tests skip on a developer's machine and fail under CI (CI=true), where
scripts/ensure-chromium.sh installs it first.

Screenshots of every page go to `$CONSOLE_SCREENSHOTS` (default `build/console-screenshots/`).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.api.conftest import (  # noqa: F401  (fixtures shared with the API tests)
    KEY_A,
    REPO_ROOT,
    Server,
    _no_real_upstreams,
    serve,
    server_env,
    write_plugins_toml,
)
from tests.mock_upstreams import OpenAIMock

UPSTREAM_KEY = "sk-test-console-upstream"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(
    os.environ.get("CONSOLE_SCREENSHOTS", REPO_ROOT / "build" / "console-screenshots")
)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI must run the browser tests (scripts/ensure-chromium.sh)")
    pytest.skip(reason)


# Per module, not per session: while Playwright's sync API is started, the main thread has a
# running event loop, and every later test that calls asyncio.run (tests/core, tests/providers)
# would fail with "cannot be called from a running event loop".
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)")
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield launched
    launched.close()


# Two elements with one id break `#id` look-ups (the page's and a test's alike: a locator that
# matches two elements fails, or finds the wrong one while a view is being replaced). Every DOM
# change is checked, so an id held twice even for a moment is reported, whichever test shows it.
_WATCH_DUPLICATE_IDS = """
new MutationObserver(() => {
  const seen = new Set();
  const twice = new Set();
  for (const element of document.querySelectorAll("[id]")) {
    if (seen.has(element.id)) twice.add(element.id);
    seen.add(element.id);
  }
  if (twice.size) window.__reportDuplicateIds([...twice]);
}).observe(document, { childList: true, subtree: true, attributes: true, attributeFilter: ["id"] });
"""


@dataclass
class Console:
    """A running service and what a browser page saw of it."""

    server: Server
    upstream: OpenAIMock
    url: str
    requests: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    duplicate_ids: set[str] = field(default_factory=set)

    def page(self, context: BrowserContext) -> Page:
        """A page that records every request it makes, CSP violations, script errors and any
        id that two elements held at once."""
        page = context.new_page()
        page.expose_function("__reportDuplicateIds", lambda ids: self.duplicate_ids.update(ids))
        page.add_init_script(_WATCH_DUPLICATE_IDS)
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                self.violations.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        page.set_default_timeout(15_000)
        return page

    def sign_in(self, page: Page, key: str = KEY_A, view: str = "") -> None:
        page.goto(f"{self.url}/console{view}")
        page.fill("#api-key", key)
        page.press("#api-key", "Enter")
        page.wait_for_selector("#nav:not([hidden])")


def cycling(*answers: str) -> Callable[[dict[str, object]], str]:
    """A mock responder that gives `answers` in turn, one per upstream request."""
    turn = itertools.cycle(answers)
    return lambda _body: next(turn)


StartConsole = Callable[..., Console]


@pytest.fixture
def start_console(
    serve: Callable[..., Server],  # noqa: F811
    tmp_path: Path,
) -> Iterator[StartConsole]:
    """Starts the service with the mock upstream as `openai`: `start_console(latency=0.3)`."""
    consoles: list[Console] = []
    mocks: list[OpenAIMock] = []

    def start(
        *,
        latency: float = 0.0,
        delta_delay: float = 0.0,
        responder: Callable[[dict[str, object]], str] | None = None,
        **env: str,
    ) -> Console:
        mock = OpenAIMock(api_key=UPSTREAM_KEY, latency=latency, delta_delay=delta_delay)
        if responder is not None:
            mock.responder = responder
        mock.start()
        mocks.append(mock)
        folder = tmp_path / f"console-{len(consoles)}"
        folder.mkdir()
        config = write_plugins_toml(
            folder,
            'default_provider = "openai"\n[providers.openai]\n'
            f'base_url = "{mock.base_url}"\nmax_retries = 0\nmultiple_samples = false\n',
        )
        server = serve(
            server_env(
                tmp_path,
                OPENAI_API_KEY=UPSTREAM_KEY,
                REASONING_AGENT_CONFIG=str(config),
                RATE_LIMIT="600/minute",
                **env,
            )
        )
        console = Console(server=server, upstream=mock, url=server.url)
        consoles.append(console)
        return console

    yield start
    for mock in mocks:
        mock.stop()
    for console in consoles:
        outside = [url for url in console.requests if not url.startswith(console.url)]
        assert not outside, f"the console fetched from outside its service: {outside}"
        assert not console.violations, f"Content-Security-Policy violations: {console.violations}"
        assert not console.page_errors, f"uncaught script errors: {console.page_errors}"
        assert not console.duplicate_ids, f"ids held by two elements: {console.duplicate_ids}"


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cache, no storage), at a laptop's size."""
    made = browser.new_context(viewport={"width": 1280, "height": 900})
    yield made
    made.close()


def screenshot(page: Page, name: str) -> Path:
    """Saves the whole page as `$CONSOLE_SCREENSHOTS/<name>.png`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

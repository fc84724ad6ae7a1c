"""The console's page weight and time to first render, in a real browser, against a local
server: `python bench/console_weight.py [--runs 5] [--url URL --key KEY]`.

Without `--url` it starts the service itself (uvicorn on a free 127.0.0.1 port, the offline
echo provider, a throw-away SQLite file) and stops it afterwards. Each run is a cold load in
a fresh browser profile (no cache) of `/console`, read from the Performance API:

- bytes transferred: the document's and every resource's `transferSize` (headers and the
  gzipped bodies, as they crossed the wire), and the files' decoded size;
- first-contentful-paint, and the time until the signed-in history page shows its table.

Then a warm reload in the same profile: what revalidation (ETag, 304) still transfers.
Numbers, not assertions (bench/README.md); needs Chromium (CHROMIUM, default /usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, sync_playwright

REPO = Path(__file__).resolve().parents[1]
KEY = "bench-console-key"

# Everything the page loaded, as the Performance API saw it.
_LOADED = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource");
  const fcp = performance.getEntriesByName("first-contentful-paint")[0];
  return {
    requests: 1 + resources.length,
    transferred: nav.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0),
    encoded: nav.encodedBodySize + resources.reduce((sum, r) => sum + r.encodedBodySize, 0),
    decoded: nav.decodedBodySize + resources.reduce((sum, r) => sum + r.decodedBodySize, 0),
    fcp: fcp ? fcp.startTime : null,
    dom_content_loaded: nav.domContentLoadedEventEnd,
  };
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def local_server() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "plugins.toml"
        config.write_text('default_provider = "echo"\n')
        port = free_port()
        env = {
            **os.environ,
            "API_KEYS": KEY,
            "DATA_DIR": folder,
            "REASONING_AGENT_CONFIG": str(config),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO),
        }
        command = [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port)]
        process = subprocess.Popen(command, cwd=folder, env=env, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                time.sleep(0.1)
            else:
                raise RuntimeError("the server did not start")
            for i in range(3):  # a history to show
                httpx.post(
                    f"{url}/task",
                    headers={"X-API-Key": KEY},
                    json={"prompt": f"Final answer: {i}", "strategy": "self_consistency"},
                )
            yield url
        finally:
            process.terminate()
            process.wait(timeout=20)


def one_run(browser: Browser, url: str, key: str) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{url}/console", wait_until="load")
        page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length")
        cold: dict[str, Any] = page.evaluate(_LOADED)
        started = time.perf_counter()
        page.fill("#api-key", key)
        page.press("#api-key", "Enter")
        page.wait_for_selector("#history-table")
        cold["sign_in_to_history_ms"] = (time.perf_counter() - started) * 1000
        page.reload(wait_until="load")  # the same profile: the files are in its cache
        page.wait_for_selector("#history-table")
        warm = page.evaluate(_LOADED)
        cold["warm_transferred"] = warm["transferred"]
        cold["warm_requests"] = warm["requests"]
        return cold
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--url", help="a running service (default: start one)")
    parser.add_argument("--key", default=KEY, help="its API key (with --url)")
    args = parser.parse_args()
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(local_server())
        driver = stack.enter_context(sync_playwright())
        browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        stack.callback(browser.close)
        runs = [one_run(browser, url, args.key) for _ in range(args.runs)]
    first = runs[0]
    fcp = [r["fcp"] for r in runs]
    history = [r["sign_in_to_history_ms"] for r in runs]
    print(f"console first load ({url}/console, cold, {args.runs} runs, Chromium headless):")
    print(
        f"  {first['requests']} requests, {first['transferred']} bytes transferred "
        f"({first['encoded']} bytes of bodies gzipped, {first['decoded']} decoded)"
    )
    print(
        f"  first-contentful-paint: median {statistics.median(fcp):.0f} ms "
        f"(min {min(fcp):.0f}, max {max(fcp):.0f})"
    )
    print(f"  sign-in to history table: median {statistics.median(history):.0f} ms")
    print(
        f"  warm reload: {first['warm_requests']} requests, {first['warm_transferred']} bytes "
        "transferred (304s and the API's JSON)"
    )


if __name__ == "__main__":
    main()

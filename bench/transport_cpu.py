"""Client CPU per upstream call, per transport: lean (aiohttp + orjson) vs sdk (official SDKs).

Each built-in provider (openai, anthropic) is pointed at a local mock upstream that runs in a
SEPARATE process (so only the client's CPU is counted), one provider (one client) is reused
for every call, and the process CPU time (time.process_time) is divided by the number of
calls, at 1 call in flight and at 100 in flight. For context, the same is measured for a bare
aiohttp+orjson POST and a bare SDK call, without our provider layer.

    python bench/transport_cpu.py            # full run (about a minute)
    python bench/transport_cpu.py --quick    # fewer calls
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root

import aiohttp
import orjson

from agent_core import CompletionRequest, Message
from providers.builtin.anthropic import AnthropicProvider
from providers.builtin.openai import OpenAIProvider
from providers.provider_config import ProviderConfig
from tests.mock_upstreams import MockProcess

KEY = "sk-bench-0000000000000000"
REQUEST = CompletionRequest(
    [Message("system", "Answer briefly."), Message("user", "What is 2 + 2? Think step by step.")],
    max_tokens=64,
)

Call = Callable[[], Awaitable[Any]]


async def measure(call: Call, calls: int, in_flight: int) -> tuple[float, float]:
    """(client CPU ms per call, calls per second of wall time)."""
    per_worker = max(1, calls // in_flight)

    async def worker() -> None:
        for _ in range(per_worker):
            await call()

    # warm-up: connections opened, lazy imports done, caches filled
    await asyncio.gather(*(worker_once(call) for _ in range(in_flight)))
    await asyncio.gather(*(worker_once(call) for _ in range(in_flight)))
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    total = per_worker * in_flight
    return cpu / total * 1000, total / wall


async def worker_once(call: Call) -> None:
    await call()


def provider_call(kind: str, transport: str, base_url: str) -> tuple[Call, Any]:
    cls = OpenAIProvider if kind == "openai" else AnthropicProvider
    config = ProviderConfig(type=kind, base_url=base_url, transport=transport)  # type: ignore[arg-type]
    provider = cls(name=kind, config=config)
    return (lambda: provider.complete(REQUEST)), provider.aclose


def bare_aiohttp_call(kind: str, base_url: str) -> tuple[Call, Any]:
    """A plain aiohttp session with orjson: the floor for any HTTP client in Python."""
    holder: dict[str, aiohttp.ClientSession] = {}
    if kind == "openai":
        url = base_url + "/chat/completions"
        headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
        body = orjson.dumps(
            {
                "model": "gpt-4.1-mini",
                "max_completion_tokens": 64,
                "messages": [
                    {"role": "system", "content": "Answer briefly."},
                    {"role": "user", "content": "What is 2 + 2? Think step by step."},
                ],
            }
        )
    else:
        url = base_url + "/v1/messages"
        headers = {
            "x-api-key": KEY,
            "anthropic-version": "2023-06-01",
            "content-type": "application/json",
        }
        body = orjson.dumps(
            {
                "model": "claude-sonnet-4-6",
                "max_tokens": 64,
                "system": "Answer briefly.",
                "messages": [{"role": "user", "content": "What is 2 + 2? Think step by step."}],
            }
        )

    async def call() -> Any:
        session = holder.get("s")
        if session is None:
            session = holder["s"] = aiohttp.ClientSession(
                headers=headers, connector=aiohttp.TCPConnector(limit=1000)
            )
        async with session.post(url, data=body) as response:
            return orjson.loads(await response.read())

    async def close() -> None:
        if "s" in holder:
            await holder["s"].close()

    return call, close


def bare_sdk_call(kind: str, base_url: str) -> tuple[Call, Any]:
    """The official SDK called directly, as its documentation shows."""
    messages = [{"role": "user", "content": "What is 2 + 2? Think step by step."}]
    if kind == "openai":
        import openai

        client: Any = openai.AsyncOpenAI(api_key=KEY, base_url=base_url)

        def call() -> Awaitable[Any]:
            return client.chat.completions.create(  # type: ignore[no-any-return]
                model="gpt-4.1-mini",
                max_completion_tokens=64,
                messages=[{"role": "system", "content": "Answer briefly."}, *messages],
            )
    else:
        import anthropic

        client = anthropic.AsyncAnthropic(api_key=KEY, base_url=base_url)

        def call() -> Awaitable[Any]:
            return client.messages.create(  # type: ignore[no-any-return]
                model="claude-sonnet-4-6",
                max_tokens=64,
                system="Answer briefly.",
                messages=messages,
            )

    return call, client.close


async def run(calls: int, levels: list[int]) -> list[tuple[str, str, int, float, float]]:
    os.environ["OPENAI_API_KEY"] = KEY
    os.environ["ANTHROPIC_API_KEY"] = KEY
    rows = []
    with (
        MockProcess("openai", api_key=KEY) as openai_up,
        MockProcess("anthropic", api_key=KEY) as anthropic_up,
    ):
        urls = {"openai": openai_up.base_url, "anthropic": anthropic_up.base_url}
        for kind in ("openai", "anthropic"):
            for label in ("provider lean", "provider sdk", "bare aiohttp+orjson", "bare SDK"):
                for in_flight in levels:
                    if label == "provider lean":
                        call, close = provider_call(kind, "lean", urls[kind])
                    elif label == "provider sdk":
                        call, close = provider_call(kind, "sdk", urls[kind])
                    elif label == "bare aiohttp+orjson":
                        call, close = bare_aiohttp_call(kind, urls[kind])
                    else:
                        call, close = bare_sdk_call(kind, urls[kind])
                    n = calls if in_flight == 1 else calls * 2
                    cpu_ms, rate = await measure(call, n, in_flight)
                    await close()
                    rows.append((kind, label, in_flight, cpu_ms, rate))
                    print(
                        f"  {kind:9} {label:20} {in_flight:>3} in flight: "
                        f"{cpu_ms:.3f} ms CPU/call, {rate:,.0f} calls/s",
                        file=sys.stderr,
                    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000, help="calls per measurement")
    parser.add_argument("--quick", action="store_true", help="300 calls per measurement")
    args = parser.parse_args()
    calls = 300 if args.quick else args.calls
    rows = asyncio.run(run(calls, [1, 100]))
    print(
        f"\nClient CPU per call (process CPU time / calls), {calls} calls at 1 in flight, "
        f"{calls * 2} at 100; mock upstream in a separate process; Python "
        f"{sys.version.split()[0]}, aiohttp {aiohttp.__version__}\n"
    )
    print(f"| {'provider':9} | {'client':20} | in flight | CPU ms/call | calls/s |")
    print(f"|{'-' * 11}|{'-' * 22}|-----------|-------------|---------|")
    for kind, label, in_flight, cpu_ms, rate in rows:
        print(f"| {kind:9} | {label:20} | {in_flight:>9} | {cpu_ms:>11.3f} | {rate:>7,.0f} |")


if __name__ == "__main__":
    main()

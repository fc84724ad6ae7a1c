"""`python -m tests.mock_upstreams openai|anthropic`: serve a mock upstream until stdin closes.

Prints the base URL on the first line of stdout once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from tests.mock_upstreams.anthropic_mock import AnthropicMock
from tests.mock_upstreams.openai_mock import OpenAIMock
from tests.mock_upstreams.server import MockUpstream


async def serve(mock: MockUpstream) -> None:
    await mock._start()
    print(mock.base_url, flush=True)
    loop = asyncio.get_running_loop()
    # Ends when the parent closes our stdin (or dies): never an orphan server.
    await loop.run_in_executor(None, sys.stdin.read)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["openai", "anthropic"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument(
        "--delta-delay", type=float, default=0.0, help="seconds before each delta of a stream"
    )
    parser.add_argument(
        "--max-choices", type=int, default=None, help="openai: answer at most this many choices"
    )
    parser.add_argument(
        "--refuse-n", action="store_true", help="openai: refuse n > 1 with OpenAI's 400"
    )
    args = parser.parse_args()
    cls = OpenAIMock if args.kind == "openai" else AnthropicMock
    # record_limit=1: a benchmark's millions of calls must not pile up in memory.
    mock = cls(
        api_key=args.api_key,
        latency=args.latency,
        port=args.port,
        record_limit=1,
        delta_delay=args.delta_delay,
    )
    if isinstance(mock, OpenAIMock):
        mock.max_choices = args.max_choices
        mock.refuse_n = OpenAIMock.REFUSE_N_OPENAI if args.refuse_n else None
    asyncio.run(serve(mock))


if __name__ == "__main__":
    main()

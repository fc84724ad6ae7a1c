"""Runs every strategy through a Python Provider subclass, from an installed wheel.

`scripts/check-wheel.sh` runs this in a clean venv outside the source tree. It is also a
small, complete example of implementing a provider and reading an Answer's trace.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import itertools

import agent_core
from agent_core import Completion, CompletionRequest, Provider, ReasoningAgent, Usage


class ArithmeticProvider(Provider):
    """A toy provider: answers the sum in the prompt, reasoning in steps, wrong now and then."""

    name = "arithmetic"

    def __init__(self) -> None:
        self._calls = itertools.count()

    async def complete(self, request: CompletionRequest) -> Completion:
        await asyncio.sleep(0.001)
        n = next(self._calls)
        answer = 4 if n % 4 else 5  # every fourth reply is wrong: voting should outvote it
        text = f"2 plus 2: count two, then two more.\nFinal answer: {answer}"
        return Completion(text, "toy-1", usage=Usage(len(request.messages), 12))


async def main() -> None:
    for package in ("agent_core", "providers", "api"):
        __import__(package)
    files = importlib.resources.files("agent_core")
    for typed in ("py.typed", "_agent_core.pyi"):
        assert files.joinpath(typed).is_file(), f"the wheel lacks agent_core/{typed}"
    # The web console's static files are package data: the wheel must carry them.
    from api.console import ASSETS

    for page in ("index.html", "app.js", "style.css", "views/task.js"):
        assert page in ASSETS, f"the wheel lacks api/console/static/{page}"

    agent = ReasoningAgent(ArithmeticProvider())
    for strategy in agent_core.strategies():
        answer = await agent.ask("What is 2 + 2?", strategy=strategy, samples=5, rounds=1)
        print(
            f"{strategy:>16}: answer={answer.text!r} confidence={answer.confidence} "
            f"votes={answer.votes} calls={answer.calls} tokens={answer.usage.total_tokens}"
        )
        for step in answer.steps:
            print(
                f"{'':>18}{step.index} {step.purpose:<11} {step.provider}/{step.model} "
                f"{step.latency_ms:6.2f} ms  candidate={step.candidate!r}"
            )
        assert answer.steps and answer.calls == len(answer.steps)
    print("wheel smoke: every strategy answered from the installed wheel")


if __name__ == "__main__":
    asyncio.run(main())

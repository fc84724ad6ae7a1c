"""Engine benchmarks: concurrency of a batch, the value of voting, and driver overhead.

    python bench/core_bench.py [--trials 1000] [--seed 7]

1. concurrency: self_consistency with n=8 against a provider that sleeps 200 ms per call,
   next to one direct call to the same provider (the samples should overlap, not add up);
2. voting: a seeded provider right with probability 0.6 per sample; how often a majority of 9
   is right, next to one sample and the binomial expectation;
3. overhead: tasks per second and CPU per task through the driver with the offline echo
   provider (no latency), i.e. what the engine and the asyncio driver cost per task.
A benchmark, not a test: it prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time

from agent_core import (
    Completion,
    CompletionRequest,
    EchoProvider,
    Provider,
    ReasoningAgent,
    Task,
    Usage,
)


class SleepyProvider(Provider):
    """Answers after a fixed delay, like a remote model."""

    name = "sleepy"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def complete(self, request: CompletionRequest) -> Completion:
        await asyncio.sleep(self.delay)
        return Completion("Final answer: 42", "sleepy-1", usage=Usage(10, 5))


class NoisyProvider(Provider):
    """Right (answers 42) with probability `p`; otherwise one of `wrong` answers."""

    name = "noisy"

    def __init__(self, p: float, wrong: list[str], rng: random.Random) -> None:
        self.p, self.wrong, self.rng = p, wrong, rng

    async def complete(self, request: CompletionRequest) -> Completion:
        text = "42" if self.rng.random() < self.p else self.rng.choice(self.wrong)
        return Completion(f"Thinking...\nFinal answer: {text}", "noisy-1")


async def concurrency() -> None:
    provider = SleepyProvider(0.2)
    agent = ReasoningAgent(provider)
    started = time.perf_counter()
    await agent.ask("q", strategy="direct")
    one = time.perf_counter() - started
    started = time.perf_counter()
    answer = await agent.ask("q", strategy="self_consistency", samples=8)
    eight = time.perf_counter() - started
    print("1. concurrency (provider sleeps 200 ms per call)")
    print(f"   one direct call:              {one * 1000:7.1f} ms")
    print(f"   self_consistency, n=8:        {eight * 1000:7.1f} ms  ({answer.calls} calls)")
    print(f"   ratio to one call:            {eight / one:7.2f}x  (sequential would be 8x)")


def binomial_majority(n: int, p: float) -> float:
    """P(more than half of n independent samples are right)."""
    return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n // 2 + 1, n + 1))


async def voting(trials: int, seed: int) -> None:
    print(f"2. voting (p = 0.6 per sample, {trials} trials, seed {seed})")
    for label, wrong in (("one wrong answer", ["41"]), ("three wrong answers", ["41", "43", "7"])):
        rng = random.Random(seed)
        agent = ReasoningAgent(NoisyProvider(0.6, wrong, rng))
        single = voted = 0
        for _ in range(trials):
            single += (await agent.ask("q", strategy="cot")).text == "42"
            answer = await agent.run(Task("q", strategy="self_consistency", samples=9))
            voted += answer.text == "42"
        print(f"   {label}:")
        print(f"     single sample right:        {single / trials:6.3f}  (expected 0.600)")
        print(f"     majority of 9 right:        {voted / trials:6.3f}", end="")
        if len(wrong) == 1:
            print(f"  (binomial P(X>=5), X~B(9,0.6) = {binomial_majority(9, 0.6):.3f})")
        else:
            print("  (plurality: wrong votes split, so above the binomial majority)")


async def overhead(tasks: int) -> None:
    agent = ReasoningAgent(EchoProvider())
    print(f"3. driver overhead with echo (no latency), {tasks} tasks each")
    for strategy, calls in (("direct", 1), ("self_consistency", 5)):
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(
            *(agent.ask("Final answer: 1", strategy=strategy) for _ in range(tasks))
        )
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(
            f"   {strategy:<17} {tasks / wall:9.0f} tasks/s  {cpu / tasks * 1e6:7.1f} µs CPU/task"
            f"  {cpu / (tasks * calls) * 1e6:6.1f} µs CPU/call"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tasks", type=int, default=5000)
    args = parser.parse_args()
    await concurrency()
    await voting(args.trials, args.seed)
    await overhead(args.tasks)


if __name__ == "__main__":
    asyncio.run(main())

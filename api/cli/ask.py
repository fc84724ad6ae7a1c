"""`reasoning-agent ask "prompt"`: answers one prompt from the command line.

Task options not given on the command line come from plugins.toml (`default_strategy` and the
`[strategy]` table); the model defaults to the provider's configured model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent_core import LIMITS, FloatRange, IntRange
from providers.task_options import OPTION_NAMES, TaskOptions, describe_range

if TYPE_CHECKING:
    from agent_core import Answer
    from api.cli.progress import ProgressView
    from api.tasks import Outcome, TaskPipeline, TaskSpec

NAME = "ask"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        NAME,
        help="answer a prompt",
        description="Answer PROMPT with a provider and a reasoning strategy. "
        "Use '-' to read the prompt from standard input.",
    )
    parser.add_argument("prompt", help="the question or task ('-': read standard input)")
    parser.add_argument("-p", "--provider", help="provider name or alias (default: configured)")
    parser.add_argument(
        "-s", "--strategy", help="direct, cot, self_consistency or refine (default: configured)"
    )
    parser.add_argument("-m", "--model", help="model name (default: the provider's model)")
    parser.add_argument(
        "--samples", type=bounded(LIMITS.samples), help="self_consistency: voting samples"
    )
    parser.add_argument(
        "--rounds", type=bounded(LIMITS.rounds), help="refine: critique-and-revise rounds"
    )
    parser.add_argument("--system", help="system message")
    parser.add_argument(
        "--temperature", type=bounded(LIMITS.temperature), help="sampling temperature"
    )
    parser.add_argument(
        "--max-tokens", type=bounded(LIMITS.max_tokens), help="maximum tokens per call"
    )
    parser.add_argument(
        "--max-calls", type=bounded(LIMITS.max_calls), help="budget: provider calls for the task"
    )
    parser.add_argument(
        "--max-total-tokens",
        type=bounded(LIMITS.max_total_tokens),
        help="budget: tokens for the whole task",
    )
    parser.add_argument(
        "--max-cost-usd",
        type=bounded(LIMITS.max_cost_usd),
        help="budget: US dollars for the whole task, at the model's price",
    )
    parser.add_argument(
        "--deadline-ms",
        type=bounded(LIMITS.deadline_ms),
        help="end the task after this many ms with its best answer so far",
    )
    parser.add_argument(
        "--early-stop",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="self_consistency: stop sampling once the vote is decided (samples = the most)",
    )
    parser.add_argument(
        "--stop-confidence",
        type=bounded(LIMITS.stop_confidence),
        help="with --early-stop: the probability that the winner stands at which to stop",
    )
    parser.add_argument(
        "--first-wave", type=bounded(LIMITS.first_wave), help="with --early-stop: first wave"
    )
    parser.add_argument(
        "--wave-size", type=bounded(LIMITS.wave_size), help="with --early-stop: later waves"
    )
    parser.add_argument(
        "--vote",
        metavar="PROVIDER[/MODEL]:N",
        action="append",
        type=panel_seat,
        help="self_consistency across providers: N samples from PROVIDER (repeat it), "
        "e.g. --vote openai:4 --vote anthropic/claude-sonnet-4-6:4",
    )
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    parser.add_argument(
        "-q",
        "--quiet",
        dest="progress",
        action="store_false",
        help="no progress on stderr (a live line on a terminal, plain lines otherwise)",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="show every provider call (on stderr; inside the JSON with --json)",
    )
    return parser


def bounded(limit: IntRange | FloatRange) -> Callable[[str], float]:
    """An argparse type: a number within the engine's range for the option (agent_core.LIMITS),
    so the command line refuses what the engine would, with the range in the message."""
    whole = isinstance(limit, IntRange)

    def parse(text: str) -> float:
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'a whole number' if whole else 'a number'}"
            ) from None
        if not limit.minimum <= value <= limit.maximum:  # NaN fails this too
            raise argparse.ArgumentTypeError(f"must be {describe_range(limit)}, got {text}")
        return value

    parse.__name__ = "whole number" if whole else "number"
    return parse


def panel_seat(text: str) -> tuple[str, str | None, int]:
    """`openai:4` or `anthropic/claude-sonnet-4-6:4` -> (provider, model, samples)."""
    who, _, count = text.rpartition(":")
    if not who or not count.isdigit() or not LIMITS.samples.contains(int(count)):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not PROVIDER[/MODEL]:N with N {describe_range(LIMITS.samples)}"
        )
    provider, _, model = who.partition("/")
    return provider, model or None, int(count)


def run(args: argparse.Namespace) -> int:
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    if args.json:
        args.progress = False  # machine output: the JSON alone
    answer = asyncio.run(_answer(args, prompt))
    if args.json:
        print(json.dumps(answer.to_dict(trace=args.trace), indent=2, ensure_ascii=False))
        return 0
    print(answer.text)
    if args.trace:
        _print_trace(answer)
    return 0


def task_options(args: argparse.Namespace) -> TaskOptions:
    """The task options given on the command line (plugins.toml's `[strategy]` fills the
    rest, as for `POST /task`)."""
    return TaskOptions(**{name: getattr(args, name) for name in OPTION_NAMES})


async def _answer(args: argparse.Namespace, prompt: str) -> Answer:
    from api.cli.progress import progress_view
    from api.tasks import TaskPipeline, TaskRejected, TaskSpec
    from api.tasks.spec import PanelSeat
    from providers import load_registry, load_settings

    settings = load_settings(args.config)
    registry = load_registry(settings)
    try:
        spec = TaskSpec.resolve(
            registry,
            prompt=prompt,
            system=args.system,
            provider=args.provider,
            model=args.model,
            strategy=args.strategy or ("self_consistency" if args.vote else None),
            options=task_options(args),
            source="cli",
            panel=[PanelSeat(*seat) for seat in args.vote or ()],
        )
    except TaskRejected as error:
        await registry.aclose()
        raise error from None
    try:
        # The same pipeline as the service's, without a history to record in.
        pipeline = TaskPipeline(registry, None)
        if not args.progress:
            outcome = await pipeline.run(spec, key_id="cli")
        else:
            outcome = await _with_progress(pipeline, spec, progress_view(spec.strategy))
    finally:
        await registry.aclose()
    if outcome.error is not None:
        raise outcome.error
    assert outcome.answer is not None
    return outcome.answer


async def _with_progress(pipeline: TaskPipeline, spec: TaskSpec, view: ProgressView) -> Outcome:
    """Runs the task through the pipeline's events, showing them as they come."""
    from api.tasks.pipeline import Finished, Progress

    try:
        async for item in pipeline.events(spec, key_id="cli"):
            if isinstance(item, Progress):
                view.show(item.event)
            elif isinstance(item, Finished):
                return item.outcome
    finally:
        view.close()
    raise RuntimeError("the task ended without an outcome")


def _print_trace(answer: Answer) -> None:
    for step in answer.steps:
        usage = step.usage
        outcome = f"error {step.error}: {step.error_message}" if step.error else "ok"
        print(
            f"#{step.index} {step.purpose} provider={step.provider} model={step.model} "
            f"{step.latency_ms:.1f}ms tokens={usage.prompt_tokens}+{usage.completion_tokens} "
            f"{outcome}",
            file=sys.stderr,
        )
    summary = f"strategy={answer.strategy} calls={answer.calls} tokens={answer.usage.total_tokens}"
    if answer.confidence is not None:
        summary += f" confidence={answer.confidence:.2f}"
    print(summary, file=sys.stderr)

"""Where a server's event loop spends its time, from a py-spy profile.

    py-spy record -p <server pid> --gil -r 400 -d 12 -f raw -o loop.raw   # while under load
    python bench/profile_summary.py loop.raw [--json out.json] [--top 25]

`--gil` keeps only samples of the thread holding the GIL, so idle waits do not count. Each
sample of the event-loop thread is put in the first category (in the order below) that one of
its frames belongs to, so a sample inside the rate limiter called from our middleware counts
as the rate limiter. Samples of other threads (the history writer, the executor) are counted
apart. The output is a Markdown table, and with `--json` the same as data.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

Frames = list[str]


def _any(*needles: str) -> Callable[[Frames], bool]:
    return lambda frames: any(needle in frame for frame in frames for needle in needles)


_OWN = re.compile(r"\((api|providers|agent_core)/")
_FRAMEWORK = ("fastapi/", "starlette/", "uvicorn/", "pydantic")


def _own_leaf(frames: Frames, module: str) -> bool:
    """The deepest frame of our code is in `module`, with no framework frame below it (our
    middleware wraps every request: only its own work counts as its)."""
    for index in range(len(frames) - 1, -1, -1):
        if _OWN.search(frames[index]):
            below = frames[index + 1 :]
            return module in frames[index] and not any(
                part in frame for frame in below for part in _FRAMEWORK
            )
    return False


# (category, predicate), first match wins: the most specific parts first.
CATEGORIES: list[tuple[str, Callable[[Frames], bool]]] = [
    ("history write (queueing the record)", _any("SqlTaskStore", "TaskPipeline._commit")),
    (
        "upstream call (aiohttp, provider, retries)",
        _any("aiohttp/", "providers/transport", "providers/builtin"),
    ),
    ("access log and other logging", _any("logging/__init__", "api/logging", "api/redaction")),
    ("rate limiter", _any("limits/", "api/ratelimit")),
    ("metrics", _any("prometheus_client", "api/metrics")),
    ("engine driver (agent_core)", _any("agent_core/")),
    ("our route and task pipeline", _any("api/routes", "api/tasks", "api/rendering")),
    ("authentication", _any("api/deps", "api/security")),
    ("our middleware", lambda frames: _own_leaf(frames, "api/middleware")),
    (
        "FastAPI dependencies, validation, serialisation",
        _any("solve_dependencies", "serialize_response", "pydantic", "_validate"),
    ),
    ("FastAPI/Starlette routing and middleware", _any("fastapi/", "starlette/")),
    ("uvicorn HTTP protocol", _any("uvicorn/protocols")),
    ("event loop and the rest", lambda frames: True),
]


def summarise(raw: str) -> dict[str, object]:
    loop: Counter[str] = Counter()
    own: Counter[str] = Counter()
    other_threads = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames[0].startswith("Thread._bootstrap"):
            other_threads += count
            continue
        for label, matches in CATEGORIES:
            if matches(frames):
                loop[label] += count
                break
        # The deepest frame of our own code: where our code spends (with what it calls).
        for frame in reversed(frames):
            if _OWN.search(frame):
                own[re.sub(r":\d+\)", ")", frame)] += count
                break
    total = sum(loop.values())
    return {
        "event_loop_samples": total,
        "other_thread_samples": other_threads,
        "categories": {label: loop[label] / total for label, _ in CATEGORIES} if total else {},
        "own_code": {name: n / total for name, n in own.most_common()} if total else {},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("raw", type=Path, help="py-spy `--format raw` output")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    parser.add_argument("--top", type=int, default=15, help="functions of our own code listed")
    parser.add_argument(
        "--cpu-ms",
        type=float,
        help="the server's CPU per request (ms), measured in the same run: adds a column of "
        "each category's estimated ms per request",
    )
    args = parser.parse_args()
    summary = summarise(args.raw.read_text())
    categories: dict[str, float] = summary["categories"]  # type: ignore[assignment]
    own: dict[str, float] = summary["own_code"]  # type: ignore[assignment]
    print(
        f"event-loop samples: {summary['event_loop_samples']}, "
        f"other threads: {summary['other_thread_samples']}\n"
    )
    if args.cpu_ms is None:
        print("| where the event loop's time went | share |\n|---|---:|")
        for label, share in categories.items():
            print(f"| {label} | {share:.1%} |")
    else:
        print("| where the event loop's time went | share | ms per request |\n|---|---:|---:|")
        for label, share in categories.items():
            print(f"| {label} | {share:.1%} | {share * args.cpu_ms:.3f} |")
    print("\n| deepest frame of our code (with what it calls) | share |\n|---|---:|")
    for name, share in list(own.items())[: args.top]:
        print(f"| `{name}` | {share:.1%} |")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Where a server's event loop spends its time, from a py-spy profile, in two views.

    py-spy record -p <server pid> --gil -r 400 -d 12 -f raw -o loop.raw   # while under load
    python bench/profile_summary.py loop.raw [--json out.json] [--top 25]

`--gil` keeps only samples of the thread holding the GIL, so idle waits do not count. Each
sample of the event-loop thread is put in the first category (in the order below) that one of
its frames belongs to, so a sample inside the rate limiter called from our middleware counts
as the rate limiter. Samples of other threads (the history writer, the executor) are counted
apart. That is `summarise`: by part of the request path, each with what it calls. `layers` is
the other view: each sample by its innermost Python frame's package (where the CPU itself went:
FastAPI, aiohttp, the event loop ...). `bench/gateway_bench.py --profile` reports both. The
output is Markdown tables, and with `--json` the same as data.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    # What the hot path does itself (read, parse, validate the body); the route it calls is above.
    ("hot path: body read, parsed, validated", _any("api/hot_path")),
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


# A sample's innermost Python frame, by file, to a layer of the request path (first match wins).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("rate limiter", ("/limits/", "/slowapi/", "api/ratelimit.py")),
    ("metrics", ("/prometheus_client/", "api/metrics.py")),
    ("logging", ("/logging/", "api/logging.py")),
    ("history store", ("/sqlalchemy/", "/aiosqlite/", "/sqlite3/", "api/persistence/")),
    (
        "upstream client (aiohttp, lean transport)",
        ("/aiohttp/", "/yarl/", "/multidict/", "providers/transport/"),
    ),
    ("FastAPI", ("/fastapi/",)),
    ("Starlette", ("/starlette/",)),
    ("pydantic", ("/pydantic",)),
    ("uvicorn", ("/uvicorn/",)),
    # an innermost frame in asyncio: the loop itself, or C code it runs (uvloop, sockets)
    (
        "event loop (asyncio, uvloop)",
        ("/asyncio/", "/uvloop/", "/concurrent/", "/threading.py", "/queue.py"),
    ),
    ("ids (uuid, random)", ("/uuid.py", "/random.py", "api/ids.py")),
    ("our routes and pipeline (api/)", ("/api/",)),
    ("providers", ("/providers/",)),
    ("engine (agent_core)", ("/agent_core/",)),
    ("json", ("/json/", "orjson")),
)


def layer_of(frame: str) -> str:
    """`func (path:line)` (py-spy's frame; paths of installed packages start at the package)."""
    where = "/" + frame.rpartition(" (")[2]
    for layer, needles in LAYERS:
        if any(needle in where for needle in needles):
            return layer
    return "other"


def layers(raw: str, top: int = 25) -> dict[str, Any]:
    """The other view of the same stacks: per thread kind (the event loop's, other threads'), the
    share of its samples per layer (by the innermost Python frame), and the functions present
    in most event-loop samples (inclusive)."""
    totals = {"event loop thread": 0, "other threads": 0}
    layers: dict[str, dict[str, int]] = {kind: {} for kind in totals}
    inclusive: dict[str, int] = {}
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count, frames = int(count_text), [f for f in stack.split(";") if f]
        # uvloop runs coroutines from C: a loop stack starts at the coroutine or at runpy;
        # a thread's (aiosqlite's writer, the executor's) at Thread._bootstrap.
        kind = "other threads" if frames[0].startswith("Thread._bootstrap") else "event loop thread"
        totals[kind] += count
        layer = layer_of(frames[-1])
        layers[kind][layer] = layers[kind].get(layer, 0) + count
        if kind == "event loop thread":
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + count

    def shares(counts: dict[str, int], total: int) -> dict[str, float]:
        ordered = sorted(counts.items(), key=lambda kv: -kv[1])
        return {k: round(100 * v / max(1, total), 1) for k, v in ordered}

    loop_total = totals["event loop thread"]
    return {
        "samples": totals,
        "event_loop_by_layer_percent": shares(layers["event loop thread"], loop_total),
        "other_threads_by_layer_percent": shares(layers["other threads"], totals["other threads"]),
        "event_loop_inclusive_top_percent": shares(
            dict(sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]), loop_total
        ),
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
    innermost = layers(args.raw.read_text())
    print("\n| layer (innermost Python frame) | share |\n|---|---:|")
    for layer, percent in innermost["event_loop_by_layer_percent"].items():
        print(f"| {layer} | {percent:.1f} % |")
    if args.json:
        args.json.write_text(json.dumps({**summary, "layers": innermost}, indent=1) + "\n")


if __name__ == "__main__":
    main()

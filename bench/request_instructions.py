"""Instructions per request: the service's request path counted by callgrind, not timed.

    python bench/request_instructions.py                         # POST /task, c=16: ~25 s
    python bench/request_instructions.py --path /v1/chat/completions
    python bench/request_instructions.py --concurrency 1 --env LOG_LEVEL=WARNING
    python bench/request_instructions.py --no-valgrind 2>/dev/null  # CPU time instead

Wall-clock benchmarks on a shared VM drift by 10 % an hour, which hides a change worth 2 %.
Instruction counts do not drift: the same code, inputs and environment give the same count to
within 0.2 %, whatever else the machine is doing. So each small step of issue 12 was measured
here, and the whole in `gateway_bench.py`.

What runs: the app as deployed in-process (its lifespan, settings from the environment as in
`gateway_bench.py`: key, rate limit far above the load, SQLite history with full fsync,
metrics, the access log to stderr), its ASGI callable driven by `--concurrency` tasks on
uvloop, the openai provider pointed at the mock upstream in its own process (not counted:
callgrind does not follow children). After a warm-up, instrumentation is switched on for
`--requests` requests only (`callgrind_control -i on|off`), so start-up is not counted. uvicorn
is not in the path: this counts what our app does per request, not the HTTP server's work.

Needs valgrind (`apt-get install valgrind`), which runs the program about 50 times slower.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.gateway_bench import TASK_BODY, V1_BODY, service_defaults  # noqa: E402
from bench.harness import BENCH_KEY, UPSTREAM_KEY  # noqa: E402

_STARTING_ENVIRONMENT = dict(os.environ)
WARM_UP = 50  # requests per task before counting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", default="/task", choices=["/task", "/v1/chat/completions"])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=400, help="counted requests")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="a service setting"
    )
    parser.add_argument("--no-valgrind", action="store_true", help="CPU seconds instead")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside or args.no_valgrind:
        _drive(args, counted=not args.no_valgrind)
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is needed (apt-get install valgrind), or pass --no-valgrind")
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        command += [f"--callgrind-out-file={out}", sys.executable, __file__, "--inside"]
        command += sys.argv[1:]
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
        if done.returncode != 0:
            sys.exit(f"the driver failed ({done.returncode}):\n{done.stderr[-3000:]}")
        total = sum(_totals(path) for path in Path(work).glob("callgrind.out*"))
    result = json.loads(done.stdout.strip().splitlines()[-1])
    per_request = total / result["requests"]
    print(
        f"{args.path} at c={args.concurrency}: {per_request / 1e6:.3f}M instructions per "
        f"request ({result['requests']} requests, statuses {result['statuses']})"
    )


def _totals(path: Path) -> int:
    # `totals:` (at the end): with instrumentation switched on late, `summary:` says 0.
    for line in reversed(path.read_text().splitlines()):
        if match := re.match(r"^totals: (\d+)", line):
            return int(match.group(1))
    return 0


def _drive(args: argparse.Namespace, *, counted: bool) -> None:
    import uvloop

    from tests.mock_upstreams import MockProcess

    with (
        MockProcess("openai", api_key=UPSTREAM_KEY, latency=0.0) as upstream,
        tempfile.TemporaryDirectory() as data,
    ):
        # The settings gateway_bench gives its servers (HOST and the like go unused here).
        upstream_root = upstream.base_url.removesuffix("/v1")
        os.environ.update(service_defaults(upstream_root, Path(data), "instructions"))
        for setting in args.env:
            name, _, value = setting.partition("=")
            os.environ[name] = value
        from api.app import create_app

        result = uvloop.run(_load(create_app(), args, counted))
    if counted:
        print(json.dumps(result))  # for the parent, outside valgrind


async def _load(app: Any, args: argparse.Namespace, counted: bool) -> dict[str, Any]:
    body = json.dumps(TASK_BODY if args.path == "/task" else V1_BODY).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": args.path,
        "raw_path": args.path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"x-api-key", BENCH_KEY.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    statuses: dict[str, int] = {}

    async def one() -> None:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(dict(scope), receive, send)
        status = str(sent[0]["status"])
        statuses[status] = statuses.get(status, 0) + 1

    async def task(count: int) -> None:
        for _ in range(count):
            await one()

    async with app.router.lifespan_context(app):
        await asyncio.gather(*(task(WARM_UP) for _ in range(args.concurrency)))
        statuses.clear()
        per_task = args.requests // args.concurrency
        _instrument(counted, "on")
        cpu = time.process_time()
        await asyncio.gather(*(task(per_task) for _ in range(args.concurrency)))
        cpu = time.process_time() - cpu
        _instrument(counted, "off")
    done = per_task * args.concurrency
    if not counted:
        print(f"{args.path} at c={args.concurrency}: {cpu / done * 1e6:.0f} us of CPU per request")
    return {"requests": done, "statuses": statuses}


def _instrument(counted: bool, state: str) -> None:
    if counted:
        # In the environment this script started with: with HOST set (one of the service's
        # settings), callgrind_control answered OK and switched nothing (seen here).
        command = ["callgrind_control", "-i", state, str(os.getpid())]
        subprocess.run(command, check=True, capture_output=True, env=_STARTING_ENVIRONMENT)


if __name__ == "__main__":
    main()

"""A gateway's cost per request, in one run: the floor, a direct call to the mock upstream, our
`POST /task` (1 and 2 workers) and `POST /v1/chat/completions`, and the LiteLLM proxy when
asked (`--with-litellm`), all against the same mock OpenAI upstream; then the burst (P3), the
vote (P4), memory (P5), the streamed and the background paths. Issue 12's table, with ratios.

    python bench/gateway_bench.py                      # about 6 minutes
    python bench/gateway_bench.py --quick              # about 2 minutes, shorter levels
    python bench/gateway_bench.py --with-litellm --label baseline

Pinning (2+ CPUs, unless `--no-pin`): every server under test runs on CPU 0; the mock
upstream, wrk and the other load clients on CPU 1 (this script too). Two workers of ours run
on both CPUs, sharing CPU 1 with the mock and the client. Load: wrk, one thread, a Lua script
for the POST and a JSON summary; each level has a warm-up, then `--seconds` of load. Server CPU
per request: utime + stime of the server's process tree (/proc) over the level, divided by the
requests wrk completed. Everything listens on 127.0.0.1 and stops with this script.

Results: bench/results/gateway-<label>.json (label: --label, else the git short sha).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench import profile_summary  # noqa: E402
from bench.harness import (  # noqa: E402
    BENCH_KEY,
    LOAD_CPU,
    SERVER_CPU,
    UPSTREAM_KEY,
    Server,
    base_env,
    can_pin,
    child_setup,
    free_port,
    percentile,
    server,
    stop_on_sigterm,
)

LITELLM_VERSION = "1.108.5"  # the newest whose [proxy] extra resolves on this index (see README)
# At the root, where .gitignore (/.venv-*/), ruff and mypy (^\.venv) already leave it alone.
LITELLM_VENV = REPO_ROOT / ".venv-litellm"
LITELLM_KEY = "sk-litellm-bench-master-key"
RESULTS = REPO_ROOT / "bench" / "results"

MODEL = "gpt-4.1-mini"
PROMPT = "What is 2 + 2?"
MESSAGES = [{"role": "user", "content": PROMPT}]
TASK_BODY: dict[str, Any] = {"prompt": PROMPT, "provider": "openai", "strategy": "direct"}
CHAT_BODY: dict[str, Any] = {"model": MODEL, "messages": MESSAGES}
V1_BODY: dict[str, Any] = {"model": f"openai/{MODEL}", "messages": MESSAGES}
KEY_HEADERS = {"X-API-Key": BENCH_KEY}
LEVELS = (1, 16)
MAX_CONNECTIONS = 1000  # the openai provider's upstream pool (providers' max_connections)
IDLE_SECONDS = 3.0


@dataclass(frozen=True)
class Plan:
    seconds: float  # measured load per level
    warmup: float  # unmeasured load before it
    memory_requests: int
    burst: int
    vote_runs: int
    stream_requests: int
    background_tasks: int

    @classmethod
    def make(cls, quick: bool, seconds: float | None) -> Plan:
        if quick:
            return cls(seconds or 3, 1, 10_000, 1000, 4, 150, 60)
        return cls(seconds or 10, 2, 100_000, 1000, 10, 600, 300)


@dataclass(frozen=True)
class Pinning:
    on: bool

    @property
    def server(self) -> set[int] | None:
        return {SERVER_CPU} if self.on else None

    @property
    def both(self) -> set[int] | None:
        return {SERVER_CPU, LOAD_CPU} if self.on else None

    @property
    def load(self) -> set[int] | None:
        return {LOAD_CPU} if self.on else None


def say(text: str = "") -> None:
    print(text, flush=True)


# --- wrk ------------------------------------------------------------------------------------------

LUA = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {{"requests": %d, "duration_us": %d, "status_errors": %d, "connect_errors": %d, '
    .. '"read_errors": %d, "write_errors": %d, "timeout_errors": %d, "p50_us": %.1f, '
    .. '"p90_us": %.1f, "p99_us": %.1f, "max_us": %.1f, "mean_us": %.1f}}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def wrk(
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
    work: Path,
    pinning: Pinning,
) -> dict[str, Any]:
    """One wrk run: requests, latency percentiles (ms) and error counts."""
    script = work / "post.lua"
    header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script.write_text(LUA.format(body=json.dumps(body), headers=header_lines))
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "30s"]
    command += ["--latency", "-s", str(script), url]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        preexec_fn=child_setup(pinning.load),
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    seconds_run = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "seconds": round(seconds_run, 3),
        "rps": raw["requests"] / seconds_run,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "mean_ms": raw["mean_us"] / 1000,
        # wrk counts a response with a status >= 400 as a status error
        "non_2xx": raw["status_errors"],
        "socket_errors": sum(raw[f"{k}_errors"] for k in ("connect", "read", "write", "timeout")),
    }


def level(
    target: Server,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    concurrency: int,
    plan: Plan,
    work: Path,
    pinning: Pinning,
) -> dict[str, Any]:
    """A warm-up, then one measured wrk run with the server tree's CPU time around it."""
    url = f"{target.url}{path}"
    wrk(url, body, headers, concurrency, plan.warmup, work, pinning)
    cpu = target.cpu_seconds()
    result = wrk(url, body, headers, concurrency, plan.seconds, work, pinning)
    cpu = target.cpu_seconds() - cpu
    result["server_cpu_ms_per_req"] = cpu * 1000 / max(1, result["requests"])
    result["concurrency"] = concurrency
    return result


# --- profile (--profile: py-spy on the 1-worker /task at c=16) ----------------------------------


def profiled_level(
    target: Server, plan: Plan, work: Path, pinning: Pinning, out: Path
) -> dict[str, Any]:
    """wrk at c=16 on POST /task while py-spy samples the server (non-blocking, 250 Hz)."""
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists():
        raise RuntimeError("--profile needs py-spy in this venv (uv pip install py-spy)")
    seconds = max(3, round(plan.seconds))
    # --gil: only samples of the thread holding the GIL, so a wait (the loop's, the writer's
    # fsync) is not counted as time spent.
    command = [str(py_spy), "record", "--pid", str(target.pid), "--rate", "250", "--nonblocking"]
    command += ["--gil"]
    command += ["--duration", str(seconds), "--format", "raw", "--output", str(out)]
    spy = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=child_setup(pinning.load),
    )
    try:
        load = wrk(f"{target.url}/task", TASK_BODY, KEY_HEADERS, 16, seconds + 1, work, pinning)
        _, errors = spy.communicate(timeout=seconds + 60)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    if spy.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy failed: {errors.decode(errors='replace')[-2000:]}")
    summary = profile_summary.layers(out.read_text(errors="replace"))
    summary["by_part"] = profile_summary.summarise(out.read_text(errors="replace"))
    kept = RESULTS / f"{out.name}.gz"
    with out.open("rb") as raw, gzip.open(kept, "wb") as packed:
        shutil.copyfileobj(raw, packed)
    summary["stacks"] = str(kept.relative_to(REPO_ROOT))
    summary["load"] = {k: load[k] for k in ("requests", "rps", "p50_ms", "p99_ms")}
    say(
        f"  py-spy, /task c=16, {load['requests']} requests: samples {summary['samples']}; "
        "event loop by part of the request path (bench/profile_summary.py):"
    )
    for part, share in summary["by_part"]["categories"].items():
        say(f"    {100 * share:5.1f} %  {part}")
    return summary


# --- load clients (each in its own process on the load CPU: `--client MODE`) ---------------------


def _ms(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "p50_ms": percentile(values, 50),
        "p90_ms": percentile(values, 90),
        "p99_ms": percentile(values, 99),
        "max_ms": values[-1] if values else float("nan"),
    }


async def client_burst(url: str, count: int, direct: bool = False) -> dict[str, Any]:
    """`count` POST /task opened at once (after a small warm-up): wall, latencies, errors.
    `direct`: the same requests as chat completions straight to the mock upstream at `url`,
    the burst's floor (this client and the mock share their CPU, with no service between)."""
    import aiohttp

    if direct:
        path, payload = "/v1/chat/completions", json.dumps(CHAT_BODY).encode()
        headers = {"Authorization": f"Bearer {UPSTREAM_KEY}", "Content-Type": "application/json"}
    else:
        path, payload = "/task", json.dumps(TASK_BODY).encode()
        headers = {**KEY_HEADERS, "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=300)
    statuses: dict[str, int] = {}
    finished: list[float] = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for _ in range(2):  # warm-up: a few tasks, connections to the upstream opened
            async with session.post(f"{url}{path}", data=payload, headers=headers) as answer:
                await answer.read()
        gate = asyncio.Event()

        async def one() -> None:
            await gate.wait()
            try:
                async with session.post(f"{url}{path}", data=payload, headers=headers) as answer:
                    await answer.read()
                    status = str(answer.status)
            except Exception as error:  # counted, not raised: the burst is measured whole
                status = type(error).__name__
            statuses[status] = statuses.get(status, 0) + 1
            finished.append(time.perf_counter())

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        await asyncio.sleep(0.1)  # every task is parked at the gate
        started = time.perf_counter()
        gate.set()
        await asyncio.gather(*tasks)
    latencies = [(t - started) * 1000 for t in finished]
    return {
        "requests": count,
        "wall_s": (max(finished) - started),
        **_ms(latencies),
        "statuses": statuses,
        "errors": sum(n for s, n in statuses.items() if s != "200"),
    }


async def client_vote(url: str, runs: int, samples: int) -> dict[str, Any]:
    """One direct task and one vote of `samples`, alternately, `runs` times each (after one
    warm-up of each): latencies and the vote's provider calls."""
    import aiohttp

    vote = {**TASK_BODY, "strategy": "self_consistency", "samples": samples}
    out: dict[str, list[float]] = {"direct": [], "vote": []}
    calls: list[int] = []
    statuses: dict[str, int] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        for i in range(runs + 1):
            for name, body in (("direct", TASK_BODY), ("vote", vote)):
                started = time.perf_counter()
                async with session.post(f"{url}/task", json=body, headers=KEY_HEADERS) as answer:
                    data = await answer.json()
                    statuses[str(answer.status)] = statuses.get(str(answer.status), 0) + 1
                elapsed = (time.perf_counter() - started) * 1000
                if i == 0:
                    continue  # warm-up
                out[name].append(elapsed)
                if name == "vote" and answer.status == 200:
                    calls.append(int(data.get("calls", 0)))
    direct, voted = statistics.median(out["direct"]), statistics.median(out["vote"])
    return {
        "runs": runs,
        "samples": samples,
        "direct_median_ms": direct,
        "vote_median_ms": voted,
        "ratio": voted / direct,
        "direct_ms": out["direct"],
        "vote_ms": out["vote"],
        "vote_calls": calls,
        "statuses": statuses,
    }


async def client_stream(url: str, concurrency: int, count: int) -> dict[str, Any]:
    """`count` streamed POST /task at `concurrency`: time to the first event, to the first
    delta, and to the end of the stream."""
    import aiohttp

    payload = json.dumps({**TASK_BODY, "stream": True}).encode()
    headers = {**KEY_HEADERS, "Content-Type": "application/json"}
    first: list[float] = []
    delta: list[float] = []
    total: list[float] = []
    statuses: dict[str, int] = {}
    remaining = iter(range(count))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for _ in remaining:
                started = time.perf_counter()
                first_at = delta_at = None
                tail, result = b"", False
                async with session.post(f"{url}/task", data=payload, headers=headers) as answer:
                    status = str(answer.status)
                    async for chunk in answer.content.iter_any():
                        now = time.perf_counter()
                        first_at = first_at or now
                        window, tail = tail + chunk, (tail + chunk)[-32:]
                        if delta_at is None and b"event: delta" in window:
                            delta_at = now
                        result = result or b"event: result" in window
                if not result:
                    status += " (no result event)"
                ended = time.perf_counter()
                statuses[status] = statuses.get(status, 0) + 1
                total.append((ended - started) * 1000)
                first.append(((first_at or ended) - started) * 1000)
                if delta_at is not None:
                    delta.append((delta_at - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "requests": count,
        "concurrency": concurrency,
        "rps": count / elapsed,
        "first_event": _ms(first),
        "first_delta": _ms(delta),
        "total": _ms(total),
        "statuses": statuses,
        "non_2xx": sum(n for s, n in statuses.items() if s != "200"),
    }


async def client_background(
    url: str, count: int, concurrency: int, poll_ms: float
) -> dict[str, Any]:
    """`count` background tasks submitted at `concurrency`; each then polled with GET
    /task/{id} every `poll_ms` until it has ended. Submit (202) latency and submit → ended."""
    import aiohttp

    payload = json.dumps({**TASK_BODY, "background": True}).encode()
    headers = {**KEY_HEADERS, "Content-Type": "application/json"}
    submitted: list[tuple[str, float]] = []
    submit_ms: list[float] = []
    done_ms: list[float] = []
    statuses: dict[str, int] = {}
    ended: dict[str, int] = {}
    gets = 0
    remaining = iter(range(count))
    async with aiohttp.ClientSession() as session:

        async def submitter() -> None:
            for _ in remaining:
                started = time.perf_counter()
                async with session.post(f"{url}/task", data=payload, headers=headers) as answer:
                    data = await answer.json()
                    statuses[str(answer.status)] = statuses.get(str(answer.status), 0) + 1
                submit_ms.append((time.perf_counter() - started) * 1000)
                if answer.status == 202:
                    submitted.append((data["id"], started))
                if concurrency == 1:  # one at a time: follow it to its end before the next
                    await follow(submitted[-1])

        async def follow(task: tuple[str, float]) -> None:
            nonlocal gets
            task_id, started = task
            while True:
                gets += 1
                async with session.get(f"{url}/task/{task_id}", headers=KEY_HEADERS) as answer:
                    status = (await answer.json()).get("status")
                if status in {"succeeded", "failed", "cancelled"}:
                    done_ms.append((time.perf_counter() - started) * 1000)
                    ended[status] = ended.get(status, 0) + 1
                    return
                await asyncio.sleep(poll_ms / 1000)

        started = time.perf_counter()
        await asyncio.gather(*(submitter() for _ in range(concurrency)))
        if concurrency > 1:
            for task in list(submitted):
                await follow(task)
        elapsed = time.perf_counter() - started
    return {
        "tasks": count,
        "concurrency": concurrency,
        "poll_ms": poll_ms,
        "status_reads": gets,
        "elapsed_s": elapsed,
        "submit": _ms(submit_ms),
        "submit_to_end": _ms(done_ms),
        "submit_statuses": statuses,
        "ended": ended,
    }


def run_client(mode: str, url: str, pinning: Pinning, timeout: float, **options: Any) -> Any:
    command = [sys.executable, __file__, "--client", mode, "--url", url]
    command += ["--options", json.dumps(options)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=child_setup(pinning.load),
    )
    if done.returncode != 0:
        raise RuntimeError(f"client {mode} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def client_main(mode: str, url: str, options: dict[str, Any]) -> None:
    clients: dict[str, Callable[..., Coroutine[Any, Any, dict[str, Any]]]] = {
        "burst": client_burst,
        "vote": client_vote,
        "stream": client_stream,
        "background": client_background,
    }
    print(json.dumps(asyncio.run(clients[mode](url, **options))))


# --- servers --------------------------------------------------------------------------------------


# `--env NAME=VALUE`: service settings on top of the defaults below, for every server of ours
# (say RATE_LIMIT_STRATEGY=sliding-window-counter); recorded in the results.
SERVICE_OVERRIDES: dict[str, str] = {}


def service_env(upstream: str, work: Path, name: str) -> dict[str, str]:
    """Our service as deployed, pointed at the mock: keys, a rate limit far above the load,
    history on SQLite in `work`, metrics, the access log (LOG_LEVEL INFO) to a file."""
    return base_env(
        **{
            **service_defaults(upstream, work, name),
            **SERVICE_OVERRIDES,
        }
    )


def service_defaults(upstream: str, work: Path, name: str) -> dict[str, str]:
    return dict(
        API_KEYS=BENCH_KEY,
        RATE_LIMIT="100000000/minute",
        DATA_DIR=str(work / f"data-{name}"),
        OPENAI_API_KEY=UPSTREAM_KEY,
        OPENAI_BASE_URL=f"{upstream}/v1",
        HOST="127.0.0.1",
        GRACEFUL_SHUTDOWN_SECONDS="3",
        JOB_MAX_ACTIVE_PER_KEY="1000000",
        REASONING_AGENT_PROVIDERS__OPENAI__OPTIONS__MAX_CONNECTIONS=str(MAX_CONNECTIONS),
    )


@contextlib.contextmanager
def ours(
    upstream: str, work: Path, name: str, workers: int, cpus: set[int] | None
) -> Iterator[Server]:
    """`reasoning-agent serve --workers N` (uvicorn; uvloop + httptools)."""
    port = free_port()
    command = [sys.executable, "-m", "api.cli", "serve", "--workers", str(workers)]
    command += ["--port", str(port)]
    with server(
        f"reasoning-agent serve ({name})",
        command,
        port=port,
        env=service_env(upstream, work, name),
        cwd=work,
        log=work / f"{name}.log",
        cpus=cpus,
    ) as running:
        yield running


@contextlib.contextmanager
def floor(work: Path, cpus: set[int] | None) -> Iterator[Server]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.floor_app:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-access-log", "--app-dir", str(REPO_ROOT)]
    with server(
        "floor", command, port=port, env=base_env(), cwd=work, log=work / "floor.log", cpus=cpus
    ) as running:
        yield running


@contextlib.contextmanager
def mock(latency: float, pinning: Pinning) -> Iterator[Server]:
    from tests.mock_upstreams import MockProcess

    with MockProcess("openai", api_key=UPSTREAM_KEY, latency=latency) as upstream:
        assert upstream._proc is not None
        if pinning.load:
            os.sched_setaffinity(upstream._proc.pid, pinning.load)
        yield Server(url=upstream.base_url.removesuffix("/v1"), pid=upstream._proc.pid, log=Path())


def litellm_python() -> Path:
    return LITELLM_VENV / "bin" / "python"


def installed_litellm() -> str | None:
    if not litellm_python().exists():
        return None
    done = subprocess.run(
        [
            str(litellm_python()),
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_litellm() -> str:
    """litellm[proxy]==LITELLM_VERSION in its own venv (bench/.venv-litellm), once."""
    if installed_litellm() == LITELLM_VERSION:
        return LITELLM_VERSION
    say(f"installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV} (a few minutes) ...")
    if not litellm_python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    subprocess.run(
        [
            str(litellm_python()),
            *("-m", "pip", "install", "-q", "--disable-pip-version-check"),
            f"litellm[proxy]=={LITELLM_VERSION}",
        ],
        check=True,
    )
    version = installed_litellm()
    if version != LITELLM_VERSION:
        raise RuntimeError(f"litellm install gave version {version!r}")
    return version


@contextlib.contextmanager
def litellm(upstream: str, work: Path, cpus: set[int] | None) -> Iterator[Server]:
    """The LiteLLM proxy, one worker, master key, the mock as its only model; no database, no
    telemetry, the local model cost map (no remote fetch), loopback only."""
    port = free_port()
    config = work / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {upstream}/v1\n"
        f"      api_key: {UPSTREAM_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
    )
    env = base_env(
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_TELEMETRY="False",
        DISABLE_ADMIN_UI="True",
        HF_HUB_OFFLINE="1",
    )
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{LITELLM_VENV / 'bin'}:{env.get('PATH', '')}"
    command = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    command += ["--telemetry", "False"]
    with server(
        "litellm",
        command,
        port=port,
        env=env,
        cwd=work,
        log=work / "litellm.log",
        cpus=cpus,
        health="/health/liveliness",
        start_timeout=180,
    ) as running:
        yield running


# --- sections -------------------------------------------------------------------------------------


def http_rows(
    plan: Plan,
    pinning: Pinning,
    work: Path,
    upstream: Server,
    with_litellm: bool,
    profile: Path | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    bearer_mock = {"Authorization": f"Bearer {UPSTREAM_KEY}"}

    def measure(
        setup: str,
        workers: int,
        where: str,
        target: Server,
        path: str,
        body: dict[str, Any],
        headers: dict[str, str],
    ) -> None:
        for concurrency in LEVELS:
            r = level(target, path, body, headers, concurrency, plan, work, pinning)
            r.update(setup=setup, workers=workers, server_cpus=where, path=path)
            rows.append(r)
            say(
                f"  {setup:<34} c={concurrency:<3}{r['rps']:8.0f} req/s  p50 {r['p50_ms']:7.2f}  "
                f"p90 {r['p90_ms']:7.2f}  p99 {r['p99_ms']:7.2f} ms  "
                f"CPU {r['server_cpu_ms_per_req']:.3f} ms/req  non-2xx {r['non_2xx']}"
                f"{'  socket errors ' + str(r['socket_errors']) if r['socket_errors'] else ''}"
            )

    one_cpu = "CPU 0" if pinning.on else "any"
    with floor(work, pinning.server) as target:
        measure("floor: bare FastAPI + pydantic", 1, one_cpu, target, "/task", TASK_BODY, {})
    measure(
        "direct call to the mock",
        1,
        "CPU 1 (with the client)" if pinning.on else "any",
        upstream,
        "/v1/chat/completions",
        CHAT_BODY,
        bearer_mock,
    )
    with ours(upstream.url, work, "task-1w", 1, pinning.server) as target:
        measure("ours: POST /task", 1, one_cpu, target, "/task", TASK_BODY, KEY_HEADERS)
        measure(
            "ours: POST /v1/chat/completions",
            1,
            one_cpu,
            target,
            "/v1/chat/completions",
            V1_BODY,
            {"Authorization": f"Bearer {BENCH_KEY}"},
        )
        if profile is not None:
            extra["profile"] = profiled_level(target, plan, work, pinning, profile)
        if plan.stream_requests:
            extra["stream"] = stream_section(target, plan, pinning)
        if plan.background_tasks:
            extra["background"] = background_section(target, plan, pinning)
    with ours(upstream.url, work, "task-2w", 2, pinning.both) as target:
        where = "CPUs 0-1 (CPU 1 shared with mock + client)" if pinning.on else "any"
        measure("ours: POST /task", 2, where, target, "/task", TASK_BODY, KEY_HEADERS)
    if with_litellm:
        with litellm(upstream.url, work, pinning.server) as target:
            measure(
                f"LiteLLM proxy {LITELLM_VERSION}",
                1,
                one_cpu,
                target,
                "/chat/completions",
                CHAT_BODY,
                {"Authorization": f"Bearer {LITELLM_KEY}"},
            )
    return rows, extra


def stream_section(target: Server, plan: Plan, pinning: Pinning) -> dict[str, Any]:
    out: dict[str, Any] = {"levels": []}
    for concurrency in LEVELS:
        count = plan.stream_requests if concurrency > 1 else plan.stream_requests // 3
        run_client("stream", target.url, pinning, 300, concurrency=concurrency, count=50)
        cpu = target.cpu_seconds()
        r = run_client("stream", target.url, pinning, 600, concurrency=concurrency, count=count)
        r["server_cpu_ms_per_req"] = (target.cpu_seconds() - cpu) * 1000 / count
        out["levels"].append(r)
        say(
            f"  stream POST /task c={concurrency:<3}{r['rps']:8.0f} req/s  first event p50 "
            f"{r['first_event']['p50_ms']:.2f} ms  first delta p50 {r['first_delta']['p50_ms']:.2f}"
            f" ms  total p50 {r['total']['p50_ms']:.2f} p99 {r['total']['p99_ms']:.2f} ms  "
            f"CPU {r['server_cpu_ms_per_req']:.3f} ms/req  non-2xx {r['non_2xx']}"
        )
    return out


def background_section(target: Server, plan: Plan, pinning: Pinning) -> dict[str, Any]:
    latency = run_client(
        "background",
        target.url,
        pinning,
        600,
        count=max(20, plan.background_tasks // 5),
        concurrency=1,
        poll_ms=2.0,
    )
    say(
        f"  background, one at a time: 202 p50 {latency['submit']['p50_ms']:.2f} ms, submit → "
        f"ended p50 {latency['submit_to_end']['p50_ms']:.2f} ms (polled every 2 ms), "
        f"{latency['ended']}"
    )
    # The in-process job runner and its sweeper cost some CPU while idle: measured apart.
    cpu = target.cpu_seconds()
    time.sleep(IDLE_SECONDS)
    idle_ms_per_s = (target.cpu_seconds() - cpu) * 1000 / IDLE_SECONDS
    cpu, started = target.cpu_seconds(), time.monotonic()
    load = run_client(
        "background",
        target.url,
        pinning,
        600,
        count=plan.background_tasks,
        concurrency=16,
        poll_ms=20.0,
    )
    cpu_ms, elapsed = (target.cpu_seconds() - cpu) * 1000, time.monotonic() - started
    load["server_cpu_ms_per_task"] = cpu_ms / plan.background_tasks
    load["server_idle_cpu_ms_per_s"] = idle_ms_per_s
    load["server_cpu_ms_per_task_less_idle"] = max(
        0.0, (cpu_ms - idle_ms_per_s * elapsed) / plan.background_tasks
    )
    say(
        f"  background, {plan.background_tasks} submitted 16 at a time: 202 p50 "
        f"{load['submit']['p50_ms']:.2f} p99 {load['submit']['p99_ms']:.2f} ms, "
        f"{load['submit_statuses']}, ended {load['ended']}, server CPU "
        f"{load['server_cpu_ms_per_task']:.3f} ms/task (incl. {load['status_reads']} status reads;"
        f" {load['server_cpu_ms_per_task_less_idle']:.3f} less the idle {idle_ms_per_s:.1f} ms/s)"
    )
    return {"one_at_a_time": latency, "sixteen_at_a_time": load}


def memory_section(plan: Plan, pinning: Pinning, work: Path, upstream: Server) -> dict[str, Any]:
    with ours(upstream.url, work, "memory", 1, pinning.server) as target:
        started_mb = target.rss_mb()
        warm = wrk(f"{target.url}/task", TASK_BODY, KEY_HEADERS, 16, 3, work, pinning)
        time.sleep(1)
        idle_mb = target.rss_mb()
        done, rate = 0, warm["rps"]
        non_2xx = 0
        while done < plan.memory_requests:
            seconds = min(60.0, max(2.0, (plan.memory_requests - done) / rate * 1.05))
            r = wrk(f"{target.url}/task", TASK_BODY, KEY_HEADERS, 16, seconds, work, pinning)
            done, rate, non_2xx = done + r["requests"], r["rps"], non_2xx + r["non_2xx"]
        time.sleep(1)
        after_mb = target.rss_mb()
    out = {
        "rss_after_start_mb": started_mb,
        "rss_idle_after_warmup_mb": idle_mb,
        "warmup_requests": warm["requests"],
        "requests": done,
        "rss_after_mb": after_mb,
        "growth_mb": after_mb - idle_mb,
        "non_2xx": non_2xx,
    }
    say(
        f"  RSS after start {started_mb:.1f} MB, idle after {warm['requests']} warm-up requests "
        f"{idle_mb:.1f} MB, after {done} more {after_mb:.1f} MB: growth "
        f"{after_mb - idle_mb:+.1f} MB (non-2xx {non_2xx})"
    )
    return out


def burst_section(plan: Plan, pinning: Pinning, work: Path) -> dict[str, Any]:
    with mock(1.0, pinning) as slow:
        floor = run_client("burst", slow.url, pinning, 600, count=plan.burst, direct=True)
    with mock(1.0, pinning) as slow, ours(slow.url, work, "burst", 1, pinning.server) as target:
        r: dict[str, Any] = run_client("burst", target.url, pinning, 600, count=plan.burst)
    r["direct_to_mock"] = floor
    r["upstream_latency_s"] = 1.0
    r["settings"] = {
        "RATE_LIMIT": "100000000/minute",
        "openai max_connections": MAX_CONNECTIONS,
        "workers": 1,
    }
    say(
        f"  {plan.burst} concurrent POST /task, upstream 1 s: wall {r['wall_s']:.2f} s, p50 "
        f"{r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, errors {r['errors']} {r['statuses']}"
    )
    say(
        f"  the same {plan.burst} straight to the mock (the harness's own floor): wall "
        f"{floor['wall_s']:.2f} s, p50 {floor['p50_ms']:.0f} ms, errors {floor['errors']}"
    )
    return r


def vote_section(plan: Plan, pinning: Pinning, work: Path) -> dict[str, Any]:
    with mock(0.2, pinning) as slow, ours(slow.url, work, "vote", 1, pinning.server) as target:
        r: dict[str, Any] = run_client(
            "vote", target.url, pinning, 600, runs=plan.vote_runs, samples=8
        )
    r["upstream_latency_s"] = 0.2
    say(
        f"  self_consistency, 8 samples: median {r['vote_median_ms']:.1f} ms vs direct "
        f"{r['direct_median_ms']:.1f} ms: {r['ratio']:.2f}x (calls {sorted(set(r['vote_calls']))}"
        f", {r['statuses']})"
    )
    return r


# --- report ---------------------------------------------------------------------------------------


def find(rows: list[dict[str, Any]], prefix: str, concurrency: int, workers: int = 1) -> Any:
    for r in rows:
        same_level = (r["concurrency"], r["workers"]) == (concurrency, workers)
        if same_level and r["setup"].startswith(prefix):
            return r
    return None


def ratios(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    task16, task1 = find(rows, "ours: POST /task", 16), find(rows, "ours: POST /task", 1)
    v1_16 = find(rows, "ours: POST /v1", 16)
    floor16 = find(rows, "floor", 16)
    lite16 = find(rows, "LiteLLM", 16)
    mock1 = find(rows, "direct call", 1)

    def div(a: Any, b: Any, key: str) -> float | None:
        return a[key] / b[key] if a and b and b[key] else None

    return {
        "task_vs_litellm_rps_c16": div(task16, lite16, "rps"),
        "v1_vs_litellm_rps_c16": div(v1_16, lite16, "rps"),
        "task_vs_floor_rps_c16": div(task16, floor16, "rps"),
        "task_cpu_vs_floor_cpu": div(task16, floor16, "server_cpu_ms_per_req"),
        "task_p50_c1_minus_mock_p50_c1_ms": (
            task1["p50_ms"] - mock1["p50_ms"] if task1 and mock1 else None
        ),
        "task_p99_over_p50_c16": task16["p99_ms"] / task16["p50_ms"] if task16 else None,
        "v1_p99_over_p50_c16": v1_16["p99_ms"] / v1_16["p50_ms"] if v1_16 else None,
    }


def report(results: dict[str, Any]) -> None:
    rows = results["http"]
    say("\n## Requests through each setup (wrk, one thread, keep-alive)\n")
    say(
        "| setup | workers | server CPUs | c | req/s | p50 ms | p90 ms | p99 ms | "
        "server CPU ms/req | non-2xx |"
    )
    say("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        errors = f"{r['non_2xx']}" + (
            f" (+{r['socket_errors']} socket)" if r["socket_errors"] else ""
        )
        say(
            f"| {r['setup']} | {r['workers']} | {r['server_cpus']} | {r['concurrency']} | "
            f"{r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['server_cpu_ms_per_req']:.3f} | {errors} |"
        )
    say("\n## Issue 12's table\n")
    say("| setup | c=1 req/s, p50 | c=16 req/s, p50, p99 | server CPU per request (c=16) |")
    say("|---|---|---|---|")
    seen: list[tuple[str, int]] = []
    for r in rows:
        if (r["setup"], r["workers"]) in seen:
            continue
        seen.append((r["setup"], r["workers"]))
        one, many = (
            find(rows, r["setup"], 1, r["workers"]),
            find(rows, r["setup"], 16, r["workers"]),
        )
        name = r["setup"] + (f", {r['workers']} workers" if r["workers"] > 1 else "")
        say(
            f"| {name} | {one['rps']:,.0f}, {one['p50_ms']:.2f} ms | {many['rps']:,.0f}, "
            f"{many['p50_ms']:.2f} ms, {many['p99_ms']:.2f} ms | "
            f"{many['server_cpu_ms_per_req']:.2f} ms |"
        )
    q = results["ratios"]

    def x(value: float | None, fmt: str = "{:.2f}x") -> str:
        return "n/a" if value is None else fmt.format(value)

    say("\n## Ratios (targets from issue 12)\n")
    lines = [
        f"P1 ours /task vs LiteLLM, req/s at c=16: {x(q['task_vs_litellm_rps_c16'], '{:.1f}x')} "
        f"(target >= 30x); /v1: {x(q['v1_vs_litellm_rps_c16'], '{:.1f}x')}",
        f"P1 ours /task vs floor, req/s at c=16: {x(q['task_vs_floor_rps_c16'])} (target >= "
        f"0.33x); server CPU per request {x(q['task_cpu_vs_floor_cpu'], '{:.1f}x')} the floor's",
        "P2 p50 at c=1, ours /task minus direct mock: "
        f"{x(q['task_p50_c1_minus_mock_p50_c1_ms'], '{:+.2f} ms')} (target <= 1 ms)",
        f"P2 p99/p50 at c=16: /task {x(q['task_p99_over_p50_c16'])}, /v1 "
        f"{x(q['v1_p99_over_p50_c16'])} (target <= 3x)",
    ]
    if "burst" in results:
        b = results["burst"]
        lines.append(
            f"P3 burst: {b['requests']} concurrent /task, upstream 1 s, 1 worker: wall "
            f"{b['wall_s']:.2f} s (target <= 1.5 s), p50 {b['p50_ms']:.0f} ms, "
            f"errors {b['errors']}; the same client straight to the mock: "
            f"{b['direct_to_mock']['wall_s']:.2f} s"
        )
    if "vote" in results:
        v = results["vote"]
        lines.append(
            f"P4 vote of 8 vs one direct task, upstream 200 ms: {v['ratio']:.2f}x (target <= "
            f"1.3x; medians {v['vote_median_ms']:.0f} vs {v['direct_median_ms']:.0f} ms, "
            f"{v['runs']} runs each)"
        )
    if "memory" in results:
        m = results["memory"]
        lines.append(
            f"P5 memory, one worker: idle {m['rss_idle_after_warmup_mb']:.1f} MB (target <= "
            f"150), growth {m['growth_mb']:+.1f} MB over {m['requests']:,} requests (target "
            "<= 5 MB over 100,000)"
        )
    for s in results.get("stream", {}).get("levels", []):
        lines.append(
            f"stream c={s['concurrency']}: first event p50 {s['first_event']['p50_ms']:.2f} ms, "
            f"first delta p50 {s['first_delta']['p50_ms']:.2f} ms, total p50 "
            f"{s['total']['p50_ms']:.2f} ms, p99 {s['total']['p99_ms']:.2f} ms, "
            f"{s['rps']:.0f} req/s, server CPU {s['server_cpu_ms_per_req']:.3f} ms/req"
        )
    if results.get("background"):
        one = results["background"]["one_at_a_time"]
        many = results["background"]["sixteen_at_a_time"]
        lines.append(
            f"background (in-process, no Redis): 202 p50 {one['submit']['p50_ms']:.2f} ms, "
            f"submit -> succeeded p50 {one['submit_to_end']['p50_ms']:.2f} ms (one at a time); "
            f"server CPU {many['server_cpu_ms_per_task']:.3f} ms/task (16 submitting; "
            f"{many['server_cpu_ms_per_task_less_idle']:.3f} less the idle runner's)"
        )
    for line in lines:
        say(f"- {line}")
    if results.get("profile"):
        prof = results["profile"]
        loop, other = prof["samples"]["event loop thread"], prof["samples"]["other threads"]
        say(
            f"\n## Profile: POST /task at c=16, one worker (py-spy, 250 Hz: {loop} event-loop "
            f"samples, {other} from other threads)\n"
        )
        say("| part of the request path (with what it calls) | share of the event loop's samples |")
        say("|---|---:|")
        for part, share in prof["by_part"]["categories"].items():
            say(f"| {part} | {100 * share:.1f} % |")
        say("\n| layer (innermost Python frame) | share of the event loop's samples |")
        say("|---|---:|")
        for layer, percent in prof["event_loop_by_layer_percent"].items():
            say(f"| {layer} | {percent:.1f} % |")
        say(
            "\nOther threads: "
            + ", ".join(
                f"{layer} {percent:.0f} %"
                for layer, percent in prof["other_threads_by_layer_percent"].items()
            )
        )


# --- entry point ----------------------------------------------------------------------------------


def machine(with_litellm: str | None) -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    versions = {}
    for package in (
        "fastapi",
        "starlette",
        "uvicorn",
        "pydantic",
        "aiohttp",
        "uvloop",
        "httptools",
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[
        0
    ]
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "litellm": with_litellm,
        "wrk": wrk_version.strip(),
        "load_average_at_start": os.getloadavg(),
    }


def no_nan(value: Any) -> Any:
    """JSON without NaN (a percentile of nothing): null instead."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [no_nan(v) for v in value]
    return value


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="shorter levels and fewer requests")
    parser.add_argument("--label", default=None, help="results file name (default: git short sha)")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per level")
    parser.add_argument("--with-litellm", action="store_true", help="also the LiteLLM proxy")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the 1-worker /task at c=16 (one more level): summary in the JSON, stacks "
        "in bench/results/gateway-<label>-task-c16.collapsed.gz",
    )
    parser.add_argument("--logs", type=Path, default=None, help="copy the servers' logs here")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a service setting for our servers (repeatable), e.g. "
        "RATE_LIMIT_STRATEGY=sliding-window-counter",
    )
    for name in ("burst", "vote", "memory", "stream", "background"):
        parser.add_argument(f"--skip-{name}", action="store_true")
    parser.add_argument("--client", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args.client, args.url, json.loads(args.options))
        return

    stop_on_sigterm()
    pinning = Pinning(on=not args.no_pin and can_pin())
    if pinning.load:
        os.sched_setaffinity(0, pinning.load)  # this script and what it starts: the load CPU
    plan = Plan.make(args.quick, args.seconds)
    if args.skip_stream:
        plan = Plan(**{**plan.__dict__, "stream_requests": 0})
    if args.skip_background:
        plan = Plan(**{**plan.__dict__, "background_tasks": 0})
    for setting in args.env:
        name, sep, value = setting.partition("=")
        if not sep or not name:
            parser.error(f"--env {setting!r}: expected NAME=VALUE")
        SERVICE_OVERRIDES[name] = value
    sha = git("rev-parse", "--short", "HEAD")
    label = args.label or sha
    litellm_version = ensure_litellm() if args.with_litellm else None
    started = time.monotonic()
    results: dict[str, Any] = {
        "label": label,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": {"sha": sha, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))},
        "command": " ".join(["python", "bench/gateway_bench.py", *sys.argv[1:]]),
        "machine": machine(litellm_version),
        "pinning": (
            "servers on CPU 0 (ours with 2 workers: CPUs 0-1); mock, wrk and clients on CPU 1"
            if pinning.on
            else "none"
        ),
        "plan": plan.__dict__,
        "service_settings_overridden": dict(SERVICE_OVERRIDES),
    }
    say(
        f"{results['machine']['cpu']}, {results['machine']['cpus']} CPUs, python "
        f"{results['machine']['python']}; {results['pinning']}; load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    say(f"\n## HTTP: {plan.warmup:.0f} s warm-up + {plan.seconds:.0f} s per level")
    with tempfile.TemporaryDirectory(prefix="ra-gateway-bench-") as tmp:
        work = Path(tmp)
        try:
            with mock(0.0, pinning) as upstream:
                profile = work / f"gateway-{label}-task-c16.collapsed" if args.profile else None
                rows, extra = http_rows(plan, pinning, work, upstream, args.with_litellm, profile)
                results["http"] = rows
                results.update(extra)
                if not args.skip_memory:
                    say(f"\n## P5 memory: one worker, {plan.memory_requests:,} requests at c=16")
                    results["memory"] = memory_section(plan, pinning, work, upstream)
            if not args.skip_burst:
                say(f"\n## P3 burst: {plan.burst} concurrent POST /task, upstream answering in 1 s")
                results["burst"] = burst_section(plan, pinning, work)
            if not args.skip_vote:
                say("\n## P4 vote: self_consistency of 8 vs direct, upstream answering in 200 ms")
                results["vote"] = vote_section(plan, pinning, work)
        finally:
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in work.glob("*.log"):
                    shutil.copy(log, args.logs / log.name)
    results["ratios"] = ratios(results["http"])
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["duration_s"] = round(time.monotonic() - started, 1)
    report(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"gateway-{label}.json"
    out.write_text(json.dumps(no_nan(results), indent=2) + "\n")
    say(f"\n{results['duration_s']:.0f} s; results: {out.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()

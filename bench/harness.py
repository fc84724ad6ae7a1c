"""Process helpers shared by the HTTP benchmarks (`service_bench.py`, `gateway_bench.py`).

Every child listens on 127.0.0.1 only. A server is started in its own session (so its whole
process tree can be signalled at once) with a parent-death signal (so it never outlives the
benchmark, even one killed with SIGKILL), pinned to its CPUs from its first instruction, and
stopped when its `with` block ends, whatever ended it (Ctrl-C included).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

BENCH_KEY = "bench-key-000000000000"
UPSTREAM_KEY = "sk-bench-0000000000000000"
SERVER_CPU, LOAD_CPU = 0, 1

_PR_SET_PDEATHSIG = 1
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(sorted_ms: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (NaN when empty)."""
    if not sorted_ms:
        return float("nan")
    index = min(len(sorted_ms) - 1, max(0, round(p / 100 * len(sorted_ms) + 0.5) - 1))
    return sorted_ms[index]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def pin(pid: int, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(pid, {cpu})


def can_pin() -> bool:
    """At least two CPUs to give the server one and the load the other."""
    return len(os.sched_getaffinity(0)) >= 2


def base_env(**extra: str) -> dict[str, str]:
    """This environment without anything that configures the service, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "ANTHROPIC_", "REASONING_AGENT_", "PROMETHEUS_"))
        and k not in {"API_KEYS", "ADMIN_API_KEYS", "RATE_LIMIT", "DATABASE_URL", "REDIS_URL"}
        and k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
    }
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def child_setup(cpus: set[int] | None) -> Callable[[], None]:
    """A `preexec_fn`: die with the parent, and run on `cpus` from the start."""

    def setup() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if cpus:
            os.sched_setaffinity(0, cpus)

    return setup


# --- /proc: a process tree's CPU time and memory ------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields from the 3rd (state) on


def process_tree(pid: int) -> list[int]:
    """`pid` and all its living descendants."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                parents[int(entry)] = int(fields[1])
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its living descendants (all their threads)."""
    ticks = 0
    for member in process_tree(pid):
        fields = _stat_fields(member)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / _CLOCK_TICKS


def tree_rss_mb(pid: int) -> float:
    """Resident memory (VmRSS) of `pid` and its living descendants, in MB (10^6 bytes)."""
    kb = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kb += int(line.split()[1])
    return kb * 1024 / 1e6


# --- servers ------------------------------------------------------------------------------------


@dataclass
class Server:
    """A running server: its URL and the pid at the root of its process tree."""

    url: str
    pid: int
    log: Path

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid)

    def rss_mb(self) -> float:
        return tree_rss_mb(self.pid)


def _stop_group(process: subprocess.Popen[bytes], grace: float) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # any worker left behind
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


@contextlib.contextmanager
def server(
    name: str,
    command: Sequence[str],
    *,
    port: int,
    env: dict[str, str],
    cwd: Path,
    log: Path,
    cpus: set[int] | None,
    health: str = "/healthz",
    headers: dict[str, str] | None = None,
    start_timeout: float = 90.0,
    stop_grace: float = 15.0,
) -> Iterator[Server]:
    """Runs `command` (which must listen on 127.0.0.1:`port`) until `GET health` answers 200,
    yields it, and stops its whole process group on the way out."""
    import httpx

    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=child_setup(cpus),
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{log.read_text(errors='replace')[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(f"{url}{health}", headers=headers, timeout=2, trust_env=False)
                if answer.status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} did not start:\n{log.read_text(errors='replace')[-4000:]}"
                )
            time.sleep(0.1)
        yield Server(url=url, pid=process.pid, log=log)
    finally:
        _stop_group(process, stop_grace)


@contextlib.contextmanager
def uvicorn_server(
    app: str, env: dict[str, str], cwd: Path, log: Path, cpu: int | None
) -> Iterator[str]:
    """`python -m uvicorn <app>`: one worker, uvloop + httptools when installed, no access log."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--no-access-log", "--app-dir", str(REPO_ROOT)]
    cpus = None if cpu is None else {cpu}
    with server(app, command, port=port, env=env, cwd=cwd, log=log, cpus=cpus) as running:
        yield running.url


def stop_on_sigterm() -> None:
    """SIGTERM ends the benchmark as Ctrl-C does: through every `finally`, children stopped."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)

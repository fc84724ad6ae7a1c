"""Real processes for the background-task tests: `reasoning-agent worker` subprocesses and a
private `redis-server` (never the shared one on 6379, which these tests only use under a key
prefix of their own)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.api.conftest import free_port


class Worker:
    def __init__(self, tmp_path: Path, env: dict[str, str], name: str) -> None:
        self.port = free_port()
        self.log = tmp_path / f"worker-{name}.log"
        self.url = f"http://127.0.0.1:{self.port}"
        handle = self.log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from api.cli import main; raise SystemExit(main())", "worker"],
            cwd=tmp_path,
            env={**env, "WORKER_PORT": str(self.port)},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> Worker:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"worker did not start:\n{self.output()}")

    def metric(self, name: str) -> float:
        """The sum of a metric's samples on this worker's /metrics."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                head, _, value = line.rpartition(" ")
                if head.split("{")[0] == name:
                    total += float(value)
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

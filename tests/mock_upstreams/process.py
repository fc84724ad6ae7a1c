"""Runs a mock upstream in its own process, so a benchmark counts only the client's CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

REPO_ROOT = Path(__file__).resolve().parents[2]

Kind = Literal["openai", "anthropic"]


class MockProcess:
    """`with MockProcess("openai") as m: m.base_url` — a mock upstream in a child process.

    The child prints its base URL once it listens, and exits when its stdin closes (so it
    never outlives the parent, even if the parent is killed).
    """

    def __init__(
        self,
        kind: Kind,
        *,
        api_key: str | None = None,
        latency: float = 0.0,
        delta_delay: float = 0.0,
    ) -> None:
        self.kind = kind
        self.api_key = api_key
        self.latency = latency
        self.delta_delay = delta_delay
        self.base_url = ""
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> Self:
        cmd = [sys.executable, "-m", "tests.mock_upstreams", self.kind]
        cmd += ["--latency", str(self.latency), "--delta-delay", str(self.delta_delay)]
        if self.api_key is not None:
            cmd += ["--api-key", self.api_key]
        self._proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError(f"mock upstream failed to start: {line!r}")
        self.base_url = line
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

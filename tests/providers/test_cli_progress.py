"""`reasoning-agent ask` shows a task's progress on stderr: plain lines when stderr is not a
terminal, a live line (rich) when it is; stdout keeps only the answer, `--json` and `-q`
print no progress."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest

from tests.providers.plugin_helpers import cli_environment, reasoning_agent_command, run_cli

SLOW_ECHO = (
    'default_provider = "echo"\n[providers.slow]\ntype = "echo"\noptions = { latency = 0.4 }\n'
)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    (path / "plugins.toml").write_text(SLOW_ECHO)
    return path


def test_plain_lines_report_each_sample_and_the_running_vote(workdir: Path) -> None:
    done = run_cli(
        "ask",
        "-p",
        "echo",
        "-s",
        "self_consistency",
        "--samples",
        "3",
        "Final answer: 42",
        cwd=workdir,
    )
    assert (done.returncode, done.stdout) == (0, "42\n")
    lines = done.stderr.splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        "1/3 sample 1 -> 42",
        "1/3 vote 42: 1 (leader 42 100%)",
        "2/3 sample 2 -> 42",
        "2/3 vote 42: 2 (leader 42 100%)",
        "3/3 sample 3 -> 42",
        "3/3 vote 42: 3 (leader 42 100%)",
    ]


def test_refine_shows_its_calls_in_order(workdir: Path) -> None:
    done = run_cli("ask", "-p", "echo", "-s", "refine", "draft me", cwd=workdir)
    steps = [line.split("] ", 1)[1].split(" ", 2)[1] for line in done.stderr.splitlines()]
    assert steps == ["draft", "critique", "revise"]


@pytest.mark.parametrize("flag", ["--json", "-q"])
def test_json_and_quiet_print_no_progress(workdir: Path, flag: str) -> None:
    done = run_cli("ask", "-p", "echo", "-s", "cot", flag, "Final answer: 7", cwd=workdir)
    assert done.returncode == 0 and done.stderr == ""
    if flag == "--json":
        assert json.loads(done.stdout)["text"] == "7"


def test_a_terminal_gets_a_live_line_with_calls_and_time(workdir: Path) -> None:
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*reasoning_agent_command(), "ask", "-p", "slow", "-s", "refine", "live please"],
        cwd=workdir,
        env={**cli_environment(), "TERM": "xterm", "COLUMNS": "120"},
        stdout=subprocess.PIPE,
        stderr=follower,
        text=False,
    )
    os.close(follower)
    screen = b""
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                screen += os.read(leader, 4096)
            except OSError:
                break
    process.wait(timeout=30)
    os.close(leader)
    assert process.returncode == 0
    text = screen.decode(errors="replace")
    # Redrawn in place as calls finish (three 0.4 s calls): done of planned and the time.
    assert "refine · 0/3 calls" in text
    assert "refine · 2/3 calls" in text
    assert " s" in text and "\x1b[" in text  # a terminal's redraws, not plain lines
    assert "[  0." not in text

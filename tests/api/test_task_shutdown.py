"""SIGTERM: the server stops taking connections but finishes the tasks in flight, and records
them, before it exits with status 0 (what `docker stop` and Kubernetes expect of a clean stop;
uvicorn hands the SIGTERM back to the process after the drain, and `reasoning-agent serve` must
not die of it: that was exit 143 in the container)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import KEY_A, Server, headers, server_env, write_plugins_toml


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_an_in_flight_task_finish_and_be_recorded(
    serve: Callable[..., Server], tmp_path: Path, workers: int
) -> None:
    config = write_plugins_toml(
        tmp_path, 'default_provider = "echo"\n[providers.echo]\noptions = { latency = 1.5 }\n'
    )
    env = server_env(tmp_path, REASONING_AGENT_CONFIG=str(config), WORKERS=str(workers))
    server = serve(env)
    result: dict[str, httpx.Response] = {}

    def slow_task() -> None:
        result["response"] = httpx.post(
            f"{server.url}/task", headers=headers(KEY_A), json={"prompt": "finish me"}, timeout=30
        )

    worker = threading.Thread(target=slow_task)
    worker.start()
    time.sleep(0.5)  # the task is running in the server
    server.process.send_signal(signal.SIGTERM)
    worker.join(timeout=30)
    exit_code = server.process.wait(timeout=30)

    response = result["response"]
    assert response.status_code == 200
    assert exit_code == 0, server.output()
    assert "Application shutdown complete" in server.output()
    restarted = serve(env)
    record = httpx.get(f"{restarted.url}/query/{response.json()['id']}", headers=headers(KEY_A))
    assert record.status_code == 200
    assert record.json()["answer"] == "finish me"

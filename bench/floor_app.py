"""The floor for `service_bench.py`: the least a FastAPI endpoint costs on this machine.

Same framework, same server (uvicorn with uvloop + httptools), same JSON body in and a response
of the same shape out, but no auth, no rate limit, no provider call, no history write.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/task")
async def task(body: dict[str, Any]) -> dict[str, Any]:
    return {"id": "0" * 32, "object": "task", "answer": "4", "prompt_chars": len(body["prompt"])}

"""The floor for the HTTP benchmarks: the least a FastAPI endpoint costs on this machine.

Same framework, same server (uvicorn with uvloop + httptools), a JSON body validated into a
pydantic model and a response of the same kind out, but no auth, no rate limit, no provider
call, no history write.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class TaskBody(BaseModel):
    prompt: str
    provider: str | None = None
    strategy: str | None = None


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/task")
async def task(body: TaskBody) -> dict[str, str | int]:
    return {"id": "0" * 32, "object": "task", "answer": "4", "prompt_chars": len(body.prompt)}

"""Request and response bodies shared by the routes (they are also the OpenAPI schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.persistence.records import TaskRecord, TaskSource
from providers.task_options import TaskOptions

__all__ = ["ErrorOut", "QueryPage", "TaskRecordOut", "TaskRequest", "TaskResponse", "Usage"]


class TaskRequest(TaskOptions):
    """A reasoning task. Only `prompt` is required; the rest defaults from plugins.toml.
    The numeric options (samples, rounds, temperature, budgets) are `TaskOptions`'."""

    model_config = ConfigDict(
        extra="forbid",  # a misspelt option is an error, not silently ignored
        # JSON has types: "5" is not a number and 1 is not `true` (an int is a fine float)
        strict=True,
        json_schema_extra={
            "examples": [
                {"prompt": "Hello, world!"},
                {
                    "prompt": "What is 17 * 23?",
                    "provider": "openai",
                    "strategy": "self_consistency",
                    "samples": 5,
                    "trace": True,
                },
            ]
        },
    )

    prompt: str = Field(min_length=1, description="The question or instruction")
    system: str | None = Field(default=None, description="System message")
    provider: str | None = Field(
        default=None, max_length=64, description="Provider name or alias (GET /providers)"
    )
    model: str | None = Field(
        default=None, max_length=200, description="Model; default: the provider's"
    )
    strategy: str | None = Field(
        default=None,
        max_length=64,
        description="direct, cot, self_consistency or refine (GET /providers lists them)",
    )
    trace: bool = Field(default=False, description="Include every provider call in `steps`")
    stream: bool = Field(
        default=False,
        description=(
            "Answer with Server-Sent Events (as `Accept: text/event-stream` does): the task id, "
            "each provider call as it starts and finishes, the running vote, the final call's "
            "text as it streams, and last the same object as the non-streamed response"
        ),
    )

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, prompt: str) -> str:
        if not prompt.strip():
            raise ValueError("must not be blank")
        return prompt


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class TaskResponse(BaseModel):
    """A task's answer. It is in the history (GET /query/{id}) before this response is sent."""

    id: str = Field(description="Task id (UUIDv7 hex: sorts by creation time)")
    object: Literal["task"] = "task"
    created_at: datetime
    answer: str
    provider: str | None = Field(description="The provider that served it (after any fallback)")
    model: str | None = Field(description="The model that answered")
    strategy: str
    confidence: float | None = Field(description="Share of votes for the answer, where voted")
    votes: dict[str, int] | None = Field(description="Answer -> votes, where the strategy votes")
    usage: Usage
    calls: int = Field(description="Provider calls made")
    latency_ms: float
    budget_exhausted: bool = Field(description="The budget stopped the strategy early")
    steps: list[dict[str, Any]] | None = Field(
        default=None, description="Every provider call, when `trace` was requested"
    )


class ErrorOut(BaseModel):
    code: str
    message: str | None


class TaskRecordOut(BaseModel):
    """One task of the history, succeeded or failed."""

    id: str
    object: Literal["task_record"] = "task_record"
    created_at: datetime
    status: Literal["succeeded", "failed", "cancelled"]
    key_id: str = Field(description="Short hash of the API key that ran it (never the key)")
    prompt: str
    system: str | None
    provider: str | None
    model: str | None
    strategy: str
    params: dict[str, Any] = Field(description="The task options the request gave")
    answer: str | None
    confidence: float | None
    votes: dict[str, int] | None
    usage: Usage
    calls: int
    latency_ms: float
    budget_exhausted: bool
    error: ErrorOut | None = Field(description="Why it failed (failed tasks)")
    source: TaskSource = Field(
        description="The face it came through: POST /task, /v1/chat/completions, CLI, job"
    )
    steps: list[dict[str, Any]] | None = Field(
        default=None, description="The trace (GET /query/{id} only)"
    )

    @classmethod
    def from_record(cls, record: TaskRecord, *, with_trace: bool) -> TaskRecordOut:
        return cls(
            id=record.id,
            created_at=record.created_at,
            status=record.status,
            key_id=record.key_id,
            prompt=record.prompt,
            system=record.system,
            provider=record.provider,
            model=record.model,
            strategy=record.strategy,
            params=record.params,
            answer=record.answer,
            confidence=record.confidence,
            votes=record.votes,
            usage=Usage(
                prompt_tokens=record.prompt_tokens,
                completion_tokens=record.completion_tokens,
                total_tokens=record.prompt_tokens + record.completion_tokens,
            ),
            calls=record.calls,
            latency_ms=record.latency_ms,
            budget_exhausted=record.budget_exhausted,
            error=(
                ErrorOut(code=record.error_code, message=record.error_message)
                if record.error_code
                else None
            ),
            source=record.source,
            steps=record.trace if with_trace else None,
        )


class QueryPage(BaseModel):
    """A page of the history, newest first."""

    object: Literal["list"] = "list"
    data: list[TaskRecordOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last")

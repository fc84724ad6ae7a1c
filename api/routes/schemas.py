"""Request and response bodies shared by the routes (they are also the OpenAPI schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.persistence.records import TaskRecord, TaskSource
from providers.prices import trace_cost
from providers.task_options import Samples, TaskOptions

__all__ = [
    "BackgroundAccepted",
    "ErrorOut",
    "QueryPage",
    "TaskRecordOut",
    "TaskRequest",
    "TaskResponse",
    "Usage",
]


class PanelSeatIn(BaseModel):
    """One provider of a vote across providers."""

    model_config = ConfigDict(extra="forbid", strict=True)

    provider: str = Field(min_length=1, max_length=64, description="Provider name or alias")
    model: str | None = Field(default=None, max_length=200, description="Default: its own")
    samples: Samples = Field(description="How many of the vote's samples it answers")


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
    providers: list[PanelSeatIn] | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        description=(
            "self_consistency across providers: each answers its share of the samples, "
            'e.g. [{"provider": "openai", "samples": 4}, {"provider": "anthropic", '
            '"samples": 4}]; `votes_by_provider` in the answer breaks the vote down'
        ),
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

    background: bool = Field(
        default=False,
        description=(
            "Run in the background: answer 202 at once with the task's id (`status: queued`); "
            "follow it with GET /task/{id}, GET /task/{id}/events, POST /task/{id}/cancel"
        ),
    )
    callback_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description=(
            "With `background`: a URL the service POSTs the ended task to, signed "
            "(HMAC-SHA256); its host must be in CALLBACK_ALLOWED_HOSTS"
        ),
    )

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, prompt: str) -> str:
        if not prompt.strip():
            raise ValueError("must not be blank")
        return prompt

    @model_validator(mode="after")
    def _background_options(self) -> TaskRequest:
        if self.background and self.stream:
            raise ValueError("`stream` and `background` exclude each other")
        if self.callback_url is not None and not self.background:
            raise ValueError("`callback_url` needs `background: true`")
        return self


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


BudgetReason = Literal["max_calls", "max_total_tokens", "max_cost_usd", "deadline"]


STEP_FIELDS = (
    "Each call: `index`, `purpose`, `provider`, `model`, `started_ms` (when the call started, "
    "in ms from the start of the task's run: with `latency_ms` it places the call on the "
    "task's time axis; absent from records made before it was kept, null when not timed), "
    "`latency_ms`, `usage`, `output`, `candidate`, `error`, `error_message`, `note`, "
    "`cost_usd`"
)
"""The fields of a trace step (`Step.to_dict()` and its cost), for the OpenAPI descriptions."""


class SamplingOut(BaseModel):
    """How a vote's samples were drawn (self_consistency)."""

    drawn: int = Field(description="Samples drawn, failed ones included")
    maximum: int = Field(description="The most that could be drawn (`samples`)")
    waves: int = Field(description="Waves sent: the latency cost, one round trip each")
    stopped: Literal["max_samples", "settled", "confident", "budget", "deadline", "failed"]
    posterior: float = Field(
        description="Probability that the winner would stand had every sample been drawn"
    )


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
    cost_usd: float | None = Field(
        default=None,
        description="What the calls cost at the price table (null: a model's price is unknown)",
    )
    budget_reason: BudgetReason | None = Field(
        default=None, description="What stopped it, when something did"
    )
    sampling: SamplingOut | None = Field(
        default=None, description="Voting strategies: how many samples, why sampling stopped"
    )
    votes_by_provider: dict[str, dict[str, int]] | None = Field(
        default=None,
        description="A vote across providers: `provider/model` -> answer -> votes",
    )
    steps: list[dict[str, Any]] | None = Field(
        default=None,
        description=f"Every provider call, when `trace` was requested. {STEP_FIELDS}",
    )


class ErrorOut(BaseModel):
    code: str
    message: str | None


class TaskRecordOut(BaseModel):
    """One task of the history, succeeded or failed."""

    id: str
    object: Literal["task_record"] = "task_record"
    created_at: datetime
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
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
    cost_usd: float | None = Field(
        default=None, description="What its calls cost (null: a price is unknown)"
    )
    sampling: SamplingOut | None = Field(
        default=None, description="A vote's: samples drawn, waves, why sampling stopped"
    )
    providers_used: list[str] | None = Field(
        default=None, description="Every provider that answered one of its calls"
    )
    error: ErrorOut | None = Field(description="Why it failed (failed tasks)")
    source: TaskSource = Field(
        description="The face it came through: POST /task, /v1/chat/completions, CLI, job"
    )
    steps: list[dict[str, Any]] | None = Field(
        default=None, description=f"The trace (GET /query/{{id}} only). {STEP_FIELDS}"
    )
    progress: dict[str, Any] | None = Field(
        default=None,
        description="Background tasks: calls_done, calls_planned, prompt_tokens, "
        "completion_tokens, votes (the running tally), attempt",
    )
    attempts: int = Field(default=0, description="Background tasks: runs so far")
    cancel_requested: bool = Field(default=False, description="A cancel was requested")
    started_at: datetime | None = Field(default=None, description="Last claimed by a worker")
    finished_at: datetime | None = Field(default=None, description="When it ended")
    callback: dict[str, Any] | None = Field(
        default=None,
        description="The callback's outcome: url, status (delivered, failed), attempts, "
        "last_status or last_error, at",
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
            cost_usd=trace_cost(record.trace),
            sampling=(
                SamplingOut.model_validate(record.sampling) if record.sampling is not None else None
            ),
            providers_used=(
                record.providers_used.strip(",").split(",") if record.providers_used else None
            ),
            error=(
                ErrorOut(code=record.error_code, message=record.error_message)
                if record.error_code
                else None
            ),
            source=record.source,
            steps=record.trace if with_trace else None,
            progress=record.progress,
            attempts=record.attempts,
            cancel_requested=record.cancel_requested,
            started_at=record.started_at,
            finished_at=record.finished_at,
            callback=record.callback,
        )


class BackgroundAccepted(BaseModel):
    """A background task was accepted: it is in the history as queued, and on the queue."""

    id: str
    object: Literal["task"] = "task"
    status: Literal["queued"] = "queued"
    created_at: datetime
    provider: str
    strategy: str
    links: dict[str, str] = Field(description="status, events and cancel URLs of the task")


class QueryPage(BaseModel):
    """A page of the history, newest first."""

    object: Literal["list"] = "list"
    data: list[TaskRecordOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last")

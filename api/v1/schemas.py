"""The `/v1` bodies: OpenAI's chat request and responses, plus the `reasoning_agent` extension.

The request model declares every OpenAI parameter this service reads or checks, with OpenAI's
types, so a wrong type for a known parameter is a 422 `validation_error` in the one error shape;
any other field is accepted and ignored (SDKs and tools send many). Types are JSON's own, as in
`POST /task` (strict: `"0.5"` is not a number). The numeric task options reuse
`providers.task_options`' types, so their ranges are the engine's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.routes.schemas import STEP_FIELDS, BudgetReason, PanelSeatIn, SamplingOut
from providers.task_options import MaxTokens, TaskOptions, Temperature

__all__ = [
    "ChatCompletion",
    "ChatCompletionRequest",
    "ChatMessage",
    "ContentPart",
    "ModelList",
    "ModelOut",
    "ReasoningAgentOptions",
    "ReasoningAgentResult",
    "StreamOptions",
]

# Known OpenAI parameters are checked strictly; unknown ones are ignored, never refused.
_OPENAI = ConfigDict(extra="ignore", strict=True)


class ContentPart(BaseModel):
    """One part of a message's content. Only text (and an assistant's `refusal`) is served;
    other kinds (`image_url`, `input_audio`, `file`, ...) are refused with 400."""

    model_config = _OPENAI

    type: str = Field(max_length=64, description="`text`; other kinds are refused")
    text: str | None = None
    refusal: str | None = None


class ChatMessage(BaseModel):
    model_config = _OPENAI

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = Field(default=None, max_length=256)
    tool_calls: list[dict[str, Any]] | None = Field(
        default=None, description="An earlier assistant turn's tool calls (context only)"
    )


class StreamOptions(BaseModel):
    model_config = _OPENAI

    include_usage: bool | None = Field(
        default=None, description="Send a last chunk with the task's usage (and `choices: []`)"
    )


class ResponseFormat(BaseModel):
    model_config = _OPENAI

    type: str = Field(max_length=64, description="Only `text` is served")


class ReasoningAgentOptions(TaskOptions):
    """What only this service understands, in one namespaced object (`extra_body` in the
    SDKs): every task option (`TaskOptions`, declared once, so an option added there is
    accepted here too), plus the strategy, a vote across providers, trace and progress.
    Unknown keys are refused: a misspelt option is an error, not silently ignored. What it sets
    wins over the model-name form and over the OpenAI body (`temperature`, `max_tokens`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    strategy: str | None = Field(
        default=None,
        max_length=64,
        description="direct, cot, self_consistency or refine; wins over the model-name form",
    )
    providers: list[PanelSeatIn] | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        description=(
            "self_consistency across providers: each answers its share of the samples "
            "(the model's provider is then not used)"
        ),
    )
    trace: bool = Field(
        default=False, description="Include every provider call in `reasoning_agent.steps`"
    )
    progress: bool = Field(
        default=True,
        description=(
            "Streams of multi-call strategies: send each call and the running vote as chunks "
            "with `choices: []` (false: content chunks only)"
        ),
    )


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat completion request. `model` picks provider, model and (optionally)
    strategy; the last user message is the task's prompt."""

    model_config = ConfigDict(
        extra="ignore",
        strict=True,
        json_schema_extra={
            "examples": [
                {"model": "echo", "messages": [{"role": "user", "content": "Hello!"}]},
                {
                    "model": "self_consistency-5::gpt-4.1-mini",
                    "messages": [{"role": "user", "content": "What is 17 * 23?"}],
                },
                {
                    "model": "gpt-4.1-mini",
                    "messages": [
                        {"role": "system", "content": "Answer with a number."},
                        {"role": "user", "content": "What is 17 * 23?"},
                    ],
                    "stream": True,
                    "stream_options": {"include_usage": True},
                    "reasoning_agent": {"strategy": "self_consistency", "samples": 5},
                },
            ]
        },
    )

    model: str = Field(
        min_length=1,
        max_length=300,
        description=(
            "`provider/model`, a provider name or alias (its default model), or a model of the "
            "default provider; optionally prefixed by a strategy, `STRATEGY[-N]::` "
            "(e.g. `self_consistency-8::openai/gpt-4.1-mini`)"
        ),
    )
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = Field(default=False, description="Answer with chat.completion.chunks")
    stream_options: StreamOptions | None = None
    temperature: Temperature | None = Field(default=None, description="per provider call")
    max_tokens: MaxTokens | None = Field(default=None, description="per provider call")
    max_completion_tokens: MaxTokens | None = Field(
        default=None, description="per provider call; wins over max_tokens"
    )
    stop: str | Annotated[list[str], Field(max_length=4)] | None = Field(
        default=None, description="Up to 4 stop sequences, for every provider call of the task"
    )
    n: int | None = Field(default=None, ge=1, description="Only 1: one task gives one answer")
    # Read to refuse what cannot be honoured (see docs/api.md); otherwise ignored.
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    # Type-checked, then ignored: they tune sampling or label the request upstream.
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    seed: int | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    user: str | None = None
    parallel_tool_calls: bool | None = None
    reasoning_agent: ReasoningAgentOptions | None = Field(
        default=None, description="This service's options (strategy, samples, budgets, trace)"
    )


# --- responses --------------------------------------------------------------------------------


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: Literal["stop"] = "stop"


class ReasoningAgentResult(BaseModel):
    """The task behind the answer: what standard clients ignore and this service's clients
    read (`completion.reasoning_agent` in the SDKs' objects)."""

    task_id: str = Field(description="The task in the history (GET /query/{task_id})")
    strategy: str
    provider: str | None = Field(description="The provider that served (after any fallback)")
    model: str | None = Field(description="The model that answered")
    confidence: float | None = Field(description="Share of votes for the answer, where voted")
    votes: dict[str, int] | None = Field(description="Answer -> votes, where the strategy votes")
    calls: int = Field(description="Provider calls made")
    cost_usd: float | None = Field(
        default=None,
        description="What the calls cost at the price table (null: a model's price is unknown)",
    )
    budget_exhausted: bool = Field(description="The budget stopped the strategy early")
    budget_reason: BudgetReason | None = Field(
        default=None, description="What stopped it, when something did"
    )
    sampling: SamplingOut | None = Field(
        default=None, description="Voting strategies: how many samples, why sampling stopped"
    )
    votes_by_provider: dict[str, dict[str, int]] | None = Field(
        default=None, description="A vote across providers: `provider/model` -> answer -> votes"
    )
    latency_ms: float
    steps: list[dict[str, Any]] | None = Field(
        default=None,
        description=f"Every provider call, when `trace` was requested. {STEP_FIELDS}",
    )


class ChatCompletion(BaseModel):
    """A `chat.completion`: the task's answer is the one choice's content."""

    id: str = Field(description="`chatcmpl-` and the task id")
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(description="Unix time the task was created")
    model: str = Field(description="`provider/model` that answered")
    choices: list[Choice]
    usage: CompletionUsage = Field(description="Tokens of every provider call of the task")
    system_fingerprint: None = None
    reasoning_agent: ReasoningAgentResult


class ModelInfo(BaseModel):
    provider: str
    model: str | None = Field(description="None: the provider's default model, unknown here")
    strategy: str | None = Field(description="The strategy this id selects; None: the default")


class ModelOut(BaseModel):
    id: str = Field(description="What to send as `model`")
    object: Literal["model"] = "model"
    created: int
    owned_by: str = Field(description="The provider that serves it")
    reasoning_agent: ModelInfo


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]

"""A task's outcome as OpenAI's `chat.completion`, and its events as `chat.completion.chunk`s.

A stream is the pipeline's events (`TaskPipeline.events`) on OpenAI's wire, each a bare
`data: {json}` line (no `event:` field, which the SDKs would not read):

1. a chunk with `delta: {"role": "assistant", "content": ""}` and
   `reasoning_agent: {"event": "task.accepted", "task_id", ...}`;
2. for multi-call strategies (self_consistency, refine), each call as it starts and finishes
   and the running vote, as chunks with `choices: []` and `reasoning_agent: {"event":
   "call.started" | "call.finished" | "vote", ...}` (the data of POST /task's events);
3. the answer as content deltas: direct and refine forward the final call's text as the
   upstream streams it (trimmed as the engine trims the answer), and send what was not streamed
   at the end; cot and self_consistency send the extracted answer once the task has it;
4. a chunk with `finish_reason: "stop"` and `reasoning_agent: {"event": "result", ...}`, after
   the record is committed;
5. with `stream_options.include_usage`, a chunk with `choices: []` and the task's `usage`
   (every other chunk then carries `"usage": null`, as OpenAI's do);
6. `data: [DONE]`.

A failure is one chunk `{"error": {"message", "type", "code"}}` and the end of the stream (what
OpenAI sends; the SDKs raise it). A `: ping` comment keeps an idle connection open. A client
that disconnects cancels the task, which is recorded as cancelled (`TaskEventStream`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Final, cast

import orjson
from fastapi.sse import KEEPALIVE_COMMENT

import agent_core
from agent_core import AnswerDelta
from api import metrics
from api.budgets import Reservation
from api.errors import agent_error_message, agent_error_status
from api.persistence import StoreError
from api.redaction import redact
from api.routes.schemas import BudgetReason, SamplingOut
from api.routes.task import votes_by_provider
from api.streaming import HEARTBEAT_SECONDS, progress_data
from api.tasks import Outcome, TaskPipeline
from api.tasks.pipeline import Finished, Heartbeat, Progress, TaskAccepted
from api.v1 import EXTENSION
from api.v1.schemas import (
    AssistantMessage,
    ChatCompletion,
    Choice,
    CompletionUsage,
    ReasoningAgentResult,
)
from api.v1.translate import V1Request
from providers.prices import trace_cost

__all__ = ["DONE", "chat_completion", "chat_completion_chunks", "model_label"]

log = logging.getLogger("api.v1")

DONE: Final = b"data: [DONE]\n\n"
# The answer is the final call's reply (trimmed): its deltas can be content as they arrive.
REPLY_STRATEGIES: Final = frozenset({"direct", "refine"})
# Several calls: their progress is worth chunks of its own.
MULTI_CALL_STRATEGIES: Final = frozenset({"self_consistency", "refine"})


def model_label(provider: str | None, model: str | None) -> str:
    """`provider/model`, the form a client can send back as `model`."""
    if provider and model:
        return f"{provider}/{model}"
    return provider or model or "unknown"


def result_extension(outcome: Outcome, *, trace: bool) -> ReasoningAgentResult:
    answer, record = outcome.answer, outcome.record
    assert answer is not None
    return ReasoningAgentResult(
        task_id=record.id,
        strategy=record.strategy,
        provider=record.provider,
        model=record.model,
        confidence=answer.confidence,
        votes=answer.votes,
        calls=answer.calls,
        cost_usd=trace_cost(record.trace),
        budget_exhausted=answer.budget_exhausted,
        budget_reason=cast("BudgetReason | None", answer.budget_reason),
        sampling=(
            SamplingOut.model_validate(answer.sampling.to_dict())
            if answer.sampling is not None
            else None
        ),
        votes_by_provider=votes_by_provider(answer) if outcome.panel else None,
        latency_ms=round(record.latency_ms, 3),
        steps=record.trace if trace else None,
    )


def _usage(outcome: Outcome) -> CompletionUsage:
    assert outcome.answer is not None
    usage = outcome.answer.usage
    return CompletionUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def chat_completion(outcome: Outcome, *, trace: bool) -> ChatCompletion:
    """The 200 body of a succeeded task."""
    answer, record = outcome.answer, outcome.record
    assert answer is not None
    return ChatCompletion(
        id=f"chatcmpl-{record.id}",
        created=int(record.created_at.timestamp()),
        model=model_label(record.provider, record.model),
        choices=[Choice(message=AssistantMessage(content=answer.text))],
        usage=_usage(outcome),
        reasoning_agent=result_extension(outcome, trace=trace),
    )


class _Reply:
    """The final call's text as content, trimmed as the engine trims the answer: leading
    whitespace dropped, trailing whitespace held back until more text follows it. Then the
    deltas add up to the answer exactly, and the end sends only what was not streamed."""

    def __init__(self) -> None:
        self.sent = ""
        self._held = ""

    def feed(self, text: str) -> str:
        text = self._held + text
        if not self.sent:
            text = text.lstrip()
        body = text.rstrip()
        self._held = text[len(body) :]
        self.sent += body
        return body

    def rest(self, answer: str) -> str | None:
        """What of `answer` is still to send; None if the streamed text is not its start."""
        return answer[len(self.sent) :] if answer.startswith(self.sent) else None


def _data(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _error(message: str, type_: str, code: str) -> bytes:
    return _data({"error": {"message": redact(message), "type": type_, "code": code}})


def _agent_error(error: agent_core.AgentError) -> bytes:
    _, kind, code = agent_error_status(error)
    return _error(agent_error_message(error), kind, code)


async def chat_completion_chunks(
    pipeline: TaskPipeline,
    request: V1Request,
    key_id: str,
    *,
    request_id: str | None,
    started: float,
    reservation: Reservation | None = None,
) -> AsyncIterator[bytes]:
    """The body of a streamed `/v1/chat/completions` (sequence in the module's doc).
    `reservation`: the key's budget, reserved before the response started."""
    spec = request.spec
    default_model = pipeline.registry.default_model(spec.provider)
    label = model_label(spec.provider, spec.model or default_model)
    stream_reply = spec.strategy in REPLY_STRATEGIES
    send_progress = request.progress and spec.strategy in MULTI_CALL_STRATEGIES
    reply = _Reply()
    base: dict[str, Any] = {}
    outcome_label = "cancelled"  # until the stream ends any other way

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        payload = {**base, "choices": choices, **extra}
        if request.include_usage and "usage" not in extra:
            payload["usage"] = None
        return _data(payload)

    def content(text: str) -> bytes:
        delta = {"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}
        return chunk([delta])

    try:
        events = pipeline.events(spec, key_id, heartbeat=HEARTBEAT_SECONDS, reservation=reservation)
        async for item in events:
            if isinstance(item, TaskAccepted):
                metrics.STREAM_FIRST_EVENT.labels(face="v1").observe(time.perf_counter() - started)
                base = {
                    "id": f"chatcmpl-{item.id}",
                    "object": "chat.completion.chunk",
                    "created": int(item.created_at.timestamp()),
                    "model": label,
                    "system_fingerprint": None,
                }
                role = {"role": "assistant", "content": ""}
                accepted = {
                    "event": "task.accepted",
                    "task_id": item.id,
                    "strategy": spec.strategy,
                    "provider": spec.provider,
                    "model": spec.model or default_model,
                }
                yield chunk(
                    [{"index": 0, "delta": role, "logprobs": None, "finish_reason": None}],
                    **{EXTENSION: accepted},
                )
            elif isinstance(item, Progress):
                event = item.event
                if isinstance(event, AnswerDelta):
                    if stream_reply and (text := reply.feed(event.text)):
                        yield content(text)
                elif send_progress:
                    name, data = progress_data(event, default_model)
                    yield chunk([], **{EXTENSION: {"event": name, **data}})
            elif isinstance(item, Heartbeat):
                yield KEEPALIVE_COMMENT
            elif isinstance(item, Finished):
                outcome = item.outcome
                outcome_label = outcome.status
                if outcome.error is not None:
                    yield _agent_error(outcome.error)
                    return
                assert outcome.answer is not None
                rest = reply.rest(outcome.answer.text)
                if rest is None:
                    log.warning(
                        "the streamed reply of task %s is not the start of its answer; "
                        "the content sent stays as it was",
                        outcome.record.id,
                    )
                elif rest:
                    yield content(rest)
                result = result_extension(outcome, trace=request.trace).model_dump(mode="json")
                stop = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
                yield chunk([stop], **{EXTENSION: {"event": "result", **result}})
                if request.include_usage:
                    yield chunk([], usage=_usage(outcome).model_dump())
                yield DONE
    except StoreError as error:
        outcome_label = "storage_unavailable"
        log.error("streamed task not recorded: %s", error)
        message = "the task history could not be written, so the task is not acknowledged"
        yield _error(message, "service_unavailable", "storage_unavailable")
    except Exception:
        # A bug: the client gets the generic error with the request id; the log has the rest.
        outcome_label = "internal_error"
        log.exception("unhandled error in a streamed /v1 task")
        message = f"internal error; quote request id {request_id} when reporting it"
        yield _error(message, "server_error", "internal_error")
    finally:
        metrics.STREAM_DURATION.labels(face="v1", outcome=outcome_label).observe(
            time.perf_counter() - started
        )

"""`POST /task`: run one reasoning task, record it, answer.

A thin adapter of the task pipeline (`api.tasks`): the body becomes a `TaskSpec`, the
pipeline runs and records it, and the outcome becomes the response. Every task is written to
the history, succeeded or failed, *before* the response is sent, and the write returns only
once committed: a 200 means the record is durable. If the history cannot be written, the answer
is not sent (503 storage_unavailable), since it could not be found again.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from fastapi import APIRouter, Request, Response

from agent_core import Answer, normalize_answer
from api.deps import Admitted
from api.errors import TASK_ERROR_RESPONSES, APIError
from api.persistence import StoreError
from api.rendering import json_response
from api.routes.jobs import BACKGROUND_RESPONSES, submit_background
from api.routes.schemas import BudgetReason, SamplingOut, TaskRequest, TaskResponse, Usage
from api.streaming import TaskEventStream, task_events
from api.tasks import Outcome, TaskPipeline, TaskRejected, TaskSpec
from api.tasks.spec import PanelSeat
from providers import ProviderRegistry
from providers.prices import trace_cost

__all__ = [
    "StorageUnavailable",
    "rejected",
    "router",
    "spec_from_request",
    "task_response",
    "votes_by_provider",
]

log = logging.getLogger("api.task")

router = APIRouter(tags=["tasks"])


class StorageUnavailable(APIError):
    def __init__(self) -> None:
        super().__init__(
            503,
            "the task history could not be written, so the task is not acknowledged; retry",
            type="service_unavailable",
            code="storage_unavailable",
            headers={"Retry-After": "1"},
        )


def rejected(error: TaskRejected) -> APIError:
    return APIError(400, error.message, type="invalid_request_error", code=error.code)


def spec_from_request(
    body: TaskRequest, registry: ProviderRegistry, max_prompt_chars: int
) -> TaskSpec:
    """The body as the pipeline's spec; 422 for an over-long prompt, 400 for an unknown
    provider or strategy."""
    for field, text in (("prompt", body.prompt), ("system", body.system)):
        if text is not None and len(text) > max_prompt_chars:
            raise APIError(
                422,
                f"body.{field}: longer than {max_prompt_chars} characters (MAX_PROMPT_CHARS)",
                type="invalid_request_error",
                code="validation_error",
            )
    try:
        return TaskSpec.resolve(
            registry,
            prompt=body.prompt,
            system=body.system,
            provider=body.provider,
            model=body.model,
            strategy=body.strategy,
            options=body,
            panel=[PanelSeat(s.provider, s.model, s.samples) for s in body.providers or ()],
        )
    except TaskRejected as error:
        raise rejected(error) from None


def task_response(outcome: Outcome, *, trace: bool) -> TaskResponse:
    """The 200 body of a succeeded task (the same object a stream ends with)."""
    answer, record = outcome.answer, outcome.record
    assert answer is not None
    usage = answer.usage
    return TaskResponse(
        id=record.id,
        created_at=record.created_at,
        answer=answer.text,
        provider=record.provider,
        model=record.model,
        strategy=record.strategy,
        confidence=answer.confidence,
        votes=answer.votes,
        usage=Usage(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
        ),
        calls=answer.calls,
        latency_ms=round(record.latency_ms, 3),
        budget_exhausted=answer.budget_exhausted,
        cost_usd=trace_cost(record.trace),
        budget_reason=cast("BudgetReason | None", answer.budget_reason),
        sampling=(
            SamplingOut.model_validate(answer.sampling.to_dict())
            if answer.sampling is not None
            else None
        ),
        votes_by_provider=votes_by_provider(answer) if outcome.panel else None,
        steps=record.trace if trace else None,
    )


def votes_by_provider(answer: Answer) -> dict[str, dict[str, int]]:
    """Who said what in a vote across providers: `provider/model` -> answer -> votes."""
    breakdown: dict[str, dict[str, int]] = {}
    for step in answer.steps:
        if step.error is not None or step.candidate is None:
            continue
        seat = f"{step.provider}/{step.model}"
        answers = breakdown.setdefault(seat, {})
        key = normalize_answer(step.candidate)
        answers[key] = answers.get(key, 0) + 1
    return breakdown


STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The answer; with `stream` (or `Accept: text/event-stream`), Server-Sent "
        "Events: task, call.started, call.finished, vote, delta, then result or error",
        "content": {
            "text/event-stream": {
                # One SSE event (the OpenAPI 3.2 form): its `data` is a JSON document.
                "schema": {
                    "type": "object",
                    "properties": {
                        "event": {
                            "type": "string",
                            "enum": [
                                "task",
                                "call.started",
                                "call.finished",
                                "vote",
                                "delta",
                                "result",
                                "error",
                            ],
                        },
                        "data": {"type": "string", "contentMediaType": "application/json"},
                        "id": {"type": "string"},
                    },
                    "required": ["event", "data"],
                }
            }
        },
    }
}


def wants_stream(body: TaskRequest, request: Request) -> bool:
    return body.stream or "text/event-stream" in request.headers.get("accept", "")


@router.post(
    "/task",
    response_model=TaskResponse,
    summary="Submit a prompt, get the LLM's answer",
    responses={**TASK_ERROR_RESPONSES, **STREAM_RESPONSE, **BACKGROUND_RESPONSES},
)
async def run_task(body: TaskRequest, request: Request, principal: Admitted) -> Response:
    """Runs the task with the requested (or default) provider and strategy, records it in the
    history, and returns the answer with its usage (and its trace when `trace` is true)."""
    # The app's long-lived objects are read here rather than injected: each dependency is a
    # call through FastAPI's solver per request, on the hottest route there is.
    state = request.app.state
    pipeline: TaskPipeline = state.pipeline
    spec = spec_from_request(body, state.registry, state.settings.max_prompt_chars)
    if body.background:
        return await submit_background(body, spec, principal, request)
    if wants_stream(body, request):
        # The key's budget is reserved before the stream starts, so a refusal is a 402, not
        # an error event after a 200.
        reservation = await pipeline.reserve(spec, principal.key_id)
        context = request.scope.get("state", {})
        return TaskEventStream(
            task_events(
                pipeline,
                spec,
                principal.key_id,
                result=lambda outcome: task_response(outcome, trace=body.trace).model_dump(
                    mode="json"
                ),
                face="task",
                request_id=context.get("request_id"),
                started=context.get("started", time.perf_counter()),
                reservation=reservation,
            ),
            on_close=(
                (lambda: pipeline.release_unstarted(reservation))
                if reservation is not None
                else None
            ),
        )
    try:
        outcome = await pipeline.run(spec, principal.key_id)
    except StoreError as error:
        log.error("task not recorded: %s", error)
        raise StorageUnavailable() from None
    if outcome.error is not None:
        raise outcome.error
    # Rendered once: a returned model would be validated again against `response_model`.
    return json_response(task_response(outcome, trace=body.trace))

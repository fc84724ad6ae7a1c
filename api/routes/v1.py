"""`/v1`: the OpenAI-compatible face (`POST /v1/chat/completions`, `GET /v1/models`).

A thin adapter of the task pipeline, like `POST /task`: the translation is in `api.v1`
(`translate.py` for the request, `stream.py` for the answer). Keys (X-API-Key or Bearer), rate
limits, the error envelope, metrics and the history are those of every other endpoint; each
chat completion is a task recorded with `source="v1"`.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Request, Response

import agent_core
from api.deps import Admitted, RegistryDep
from api.errors import TASK_ERROR_RESPONSES, APIError, ErrorBody
from api.persistence import StoreError
from api.rendering import json_response
from api.routes.task import StorageUnavailable
from api.streaming import TaskEventStream
from api.tasks import TaskPipeline
from api.v1.schemas import ChatCompletion, ChatCompletionRequest, ModelInfo, ModelList, ModelOut
from api.v1.stream import chat_completion, chat_completion_chunks
from api.v1.translate import parse_model, to_spec
from providers import ProviderRegistry

__all__ = ["router"]

log = logging.getLogger("api.v1")

router = APIRouter(prefix="/v1", tags=["openai"])

# `created` of the models: when this process started (the models have no date of their own).
_STARTED: Final = int(time.time())

# Proxies (nginx) must pass chunks on at once rather than buffer the stream.
STREAM_HEADERS: Final = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

CHAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **TASK_ERROR_RESPONSES,
    200: {
        "description": "A chat.completion; with `stream: true`, Server-Sent Events: "
        "chat.completion.chunk objects, then `data: [DONE]`",
        "content": {
            "text/event-stream": {
                # One SSE event (the OpenAPI 3.2 form): unnamed, as OpenAI's are.
                "schema": {
                    "type": "object",
                    "properties": {
                        "data": {
                            "type": "string",
                            "description": "A chat.completion.chunk or an error envelope, as "
                            "JSON; last, [DONE]",
                        }
                    },
                    "required": ["data"],
                }
            }
        },
    },
    400: {
        "model": ErrorBody,
        "description": "Bad model name (invalid_model, unknown_strategy), unknown provider "
        "(unknown_provider), a parameter that cannot be honoured (unsupported_parameter: n > 1, "
        "a required tool, a JSON response_format), non-text content (unsupported_content), "
        "messages not ending with the user's (invalid_messages), body not JSON (invalid_json), "
        "or refused by the engine (invalid_request)",
    },
}


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    summary="OpenAI-compatible chat completion: one reasoning task",
    responses=CHAT_RESPONSES,
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, principal: Admitted
) -> Response:
    """Runs the conversation's last user message as a task (provider, model and strategy from
    `model` and the `reasoning_agent` extension), records it, and answers as OpenAI does."""
    # Read here rather than injected, as on POST /task: a dependency call per object per request.
    state = request.app.state
    pipeline: TaskPipeline = state.pipeline
    v1 = to_spec(body, state.registry, state.settings.max_prompt_chars)
    if v1.stream:
        # The key's budget is reserved before the stream starts, so a refusal is a 402 as
        # for POST /task, not an error chunk after a 200.
        reservation = await pipeline.reserve(v1.spec, principal.key_id)
        context = request.scope.get("state", {})
        return TaskEventStream(
            chat_completion_chunks(
                pipeline,
                v1,
                principal.key_id,
                request_id=context.get("request_id"),
                started=context.get("started", time.perf_counter()),
                reservation=reservation,
            ),
            headers=STREAM_HEADERS,
            on_close=(
                (lambda: pipeline.release_unstarted(reservation))
                if reservation is not None
                else None
            ),
        )
    try:
        outcome = await pipeline.run(v1.spec, principal.key_id)
    except StoreError as error:
        log.error("task not recorded: %s", error)
        raise StorageUnavailable() from None
    if outcome.error is not None:
        raise outcome.error
    # Rendered once: a returned model would be validated again against `response_model`.
    return json_response(chat_completion(outcome, trace=v1.trace))


# --- models -----------------------------------------------------------------------------------


def _servable(registry: ProviderRegistry, name: str) -> bool:
    """The provider can take a request now (itself, or through its fallback chain)."""
    try:
        registry.get(name)
    except agent_core.AgentError:
        return False
    return True


def _model(model_id: str, provider: str, model: str | None, strategy: str | None) -> ModelOut:
    return ModelOut(
        id=model_id,
        created=_STARTED,
        owned_by=provider,
        reasoning_agent=ModelInfo(provider=provider, model=model, strategy=strategy),
    )


@router.get("/models", response_model=ModelList, summary="Models to send as `model`")
async def list_models(registry: RegistryDep) -> ModelList:
    """Per provider that can serve: `provider/default-model`, the provider's name and aliases
    (its default model), and `STRATEGY::provider/default-model` for every strategy but the
    default, for tools that only let a user pick from this list."""
    default_strategy = registry.settings.default_strategy
    strategies = [s for s in agent_core.strategies() if s != default_strategy]
    data: list[ModelOut] = []
    for status in registry.statuses():
        if not _servable(registry, status.name):
            continue
        name, model = status.name, status.default_model
        target = f"{name}/{model}" if model else name
        names = [target, *([name] if model else []), *status.aliases]
        data += [_model(model_id, name, model, None) for model_id in names]
        data += [_model(f"{s}::{target}", name, model, s) for s in strategies]
    return ModelList(data=data)


@router.get(
    "/models/{model_id:path}",
    response_model=ModelOut,
    summary="One model id: what it selects",
    responses={404: {"model": ErrorBody, "description": "Not usable here (model_not_found)"}},
)
async def retrieve_model(
    registry: RegistryDep,
    model_id: Annotated[str, Path(max_length=300, description="Any `model` value")],
) -> ModelOut:
    """What `model_id` selects, if a request could use it now. A model of the default provider
    is passed to it unchecked, as in a chat request: the upstream knows its own models."""
    try:
        choice = parse_model(model_id, registry)
    except APIError as error:
        raise _not_found(error.message) from None
    provider = registry.resolve(choice.provider)
    if not _servable(registry, provider):
        raise _not_found(f"model {model_id!r}: provider {provider!r} cannot serve now")
    model = choice.model or registry.default_model(provider)
    return _model(model_id, provider, model, choice.strategy)


def _not_found(message: str) -> APIError:
    return APIError(404, message, type="invalid_request_error", code="model_not_found")

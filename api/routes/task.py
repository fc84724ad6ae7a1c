"""`POST /task`: run one reasoning task, record it, answer.

Every task is written to the history, succeeded or failed, *before* the response is sent, and
the write returns only once committed: a 200 means the record is durable. If the history cannot
be written, the answer is not sent (503 storage_unavailable), since it could not be found again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

import agent_core
from api import metrics
from api.deps import Admitted, RegistryDep, SettingsDep, StoreDep
from api.errors import TASK_ERROR_RESPONSES, APIError, agent_error_status
from api.ids import new_task_id
from api.persistence import StoreError
from api.persistence.records import TaskRecord, TaskStore
from api.redaction import redact
from api.routes.schemas import TaskRequest, TaskResponse, Usage
from api.security import Principal
from providers import ProviderRegistry

__all__ = ["router"]

log = logging.getLogger("api.task")

router = APIRouter(tags=["tasks"])

# The task options a request may set; the unset ones come from plugins.toml's [strategy].
_OPTIONS = ("samples", "rounds", "temperature", "max_tokens", "max_calls", "max_total_tokens")


class StorageUnavailable(APIError):
    def __init__(self) -> None:
        super().__init__(
            503,
            "the task history could not be written, so the task is not acknowledged; retry",
            type="service_unavailable",
            code="storage_unavailable",
            headers={"Retry-After": "1"},
        )


def _strategy(body: TaskRequest, registry: ProviderRegistry) -> str:
    strategy = body.strategy or registry.settings.default_strategy
    known = agent_core.strategies()
    if strategy not in known:
        raise APIError(
            400,
            f"unknown strategy {strategy!r}; available strategies: {', '.join(known)}",
            type="invalid_request_error",
            code="unknown_strategy",
        )
    return strategy


def _provider_name(body: TaskRequest, registry: ProviderRegistry) -> str:
    try:
        return registry.resolve(body.provider)
    except agent_core.InvalidRequestError:
        raise APIError(
            400,
            f"unknown provider {body.provider!r}; available providers: "
            f"{', '.join(registry.names())} (GET /providers shows their status)",
            type="invalid_request_error",
            code="unknown_provider",
        ) from None


def _options(body: TaskRequest, registry: ProviderRegistry) -> dict[str, Any]:
    options = registry.settings.strategy.task_options()
    for name in _OPTIONS:
        value = getattr(body, name)
        if value is not None:
            options[name] = value
    return options


async def _commit(store: TaskStore, record: TaskRecord) -> None:
    started = time.perf_counter()
    try:
        await store.add(record)
    except StoreError as error:
        log.error("task %s not recorded: %s", record.id, error)
        raise StorageUnavailable() from None
    metrics.HISTORY_WRITE_LATENCY.observe(time.perf_counter() - started)


@router.post(
    "/task",
    response_model=TaskResponse,
    summary="Submit a prompt, get the LLM's answer",
    responses=TASK_ERROR_RESPONSES,
)
async def run_task(
    body: TaskRequest,
    principal: Admitted,
    settings: SettingsDep,
    registry: RegistryDep,
    store: StoreDep,
) -> TaskResponse:
    """Runs the task with the requested (or default) provider and strategy, records it in the
    history, and returns the answer with its usage (and its trace when `trace` is true)."""
    for field, text in (("prompt", body.prompt), ("system", body.system)):
        if text is not None and len(text) > settings.max_prompt_chars:
            raise APIError(
                422,
                f"body.{field}: longer than {settings.max_prompt_chars} characters "
                "(MAX_PROMPT_CHARS)",
                type="invalid_request_error",
                code="validation_error",
            )
    strategy = _strategy(body, registry)
    provider_name = _provider_name(body, registry)
    options = _options(body, registry)
    given = {name: getattr(body, name) for name in _OPTIONS if getattr(body, name) is not None}
    task_id = new_task_id()
    created_at = datetime.now(UTC)
    started = time.perf_counter()

    def record(**fields: Any) -> TaskRecord:
        base: dict[str, Any] = {
            "id": task_id,
            "key_id": principal.key_id,
            "created_at": created_at,
            "prompt": body.prompt,
            "system": body.system,
            "strategy": strategy,
            "params": given,
            "latency_ms": (time.perf_counter() - started) * 1000,
        }
        return TaskRecord(**{**base, **fields})

    try:
        provider = registry.get(provider_name)
        task = agent_core.Task(
            body.prompt, strategy=strategy, system=body.system, model=body.model, **options
        )
        answer = await agent_core.ReasoningAgent(provider).run(task)
    except Exception as error:
        await _record_failure(
            store,
            principal,
            registry,
            provider_name,
            body,
            strategy,
            started,
            task_id,
            record,
            error,
        )
        raise

    latency_ms = (time.perf_counter() - started) * 1000
    data = answer.to_dict(trace=True)
    served_by = answer.provider or provider_name
    model = answer.model or body.model or registry.default_model(provider_name)
    usage = answer.usage
    await _commit(
        store,
        record(
            status="succeeded",
            provider=served_by,
            model=model,
            answer=answer.text,
            confidence=answer.confidence,
            votes=answer.votes,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            calls=answer.calls,
            latency_ms=latency_ms,
            error_code=None,
            error_message=None,
            trace=data["steps"],
            budget_exhausted=answer.budget_exhausted,
        ),
    )
    metrics.observe_task(
        provider=served_by,
        model=model,
        strategy=strategy,
        outcome="succeeded",
        seconds=latency_ms / 1000,
        steps=answer.steps,
    )
    return TaskResponse(
        id=task_id,
        created_at=created_at,
        answer=answer.text,
        provider=served_by,
        model=model,
        strategy=strategy,
        confidence=answer.confidence,
        votes=answer.votes,
        usage=Usage(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
        ),
        calls=answer.calls,
        latency_ms=round(latency_ms, 3),
        budget_exhausted=answer.budget_exhausted,
        steps=data["steps"] if body.trace else None,
    )


async def _record_failure(
    store: TaskStore,
    principal: Principal,
    registry: ProviderRegistry,
    provider_name: str,
    body: TaskRequest,
    strategy: str,
    started: float,
    task_id: str,
    record: Callable[..., TaskRecord],
    error: Exception,
) -> None:
    """Records a failed task (then the caller re-raises the error for its HTTP answer).

    The engine puts on a task's error what the task did before failing, so the calls and
    tokens it spent are accounted for and its trace can be read back like a success's.
    """
    steps: list[agent_core.Step] = []
    usage = agent_core.Usage()
    if isinstance(error, agent_core.AgentError):
        _, _, code = agent_error_status(error)
        message = redact(error.message or str(error))
        steps, usage = error.steps, error.usage
    else:
        # A bug: its message may hold anything, so only its type is kept.
        code, message = "internal_error", f"internal error ({type(error).__name__})"
    seconds = time.perf_counter() - started
    model = body.model or registry.default_model(provider_name)
    await _commit(
        store,
        record(
            status="failed",
            provider=provider_name,
            model=model,
            answer=None,
            confidence=None,
            votes=None,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            calls=len(steps),
            error_code=code,
            error_message=message[:2000],
            trace=[step.to_dict() for step in steps] or None,
            budget_exhausted=code == "budget_exceeded",
        ),
    )
    metrics.observe_task(
        provider=provider_name,
        model=model,
        strategy=strategy,
        outcome=code,
        seconds=seconds,
        steps=steps,
    )
    log.info("task failed: %s", code, extra={"task_id": task_id, "key_id": principal.key_id})

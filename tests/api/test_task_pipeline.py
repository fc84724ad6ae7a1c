"""The task pipeline below every entry point: runs a task, reports progress, records the
outcome (succeeded, failed, cancelled) and only then says how it ended. Real SQLite store,
real providers (echo; a provider that hangs for the cancelled case)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_core import CallFinished, CallStarted, VoteTally
from api.persistence import open_store
from api.persistence.records import TaskStore
from api.tasks import TaskPipeline, TaskRejected, TaskSpec
from api.tasks.pipeline import Finished, Progress, TaskAccepted
from providers import ProviderRegistry, ProvidersSettings, load_registry
from providers.task_options import TaskOptions

KEY_ID = "key-id-pipeline"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TaskStore]:
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'history.db'}")
    try:
        yield opened
    finally:
        await opened.aclose()


@pytest.fixture
async def registry() -> AsyncIterator[ProviderRegistry]:
    settings = ProvidersSettings.isolated(
        default_provider="echo",
        providers={"slow": {"type": "echo", "options": {"latency": 0.2}}},
        strategy={"samples": 3},
    )
    loaded = load_registry(settings)
    try:
        yield loaded
    finally:
        await loaded.aclose()


def _spec(registry: ProviderRegistry, **fields: object) -> TaskSpec:
    return TaskSpec.resolve(registry, prompt="Final answer: 7", **fields)  # type: ignore[arg-type]


async def test_run_records_before_it_returns(registry: ProviderRegistry, store: TaskStore) -> None:
    spec = _spec(registry, strategy="self_consistency", options=TaskOptions(temperature=1.0))
    outcome = await TaskPipeline(registry, store).run(spec, KEY_ID)
    assert outcome.status == "succeeded" and outcome.answer is not None
    assert outcome.answer.votes == {"7": 3}  # samples from plugins.toml's [strategy]
    stored = await store.get(outcome.record.id, key_id=KEY_ID)
    assert stored is not None and stored.status == "succeeded"
    assert stored.params == {"temperature": 1.0}  # what the caller gave, not the defaults


async def test_events_start_with_the_id_and_end_after_the_commit(
    registry: ProviderRegistry, store: TaskStore
) -> None:
    spec = _spec(registry, strategy="self_consistency")
    events = [e async for e in TaskPipeline(registry, store).events(spec, KEY_ID)]
    first, last = events[0], events[-1]
    assert isinstance(first, TaskAccepted) and isinstance(last, Finished)
    assert last.outcome.record.id == first.id
    progress = [e.event for e in events if isinstance(e, Progress)]
    assert sum(isinstance(e, CallStarted) for e in progress) == 3
    assert sum(isinstance(e, CallFinished) for e in progress) == 3
    assert [e.votes for e in progress if isinstance(e, VoteTally)][-1] == {"7": 3}
    assert await store.get(first.id, key_id=KEY_ID) is not None


async def test_a_failure_is_recorded_by_the_same_code_with_what_it_spent(
    registry: ProviderRegistry, store: TaskStore
) -> None:
    # self_consistency refuses temperature 0: the engine's error, recorded as failed.
    spec = _spec(registry, strategy="self_consistency", options=TaskOptions(temperature=0))
    outcome = await TaskPipeline(registry, store).run(spec, KEY_ID)
    assert outcome.status == "failed" and outcome.error is not None
    stored = await store.get(outcome.record.id, key_id=KEY_ID)
    assert stored is not None
    assert (stored.status, stored.error_code) == ("failed", "invalid_request")


async def test_a_consumer_that_goes_away_cancels_the_task_and_it_is_recorded(
    registry: ProviderRegistry, store: TaskStore
) -> None:
    spec = _spec(registry, provider="slow", strategy="refine", options=TaskOptions(rounds=2))
    pipeline = TaskPipeline(registry, store)
    stream = pipeline.events(spec, KEY_ID)
    accepted = await anext(stream)
    assert isinstance(accepted, TaskAccepted)
    # Read until the critique is sent (the draft took 0.2 s), then go away.
    async for event in stream:
        started = event.event if isinstance(event, Progress) else None
        if isinstance(started, CallStarted) and started.purpose == "critique 1":
            break
    await stream.aclose()
    await pipeline.aclose()  # the cancelled task finishes recording
    stored = await store.get(accepted.id, key_id=KEY_ID)
    assert stored is not None
    assert (stored.status, stored.error_code) == ("cancelled", "cancelled")
    assert stored.calls == 2  # the draft it finished and the critique it was waiting on
    assert stored.prompt_tokens > 0


async def test_unknown_names_are_rejected_before_anything_runs(
    registry: ProviderRegistry,
) -> None:
    with pytest.raises(TaskRejected) as caught:
        _spec(registry, provider="nope")
    assert caught.value.code == "unknown_provider"
    with pytest.raises(TaskRejected) as caught:
        _spec(registry, strategy="tree_of_thought")
    assert caught.value.code == "unknown_strategy"


async def test_the_cli_pipeline_records_nothing(registry: ProviderRegistry) -> None:
    outcome = await TaskPipeline(registry, None).run(_spec(registry, source="cli"), "cli")
    assert outcome.status == "succeeded"
    await asyncio.sleep(0)

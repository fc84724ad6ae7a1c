"""What to run: a task resolved against the configuration before anything is spent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import agent_core
from api.persistence.records import TaskSource
from providers import ProviderRegistry
from providers.task_options import TaskOptions, merge_options

__all__ = ["Source", "TaskRejected", "TaskSpec"]

Source = TaskSource
"""The entry point a task came through (kept in the history as `source`)."""


class TaskRejected(Exception):
    """The task cannot be resolved (unknown provider or strategy): nothing ran, nothing is
    recorded. `code` is stable; the message is safe to show."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A task as it will run: provider and strategy resolved, options merged."""

    prompt: str
    system: str | None
    provider: str  # the configured provider's name (an alias resolved)
    model: str | None  # None: the provider's default model
    strategy: str
    options: dict[str, Any]  # keyword options of agent_core.Task: defaults + what was given
    given: dict[str, Any] = field(default_factory=dict)  # what the caller set (for the record)
    source: Source = "task"

    @classmethod
    def resolve(
        cls,
        registry: ProviderRegistry,
        *,
        prompt: str,
        system: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        strategy: str | None = None,
        options: TaskOptions | None = None,
        source: Source = "task",
    ) -> TaskSpec:
        """Resolves a request against the configuration: the provider (default or alias), the
        strategy (default), and the options (plugins.toml's `[strategy]` under the given).

        :raises TaskRejected: an unknown provider (`unknown_provider`) or strategy
            (`unknown_strategy`).
        """
        given = options or TaskOptions()
        settings = registry.settings
        chosen = strategy or settings.default_strategy
        known = agent_core.strategies()
        if chosen not in known:
            raise TaskRejected(
                "unknown_strategy",
                f"unknown strategy {chosen!r}; available strategies: {', '.join(known)}",
            )
        try:
            name = registry.resolve(provider)
        except agent_core.InvalidRequestError:
            where = "`reasoning-agent providers`" if source == "cli" else "GET /providers"
            raise TaskRejected(
                "unknown_provider",
                f"unknown provider {provider!r}; available providers: "
                f"{', '.join(registry.names())} ({where} shows their status)",
            ) from None
        return cls(
            prompt=prompt,
            system=system,
            provider=name,
            model=model,
            strategy=chosen,
            options=merge_options(settings.strategy, given),
            given=given.given(),
            source=source,
        )

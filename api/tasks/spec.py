"""What to run: a task resolved against the configuration before anything is spent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import agent_core
from api.persistence.records import TaskSource
from providers import ProviderRegistry
from providers.task_options import TaskOptions, merge_options

__all__ = ["PanelSeat", "Source", "TaskRejected", "TaskSpec"]

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
class PanelSeat:
    """One provider of a cross-provider vote: its samples, with an optional model."""

    provider: str
    model: str | None
    samples: int


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
    panel: tuple[PanelSeat, ...] = ()  # a vote across providers (self_consistency)
    # The model's price, US dollars per million (prompt, completion) tokens; None: unknown.
    # A panel's is the dearest member's, so a cost budget reserves the worst case.
    price: tuple[float, float] | None = None

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
        panel: Sequence[PanelSeat] = (),
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
        where = "`reasoning-agent providers`" if source == "cli" else "GET /providers"

        def resolved(name: str | None) -> str:
            try:
                return registry.resolve(name)
            except agent_core.InvalidRequestError:
                raise TaskRejected(
                    "unknown_provider",
                    f"unknown provider {name!r}; available providers: "
                    f"{', '.join(registry.names())} ({where} shows their status)",
                ) from None

        options_now = merge_options(settings.strategy, given)
        recorded = given.given()
        seats: tuple[PanelSeat, ...] = ()
        if panel:
            if chosen != "self_consistency":
                raise TaskRejected(
                    "invalid_panel",
                    f"a vote across providers needs the self_consistency strategy, not {chosen!r}",
                )
            seats = tuple(PanelSeat(resolved(s.provider), s.model, s.samples) for s in panel)
            total = sum(seat.samples for seat in seats)
            if given.samples is not None and given.samples != total:
                raise TaskRejected(
                    "invalid_panel",
                    f"samples ({given.samples}) differs from the panel's samples ({total}); "
                    "give one or the other",
                )
            limit = agent_core.LIMITS.samples
            if not limit.contains(total):
                raise TaskRejected(
                    "invalid_panel",
                    f"the panel's samples add up to {total}; they must be between "
                    f"{limit.minimum} and {limit.maximum}",
                )
            options_now["samples"] = total
            recorded["providers"] = [
                {"provider": seat.provider, "model": seat.model, "samples": seat.samples}
                for seat in seats
            ]
        name = seats[0].provider if seats else resolved(provider)
        price = _price(registry, [(s.provider, s.model) for s in seats] or [(name, model)])
        if given.max_cost_usd is not None and price is None:
            raise TaskRejected(
                "unknown_price",
                "max_cost_usd needs the model's price, and it is unknown: add it to plugins.toml "
                '([prices."provider/model"] input = ..., output = ..., date = ...)',
            )
        return cls(
            prompt=prompt,
            system=system,
            provider=name,
            model=model if not seats else None,  # a panel's members keep their own models
            strategy=chosen,
            options=options_now,
            given=recorded,
            source=source,
            panel=seats,
            price=price,
        )


def _price(
    registry: ProviderRegistry, seats: Sequence[tuple[str, str | None]]
) -> tuple[float, float] | None:
    """The dearest input and output price among the models that will answer (None if any
    is unknown)."""
    table = registry.settings.price_table
    prices = [table.price(name, model or registry.default_model(name)) for name, model in seats]
    if any(price is None for price in prices):
        return None
    return (max(p.input for p in prices if p), max(p.output for p in prices if p))

"""The numeric task options as pydantic types, bounded by the engine's own limits.

The ranges are declared once, in the Rust engine (`agent_core.LIMITS`); every model that
accepts a task option (the REST request bodies, the `[strategy]` defaults of plugins.toml)
uses these types, so a bound cannot differ between the API, the configuration and the engine.
An out-of-range value is a validation error that names the allowed range, and the JSON schema
(OpenAPI) carries it as `minimum`/`maximum`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from agent_core import LIMITS, FloatRange, IntRange

__all__ = [
    "OPTION_NAMES",
    "Bounds",
    "MaxCalls",
    "MaxTokens",
    "MaxTotalTokens",
    "Rounds",
    "Samples",
    "TaskOptions",
    "Temperature",
    "Within",
    "describe_range",
    "merge_options",
]


@dataclass(frozen=True)
class Bounds:
    """An inclusive range declared in Python, for the service's own numbers (page sizes):
    the engine's ranges are `agent_core.LIMITS`."""

    minimum: int
    maximum: int


@dataclass(frozen=True)
class Within:
    """`Annotated` metadata: the value must lie in `limit` (inclusive, finite).

    One message names the whole range, where pydantic's own `ge`/`le` name only the side that
    was crossed; the JSON schema gets `minimum` and `maximum` all the same.
    """

    limit: IntRange | FloatRange | Bounds

    def _check(self, value: float) -> Any:
        low, high = self.limit.minimum, self.limit.maximum
        # Python ints have no infinity (and isfinite would overflow on a huge one).
        finite = isinstance(value, int) or math.isfinite(value)
        if not (finite and low <= value <= high):
            raise ValueError(f"must be {describe_range(self.limit)}")
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.update(minimum=self.limit.minimum, maximum=self.limit.maximum)
        return json_schema


def describe_range(limit: IntRange | FloatRange | Bounds) -> str:
    """`between 1 and 64`: how messages name a range."""

    def number(value: float) -> str:
        return str(value) if isinstance(value, int) else f"{value:g}"

    return f"between {number(limit.minimum)} and {number(limit.maximum)}"


Samples = Annotated[int, Within(LIMITS.samples)]
"""self_consistency: how many samples vote."""
Rounds = Annotated[int, Within(LIMITS.rounds)]
"""refine: critique-and-revise rounds after the draft."""
MaxTokens = Annotated[int, Within(LIMITS.max_tokens)]
"""Tokens one provider call may generate."""
MaxCalls = Annotated[int, Within(LIMITS.max_calls)]
"""Budget: provider calls for the whole task."""
MaxTotalTokens = Annotated[int, Within(LIMITS.max_total_tokens)]
"""Budget: prompt and completion tokens for the whole task."""
Temperature = Annotated[float, Within(LIMITS.temperature)]
"""Sampling temperature."""
MaxCostUsd = Annotated[float, Within(LIMITS.max_cost_usd)]
"""Budget: US dollars for the whole task."""
DeadlineMs = Annotated[int, Within(LIMITS.deadline_ms)]
"""Milliseconds a whole task may take."""
FirstWave = Annotated[int, Within(LIMITS.first_wave)]
"""Adaptive self-consistency: samples in the first wave."""
WaveSize = Annotated[int, Within(LIMITS.wave_size)]
"""Adaptive self-consistency: the most samples in a later wave."""
StopConfidence = Annotated[float, Within(LIMITS.stop_confidence)]
"""Adaptive self-consistency: the posterior at which a vote is decided."""


class TaskOptions(BaseModel):
    """A task's numeric options, declared once: the REST bodies (`POST /task`, `/v1`), the
    `[strategy]` defaults of plugins.toml, the CLI and the job worker all use this model.
    `None` means "not given": the configured default (or the engine's) applies."""

    samples: Samples | None = Field(default=None, description="self_consistency: voting samples")
    rounds: Rounds | None = Field(default=None, description="refine: critique-and-revise rounds")
    temperature: Temperature | None = Field(default=None, description="sampling temperature")
    max_tokens: MaxTokens | None = Field(default=None, description="per provider call")
    max_calls: MaxCalls | None = Field(default=None, description="budget: provider calls")
    max_total_tokens: MaxTotalTokens | None = Field(
        default=None, description="budget: prompt and completion tokens for the whole task"
    )
    max_cost_usd: MaxCostUsd | None = Field(
        default=None,
        description=(
            "budget: US dollars for the whole task, at the model's price; each batch's worst "
            "case is reserved before it goes out, and the task ends with its best answer so far "
            "when the next one cannot fit"
        ),
    )
    deadline_ms: DeadlineMs | None = Field(
        default=None,
        description=(
            "the whole task ends after this many milliseconds: outstanding calls are cancelled "
            "and the best answer so far is returned (budget_reason `deadline`), or 504 "
            "deadline_exceeded when there is none"
        ),
    )
    early_stop: bool | None = Field(
        default=None,
        description=(
            "self_consistency: stop drawing samples once the vote is decided (`samples` is "
            "then the most drawn)"
        ),
    )
    stop_confidence: StopConfidence | None = Field(
        default=None,
        description="with early_stop: the probability that the winner stands at which to stop",
    )
    first_wave: FirstWave | None = Field(
        default=None, description="with early_stop: samples in the first wave"
    )
    wave_size: WaveSize | None = Field(
        default=None, description="with early_stop: the most samples in a later wave"
    )

    def given(self) -> dict[str, Any]:
        """The options that were set, by name."""
        return {
            name: getattr(self, name) for name in OPTION_NAMES if getattr(self, name) is not None
        }


OPTION_NAMES: tuple[str, ...] = tuple(TaskOptions.model_fields)
"""The task options' names, in declaration order."""


def merge_options(defaults: TaskOptions, given: TaskOptions) -> dict[str, Any]:
    """The keyword options of `agent_core.Task`: the configured defaults, overridden by what a
    request (or the command line) gave. Unset options are left to the engine's defaults."""
    return {**defaults.given(), **given.given()}

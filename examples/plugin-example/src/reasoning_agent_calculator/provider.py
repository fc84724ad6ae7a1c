"""The `calculator` provider: answers the arithmetic in a prompt, offline and deterministically.

What every provider plugin does, in the smallest form:

- subclass `agent_core.Provider` and accept `(name=..., config=...)`: ReasoningAgent creates
  one instance per configured provider and keeps it for the life of the process;
- check the configuration in `__init__` and raise `agent_core.NotConfiguredError` naming the
  missing variable, so the provider is listed as "missing credentials" instead of failing later;
- implement `async def complete(request) -> Completion`, raising `agent_core` errors
  (`InvalidRequestError`, `UnavailableError`, ...) so callers get stable error codes;
- read provider-specific settings from `config.options` (`[providers.NAME] options = {...}`);
- release clients in `aclose()` (this provider holds none).
"""

from __future__ import annotations

import os

from agent_core import (
    Capabilities,
    Completion,
    CompletionRequest,
    InvalidRequestError,
    NotConfiguredError,
    Provider,
    Usage,
)
from providers import ProviderConfig
from reasoning_agent_calculator.arithmetic import (
    NotArithmetic,
    evaluate,
    find_expression,
    format_number,
)

__all__ = ["CalculatorProvider"]

DEFAULT_MODEL = "calculator-1"
DEFAULT_PRECISION = 6

# The engine's `refine` strategy asks for a critique and accepts this reply as "nothing to fix".
NO_ISSUES = "NO ISSUES"


class CalculatorProvider(Provider):
    """Evaluates the longest arithmetic expression of the task and states the result."""

    capabilities = Capabilities(streaming=False, multiple_samples=False)

    def __init__(self, *, name: str, config: ProviderConfig) -> None:
        self.name = name  # the configured instance name
        self.model = config.model or DEFAULT_MODEL
        # A real provider checks its key here. The calculator needs none, but shows the pattern:
        # `api_key_env = "CALCULATOR_TOKEN"` in plugins.toml makes that variable required.
        if config.api_key_env and not os.environ.get(config.api_key_env):
            raise NotConfiguredError(f"{config.api_key_env} is not set")
        precision = config.options.get("precision", DEFAULT_PRECISION)
        if not isinstance(precision, int) or not 0 <= precision <= 15:
            raise InvalidRequestError(
                f"options.precision must be an integer from 0 to 15, got {precision!r}"
            )
        self.precision = precision

    async def complete(self, request: CompletionRequest) -> Completion:
        prompt = request.prompt
        if prompt is None:
            raise InvalidRequestError(f"{self.name}: the request has no user message")
        # refine's critique of a draft: the calculator stands by its own arithmetic.
        text = NO_ISSUES if NO_ISSUES in prompt else self._solve(_task_of(prompt))
        words = sum(len(message.content.split()) for message in request.messages)
        return Completion(
            text,
            request.model or self.model,
            usage=Usage(prompt_tokens=words, completion_tokens=len(text.split())),
            provider=self.name,
        )

    def _solve(self, task: str) -> str:
        expression = find_expression(task)
        if expression is None:
            raise InvalidRequestError(
                f"{self.name}: no arithmetic expression in the prompt (try: What is 2 + 3 * 4?)"
            )
        try:
            result = format_number(evaluate(expression), self.precision)
        except NotArithmetic as error:
            raise InvalidRequestError(f"{self.name}: {error}") from None
        return f"{expression} = {result}\nFinal answer: {result}"


def _task_of(prompt: str) -> str:
    """The task itself, when the engine quotes it inside a larger prompt (refine's revision)."""
    if prompt.startswith("Task:\n"):
        return prompt.removeprefix("Task:\n").split("\n\n", 1)[0]
    return prompt

"""From an OpenAI chat request to the pipeline's `TaskSpec`, refusing what cannot be honoured.

**The model name** selects provider, model and, optionally, strategy:

    model    := [STRATEGY ["-" N] "::"] target
    target   := PROVIDER "/" MODEL | PROVIDER | MODEL

- `STRATEGY` is one of `agent_core.strategies()`; `N` sets `samples` (self_consistency) or
  `rounds` (refine), and is refused for the strategies that take neither.
- `PROVIDER` is a configured provider name or alias; the text after its first `/` is the model,
  which may hold more slashes (`openrouter/meta-llama/llama-3-70b`).
- Anything else is a model of the default provider, as it is (`gpt-4.1-mini`,
  `Qwen/Qwen2.5-7B-Instruct` for a vLLM default, `ft:gpt-4o-mini:org::abc123`).

A strategy prefix is recognised only when the text before the first `::` is a single word of
letters and underscores with an optional `-N` (`[A-Za-z][A-Za-z_]*(-[0-9]+)?`): provider model
ids never look like that (OpenAI's fine-tunes, the one family with a `::`, start `ft:` and hold
colons before it), so a real model name is never taken for a strategy. Such a word that is not a
strategy is a 400, not a model.

**The extension field** (`reasoning_agent`) wins over the model-name form for what both set.

**Messages**: system (and developer) messages become the task's system message; the last
message must be the user's, and is the prompt; earlier turns are put before it as a transcript.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import agent_core
from agent_core import LIMITS
from api.errors import APIError
from api.tasks import TaskRejected, TaskSpec
from api.tasks.spec import PanelSeat
from api.v1.schemas import ChatCompletionRequest, ChatMessage, ReasoningAgentOptions
from providers import ProviderRegistry
from providers.task_options import TaskOptions, describe_range

__all__ = [
    "ModelChoice",
    "V1Request",
    "conversation",
    "is_provider",
    "parse_model",
    "to_spec",
]

_STRATEGY_PREFIX: Final = re.compile(r"(?P<strategy>[A-Za-z][A-Za-z_]*)(?:-(?P<count>[0-9]+))?")
_COUNTED: Final = {"self_consistency": "samples", "refine": "rounds"}

TRANSCRIPT_INTRO = "The conversation so far, for context:"
TRANSCRIPT_ASK = "Reply to the user's latest message:"


def bad_request(code: str, message: str) -> APIError:
    return APIError(400, message, type="invalid_request_error", code=code)


def invalid_field(message: str) -> APIError:
    """A 422 like the request model's own (`validation_error`)."""
    return APIError(422, message, type="invalid_request_error", code="validation_error")


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """What a `model` string asked for; None: not said (the configured default applies)."""

    provider: str | None
    model: str | None
    strategy: str | None = None
    samples: int | None = None
    rounds: int | None = None


def is_provider(registry: ProviderRegistry, name: str) -> bool:
    try:
        registry.resolve(name)
    except agent_core.InvalidRequestError:
        return False
    return True


def parse_model(name: str, registry: ProviderRegistry) -> ModelChoice:
    """Reads `model` (grammar in the module's doc).

    :raises APIError: 400 `unknown_strategy` or `invalid_model`.
    """
    strategy: str | None = None
    counts: dict[str, int] = {}
    head, separator, rest = name.partition("::")
    prefix = _STRATEGY_PREFIX.fullmatch(head) if separator else None
    if prefix is not None:
        strategy = prefix["strategy"]
        known = agent_core.strategies()
        if strategy not in known:
            raise bad_request(
                "unknown_strategy",
                f"model {name!r}: unknown strategy {strategy!r} before '::'; available "
                f"strategies: {', '.join(known)}",
            )
        if prefix["count"] is not None:
            counts = _count(name, strategy, int(prefix["count"]))
        if not rest:
            raise bad_request(
                "invalid_model",
                f"model {name!r}: no model after '::'; e.g. {head}::gpt-4.1-mini, "
                f"{head}::openai/gpt-4.1-mini or {head}::echo",
            )
        name = rest
    provider, slash, model = name.partition("/")
    if slash and is_provider(registry, provider):
        if not model:
            raise bad_request(
                "invalid_model",
                f"model {name!r}: no model after '{provider}/'; send {provider!r} alone for "
                "its default model",
            )
        return ModelChoice(provider, model, strategy, **counts)
    if is_provider(registry, name):
        return ModelChoice(name, None, strategy, **counts)
    return ModelChoice(None, name, strategy, **counts)


def _count(name: str, strategy: str, count: int) -> dict[str, int]:
    option = _COUNTED.get(strategy)
    if option is None:
        counted = ", ".join(f"{s} ({o})" for s, o in _COUNTED.items())
        raise bad_request(
            "invalid_model",
            f"model {name!r}: {strategy} takes no -N; -N sets the {counted}",
        )
    limit = LIMITS.samples if option == "samples" else LIMITS.rounds
    if not limit.minimum <= count <= limit.maximum:
        raise bad_request(
            "invalid_model",
            f"model {name!r}: -{count} sets {option}, which must be {describe_range(limit)}",
        )
    return {option: count}


# --- messages ---------------------------------------------------------------------------------


def _text(message: ChatMessage, index: int) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for number, part in enumerate(content):
        where = f"messages[{index}].content[{number}]"
        if part.type == "text" and part.text is not None:
            texts.append(part.text)
        elif part.type == "refusal" and part.refusal is not None:
            texts.append(part.refusal)
        elif part.type in ("text", "refusal"):
            raise invalid_field(f"body.{where}.{part.type}: a {part.type} part needs its text")
        else:
            raise bad_request(
                "unsupported_content",
                f"{where}: {part.type!r} content is not supported; this service sends text to "
                "its providers, so send text parts (or a string) only",
            )
    return "\n".join(texts)


def _turn(message: ChatMessage, text: str) -> str | None:
    """One earlier turn of the transcript; None for a turn with nothing to show."""
    if message.role == "user":
        who = f"User ({message.name})" if message.name else "User"
        return f"{who}: {text}" if text else None
    if message.role == "assistant":
        lines = [f"Assistant: {text}"] if text else []
        for call in message.tool_calls or ():
            function = call.get("function")
            if isinstance(function, dict):
                arguments = function.get("arguments")
                shown = arguments if isinstance(arguments, str) else json.dumps(arguments)
                lines.append(f"Assistant called tool {function.get('name')!s}({shown})")
        return "\n".join(lines) or None
    who = f"{message.role.capitalize()} result" + (f" ({message.name})" if message.name else "")
    return f"{who}: {text}"


def conversation(messages: Sequence[ChatMessage]) -> tuple[str | None, str]:
    """(system, prompt) of a chat: system and developer messages joined; the last message,
    which must be the user's, as the prompt, after a transcript of the earlier turns.

    :raises APIError: 400 `invalid_messages`, 400 `unsupported_content`, 422 for a blank prompt.
    """
    systems: list[str] = []
    turns: list[tuple[int, ChatMessage, str]] = []
    for index, message in enumerate(messages):
        text = _text(message, index)
        if message.role in ("system", "developer"):
            if text.strip():
                systems.append(text)
        else:
            turns.append((index, message, text))
    if not turns or turns[-1][1].role != "user":
        raise bad_request(
            "invalid_messages",
            "messages: the last message (system messages aside) must be the user's: a task "
            "answers the user's latest message",
        )
    index, _, prompt = turns[-1]
    if not prompt.strip():
        raise invalid_field(f"body.messages[{index}].content: must not be blank")
    earlier = [shown for _, message, text in turns[:-1] if (shown := _turn(message, text))]
    if earlier:
        prompt = "\n\n".join([TRANSCRIPT_INTRO, *earlier, TRANSCRIPT_ASK, prompt])
    return ("\n\n".join(systems) or None), prompt


# --- the whole request ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class V1Request:
    """A chat request resolved: the spec to run and how to answer it."""

    spec: TaskSpec
    stream: bool
    include_usage: bool
    trace: bool
    progress: bool


def _refuse_unsupported(body: ChatCompletionRequest) -> None:
    """What a client would rely on and this service cannot give: refused, never ignored."""
    if body.n is not None and body.n > 1:
        raise bad_request(
            "unsupported_parameter",
            f"n: {body.n} choices asked, but one task gives one answer (n must be 1); to sample "
            "several answers and keep the majority, use the self_consistency strategy",
        )
    if body.response_format is not None and body.response_format.type != "text":
        raise bad_request(
            "unsupported_parameter",
            f"response_format: {body.response_format.type!r} is not supported (only 'text'): "
            "the strategies cannot guarantee the format of the answer",
        )
    for name, choice in (("tool_choice", body.tool_choice), ("function_call", body.function_call)):
        if choice is not None and choice not in ("none", "auto"):
            raise bad_request(
                "unsupported_parameter",
                f"{name}: this service answers in text and never calls tools, so it cannot "
                f"honour a required or named tool; send {name} 'auto' or 'none' (tools are "
                "then ignored)",
            )


def to_spec(
    body: ChatCompletionRequest, registry: ProviderRegistry, max_prompt_chars: int
) -> V1Request:
    """The request as the pipeline's spec (source `v1`).

    :raises APIError: 400 (unsupported parameter or content, bad model name, unknown provider
        or strategy, messages not ending with the user's), 422 (blank or over-long prompt).
    """
    _refuse_unsupported(body)
    choice = parse_model(body.model, registry)
    system, prompt = conversation(body.messages)
    for field, text in (("messages", prompt), ("system messages", system)):
        if text is not None and len(text) > max_prompt_chars:
            raise invalid_field(
                f"body.messages: the {field} come to more than {max_prompt_chars} characters "
                "(MAX_PROMPT_CHARS)"
            )
    extension = body.reasoning_agent or ReasoningAgentOptions()
    # Precedence, lowest first: the model-name form, the OpenAI body, the extension field.
    implied = {
        "samples": choice.samples,
        "rounds": choice.rounds,
        "temperature": body.temperature,
        "max_tokens": (
            body.max_completion_tokens
            if body.max_completion_tokens is not None
            else body.max_tokens
        ),
    }
    options = TaskOptions.model_validate(
        {**{k: v for k, v in implied.items() if v is not None}, **extension.given()}
    )
    try:
        spec = TaskSpec.resolve(
            registry,
            prompt=prompt,
            system=system,
            provider=choice.provider,
            model=choice.model,
            strategy=extension.strategy or choice.strategy,
            options=options,
            panel=[PanelSeat(s.provider, s.model, s.samples) for s in extension.providers or ()],
            source="v1",
        )
    except TaskRejected as error:
        raise bad_request(error.code, error.message) from None
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    if stop:
        # agent_core.Task takes the stop sequences for every call; kept in the record's params.
        spec = dataclasses.replace(
            spec,
            options={**spec.options, "stop": stop},
            given={**spec.given, "stop": stop},
        )
    return V1Request(
        spec=spec,
        stream=bool(body.stream),
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
        trace=extension.trace,
        progress=extension.progress,
    )

"""The `openai` provider (the default): OpenAI's Chat Completions API.

Transport `lean` (default) speaks the wire format through one aiohttp session; transport
`sdk` uses the official `openai.AsyncOpenAI` client, imported only when chosen. Both build the
same request body and turn the answer into the same `Completion`s; tests hold them to it.
Streams read `chat.completion.chunk` events into text deltas and one final `Completion`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing
from types import ModuleType
from typing import Any, ClassVar

from agent_core import Capabilities, Completion, CompletionRequest, InvalidRequestError, Usage
from providers.hookspecs import RegisterProvider, hookimpl
from providers.provider_config import MultipleSamples, ProviderConfig
from providers.transport.base import UpstreamProvider, WholeAnswer
from providers.transport.errors import (
    NOT_JSON,
    ended_early_error,
    error_for_stream_event,
    malformed_error,
    upstream_status,
)

log = logging.getLogger("providers.openai")

# A 4xx that may be the upstream refusing `n` (OpenAI's "unsupported_value", Groq's "must be
# at most 1", llama.cpp's "only one completion choice" ...). The wording varies too much to
# match, so a single call settles it: if it succeeds, `n` was the problem.
N_REFUSAL_STATUSES = frozenset({400, 422})

# OpenAI's finish reasons in agent_core's words (others pass through unchanged).
FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


def normalise_finish_reason(reason: str | None) -> str:
    return FINISH_REASONS.get(reason, reason) if reason else "stop"


def split_usage(prompt_tokens: int, completion_tokens: int, n: int) -> list[Usage]:
    """One call's usage shared over its `n` samples, so the samples add up to the call."""
    usages = []
    for i in range(n):
        first = i == 0
        usages.append(
            Usage(
                prompt_tokens // n + (prompt_tokens % n if first else 0),
                completion_tokens // n + (completion_tokens % n if first else 0),
            )
        )
    return usages


def chat_body(
    request: CompletionRequest, model: str, n: int = 1, max_tokens_field: str = "max_tokens"
) -> dict[str, Any]:
    """The Chat Completions request body; `request.extra` is merged in last."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
    }
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body[max_tokens_field] = request.max_tokens
    if request.stop:
        body["stop"] = request.stop
    if n > 1:
        body["n"] = n
    body.update(request.extra)
    return body


MISSING_FIELDS = "not a chat completion: fields missing or of the wrong type"
NOT_A_CHUNK = "not a chat completion chunk: fields missing or of the wrong type"


def stream_fields() -> dict[str, Any]:
    """What turns a chat request into a stream; the usage comes in a last chunk, from servers
    that know `stream_options` (the others send none: the usage is then 0/0)."""
    return {"stream": True, "stream_options": {"include_usage": True}}


class ChatStream:
    """Reads a stream's `chat.completion.chunk` events (decoded JSON, from either transport)
    into text deltas, then the final Completion."""

    def __init__(self, provider: str, model: str, secrets: Iterable[str | None] = ()) -> None:
        self.provider = provider
        self.model = model
        self.secrets = tuple(secrets)
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.usage = Usage()

    def feed(self, chunk: Any) -> str | None:
        """The text delta `chunk` carries (None when it carries none: the role, the finish
        reason, the usage)."""
        if isinstance(chunk, dict) and chunk.get("error") is not None:
            raise error_for_stream_event(self.provider, chunk, secrets=self.secrets)
        text = None
        try:
            self.model = str(chunk.get("model") or self.model)
            usage = chunk.get("usage")
            if usage:
                self.usage = Usage(
                    int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
                )
            for choice in chunk.get("choices") or ():
                if choice.get("index", 0) != 0:  # only one choice is asked for
                    continue
                delta = choice.get("delta") or {}
                text = delta.get("content") or delta.get("refusal") or text
                if choice.get("finish_reason"):
                    self.finish_reason = str(choice["finish_reason"])
        except (TypeError, AttributeError, ValueError):
            raise malformed_error(self.provider, NOT_A_CHUNK) from None
        if not text:
            return None
        text = str(text)
        self.parts.append(text)
        return text

    def completion(self) -> Completion:
        """The Completion of a stream that has ended; one that ended without a finish reason
        was cut off (`unavailable`)."""
        if self.finish_reason is None:
            raise ended_early_error(self.provider)
        return Completion(
            "".join(self.parts),
            self.model,
            finish_reason=normalise_finish_reason(self.finish_reason),
            usage=self.usage,
            provider=self.provider,
        )


class OpenAIProvider(UpstreamProvider):
    """OpenAI (and, through `base_url`, any server with its chat API)."""

    name = "openai"

    KEY_ENV: ClassVar[str | None] = "OPENAI_API_KEY"
    BASE_URL_ENV: ClassVar[str | None] = "OPENAI_BASE_URL"
    DEFAULT_BASE_URL: ClassVar[str | None] = "https://api.openai.com/v1"
    DEFAULT_MODEL: ClassVar[str] = "gpt-4.1-mini"
    # The SDK's own variables for the organization and project headers.
    ORG_ENV: ClassVar[str | None] = "OPENAI_ORG_ID"
    PROJECT_ENV: ClassVar[str | None] = "OPENAI_PROJECT_ID"
    # OpenAI deprecated `max_tokens` (its reasoning models reject it); compatible servers
    # mostly know only `max_tokens`.
    MAX_TOKENS_FIELD: ClassVar[str] = "max_completion_tokens"
    # How a vote's samples are asked for when `multiple_samples` is not configured.
    DEFAULT_MULTIPLE_SAMPLES: ClassVar[MultipleSamples] = "auto"

    def __init__(self, *, name: str | None = None, config: ProviderConfig | None = None) -> None:
        super().__init__(name=name, config=config)
        configured = self.config.multiple_samples
        self.multiple_samples: MultipleSamples = (
            self.DEFAULT_MULTIPLE_SAMPLES if configured is None else configured
        )
        # The driver batches a vote's samples only while this says so.
        self.capabilities = Capabilities(
            streaming=True, multiple_samples=self.multiple_samples is not False
        )

    def _single_calls_from_now_on(self, why: str) -> None:
        """`auto` learnt that this upstream does not honour `n`: one call per sample from now
        on, for this provider instance (no second failed attempt per task)."""
        if self.capabilities.multiple_samples:
            log.warning("%s: %s; asking for one sample per call from now on", self.name, why)
            self.capabilities = Capabilities(streaming=True, multiple_samples=False)

    @property
    def organization(self) -> str | None:
        return self.config.organization or (os.environ.get(self.ORG_ENV) if self.ORG_ENV else None)

    @property
    def project(self) -> str | None:
        project = self.config.options.get("project")
        if project is None and self.PROJECT_ENV:
            project = os.environ.get(self.PROJECT_ENV)
        return str(project) if project else None

    def lean_headers(self) -> dict[str, str]:
        headers = {}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        if self.organization:
            headers["openai-organization"] = self.organization
        if self.project:
            headers["openai-project"] = self.project
        return headers

    def sdk_module(self) -> ModuleType:
        import openai

        return openai

    def make_sdk_client(self, sdk: ModuleType) -> Any:
        return sdk.AsyncOpenAI(
            # Always explicit: left as None, the SDK would read OPENAI_API_KEY and send
            # OpenAI's key to whatever server `base_url` names.
            api_key=self._api_key or "unused",
            base_url=self.base_url,
            organization=self.organization,
            project=self.project,
            timeout=self.config.timeout,
            max_retries=0,  # our retry loop: one deadline across attempts
        )

    async def complete(self, request: CompletionRequest) -> Completion:
        return (await self._complete(request, 1))[0]

    async def complete_many(self, request: CompletionRequest, n: int) -> list[Completion]:
        """Up to `n` samples from one call with OpenAI's `n` parameter.

        Fewer may come back (servers that ignore `n` answer one choice): the driver asks for
        the missing ones with single calls. With `multiple_samples = "auto"`, an upstream that
        refuses `n` or ignores it is asked one sample per call from then on.
        """
        if n < 1:
            return []
        if not self.capabilities.multiple_samples:
            return await super().complete_many(request, n)
        try:
            completions = await self._complete(request, n)
        except InvalidRequestError as error:
            if self.multiple_samples != "auto" or upstream_status(error) not in N_REFUSAL_STATUSES:
                raise
            # The request may be wrong for another reason: one single call tells. Its error,
            # if it fails too, is the task's; its answer, if it succeeds, is the first sample.
            first = await self.complete(request)
            self._single_calls_from_now_on(
                f"the upstream refused n={n} (HTTP {upstream_status(error)})"
            )
            note = f"single call: the upstream refused n={n}"
            return [_with_note(first, note)]
        if len(completions) == 1 and n > 1 and self.multiple_samples == "auto":
            self._single_calls_from_now_on(f"the upstream ignored n={n} (one choice came back)")
        return completions

    async def stream(self, request: CompletionRequest) -> AsyncIterator[str | Completion]:
        """Streams one request: its text deltas as they come, then the Completion.

        A server that ignores `stream_options` gives usage 0/0; one that ignores `"stream":
        true` and answers one plain chat.completion gives its text as one delta."""
        model = self.model_for(request.model)
        body = chat_body(request, model, 1, self.MAX_TOKENS_FIELD)
        for key in stream_fields():  # a request's extra options do not turn streaming off
            body.pop(key, None)
        chunks = ChatStream(self.name, model, self.secrets)
        events = self.stream_events(
            "/chat/completions",
            {**body, **stream_fields()},
            lambda client: client.chat.completions.create(**sdk_arguments(body), **stream_fields()),
        )
        async with aclosing(events):
            async for event in events:
                if isinstance(event, WholeAnswer):
                    completion = self.from_json(event.data, model)[0]
                    if completion.text:
                        yield completion.text
                    yield completion
                    return
                delta = chunks.feed(event)
                if delta:
                    yield delta
        yield chunks.completion()

    async def _complete(self, request: CompletionRequest, n: int) -> list[Completion]:
        """One call; at most `n` completions (an upstream may answer fewer choices)."""
        model = self.model_for(request.model)
        body = chat_body(request, model, n, self.MAX_TOKENS_FIELD)
        if self.transport == "sdk":
            response = await self.call_sdk(
                lambda client: client.chat.completions.create(**sdk_arguments(body))
            )
            completions = self.from_sdk(response, model)
        else:
            completions = self.from_json(await self.post("/chat/completions", body), model)
        return completions[:n]

    def from_json(self, data: Any, model: str) -> list[Completion]:
        """Completions from a decoded Chat Completions answer (the lean transport)."""
        try:
            choices = data["choices"]
            if not choices:
                raise malformed_error(self.name, MISSING_FIELDS)
            usage = data.get("usage") or {}
            texts = []
            for choice in choices:
                message = choice["message"]
                text = message.get("content") or message.get("refusal") or ""
                texts.append((str(text), normalise_finish_reason(choice.get("finish_reason"))))
            reported = data.get("model") or model
            prompt = int(usage.get("prompt_tokens") or 0)
            completion = int(usage.get("completion_tokens") or 0)
        except (KeyError, TypeError, AttributeError, ValueError):
            raise malformed_error(self.name, MISSING_FIELDS) from None
        return self.completions(texts, str(reported), prompt, completion)

    def from_sdk(self, response: Any, model: str) -> list[Completion]:
        """Completions from the SDK's `ChatCompletion` (which may be a bare string when the
        upstream sent a non-JSON content type, or lack fields it did not send)."""
        if isinstance(response, str):
            raise malformed_error(self.name, NOT_JSON)
        try:
            choices = response.choices
            if not choices:
                raise malformed_error(self.name, MISSING_FIELDS)
            texts = []
            for choice in choices:
                message = choice.message
                text = message.content or getattr(message, "refusal", None) or ""
                texts.append((str(text), normalise_finish_reason(choice.finish_reason)))
            reported = response.model or model
            usage = response.usage
            prompt = int(usage.prompt_tokens or 0) if usage is not None else 0
            completion = int(usage.completion_tokens or 0) if usage is not None else 0
        except (AttributeError, TypeError, ValueError):
            raise malformed_error(self.name, MISSING_FIELDS) from None
        return self.completions(texts, str(reported), prompt, completion)

    def completions(
        self, texts: list[tuple[str, str]], model: str, prompt: int, completion: int
    ) -> list[Completion]:
        usages = split_usage(prompt, completion, len(texts))
        return [
            Completion(text, model, finish_reason=finish, usage=usage, provider=self.name)
            for (text, finish), usage in zip(texts, usages, strict=True)
        ]


def _with_note(completion: Completion, note: str) -> Completion:
    return Completion(
        completion.text,
        completion.model,
        finish_reason=completion.finish_reason,
        usage=completion.usage,
        provider=completion.provider,
        note=note,
    )


def sdk_arguments(body: dict[str, Any]) -> dict[str, Any]:
    """`create()` keyword arguments for the same wire body: the required parameters by name,
    everything else through `extra_body` (robust to the SDK renaming optional parameters)."""
    known = {"model", "messages"}
    arguments = {k: v for k, v in body.items() if k in known}
    extra = {k: v for k, v in body.items() if k not in known}
    if extra:
        arguments["extra_body"] = extra
    return arguments


@hookimpl
def register_providers(register: RegisterProvider) -> None:
    register(OpenAIProvider, name="openai")

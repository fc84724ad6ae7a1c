"""The `anthropic` provider: Anthropic's Messages API.

Transport `lean` (default) speaks the wire format through one aiohttp session; transport
`sdk` uses the official `anthropic.AsyncAnthropic` client, imported only when chosen. System
messages go to the top-level `system` field, as the API requires. Streams read the Messages
event stream into the same text deltas and final `Completion` as OpenAI's chunks give.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing
from types import ModuleType
from typing import Any, ClassVar

from agent_core import Capabilities, Completion, CompletionRequest, Usage
from providers.hookspecs import RegisterProvider, hookimpl
from providers.transport.base import UpstreamProvider, WholeAnswer
from providers.transport.errors import (
    NOT_JSON,
    ended_early_error,
    error_for_stream_event,
    malformed_error,
)

# The Messages API version the lean transport speaks (and parses).
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024  # the API requires max_tokens

# Anthropic's stop reasons in agent_core's words (others pass through unchanged).
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def normalise_stop_reason(reason: str | None) -> str:
    return STOP_REASONS.get(reason, reason) if reason else "stop"


def messages_body(
    request: CompletionRequest, model: str, send_temperature: bool = False
) -> dict[str, Any]:
    """The Messages request body; `request.extra` is merged in last.

    The current Messages API has no `temperature` (the official SDK dropped the parameter,
    and the API rejects fields it does not know), so a request's temperature is sent only
    when the `send_temperature` option asks for it (older API versions, compatible proxies).
    """
    system = [m.content for m in request.messages if m.role == "system"]
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS,
        "messages": [
            {"role": m.role, "content": m.content} for m in request.messages if m.role != "system"
        ],
    }
    if system:
        body["system"] = "\n\n".join(system)
    if send_temperature and request.temperature is not None:
        body["temperature"] = request.temperature
    if request.stop:
        body["stop_sequences"] = request.stop
    body.update(request.extra)
    return body


MISSING_FIELDS = "not a message: fields missing or of the wrong type"
NOT_AN_EVENT = "not a message stream event: fields missing or of the wrong type"


class MessageStream:
    """Reads a Messages event stream (decoded JSON, from either transport) into text deltas,
    then the final Completion: the input usage from `message_start`, the stop reason and the
    output usage (a running total) from `message_delta`."""

    def __init__(self, provider: str, model: str, secrets: Iterable[str | None] = ()) -> None:
        self.provider = provider
        self.model = model
        self.secrets = tuple(secrets)
        self.parts: list[str] = []
        self.stop_reason: str | None = None
        self.stopped = False
        self.input_tokens = 0
        self.output_tokens = 0

    def feed(self, event: Any) -> str | None:
        """The text delta `event` carries (None for the others)."""
        text = None
        try:
            kind = event.get("type")
            if kind == "content_block_delta":
                delta = event["delta"]
                if delta.get("type") == "text_delta":  # not thinking or tool input
                    text = delta["text"]
            elif kind == "content_block_start":
                block = event["content_block"]
                if block.get("type") == "text":
                    text = block.get("text")
            elif kind == "message_start":
                message = event["message"]
                self.model = str(message.get("model") or self.model)
                self._usage(message.get("usage"))
            elif kind == "message_delta":
                self.stop_reason = event["delta"].get("stop_reason") or self.stop_reason
                self._usage(event.get("usage"))
            elif kind == "message_stop":
                self.stopped = True
            elif kind == "error":
                raise error_for_stream_event(self.provider, event, secrets=self.secrets)
            # `ping`, `content_block_stop` and event types added later carry nothing to read.
        except (KeyError, TypeError, AttributeError, ValueError):
            raise malformed_error(self.provider, NOT_AN_EVENT) from None
        if not text:
            return None
        text = str(text)
        self.parts.append(text)
        return text

    def _usage(self, usage: Any) -> None:
        if not usage:
            return
        if usage.get("input_tokens") is not None:
            self.input_tokens = int(usage["input_tokens"])
        if usage.get("output_tokens") is not None:
            self.output_tokens = int(usage["output_tokens"])

    def completion(self) -> Completion:
        """The Completion of a stream that has ended; one that ended before its stop reason
        and `message_stop` was cut off (`unavailable`)."""
        if self.stop_reason is None and not self.stopped:
            raise ended_early_error(self.provider)
        return Completion(
            "".join(self.parts),
            self.model,
            finish_reason=normalise_stop_reason(self.stop_reason),
            usage=Usage(self.input_tokens, self.output_tokens),
            provider=self.provider,
        )


class AnthropicProvider(UpstreamProvider):
    name = "anthropic"
    capabilities = Capabilities(streaming=True)

    KEY_ENV: ClassVar[str | None] = "ANTHROPIC_API_KEY"
    BASE_URL_ENV: ClassVar[str | None] = "ANTHROPIC_BASE_URL"
    DEFAULT_BASE_URL: ClassVar[str | None] = "https://api.anthropic.com"
    DEFAULT_MODEL: ClassVar[str] = "claude-sonnet-4-6"

    def lean_headers(self) -> dict[str, str]:
        version = str(self.config.options.get("anthropic_version", ANTHROPIC_VERSION))
        return {"x-api-key": self._api_key or "", "anthropic-version": version}

    def sdk_module(self) -> ModuleType:
        import anthropic

        return anthropic

    def make_sdk_client(self, sdk: ModuleType) -> Any:
        return sdk.AsyncAnthropic(
            api_key=self._api_key,
            base_url=self.base_url,
            timeout=self.config.timeout,
            max_retries=0,  # our retry loop: one deadline across attempts
        )

    async def complete(self, request: CompletionRequest) -> Completion:
        model = self.model_for(request.model)
        body = messages_body(request, model, bool(self.config.options.get("send_temperature")))
        if self.transport == "sdk":
            response = await self.call_sdk(
                lambda client: client.messages.create(**sdk_arguments(body))
            )
            return self.from_sdk(response, model)
        return self.from_json(await self.post("/v1/messages", body), model)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[str | Completion]:
        """Streams one request (`"stream": true`): its text deltas as they come, then the
        Completion."""
        model = self.model_for(request.model)
        body = messages_body(request, model, bool(self.config.options.get("send_temperature")))
        body.pop("stream", None)  # a request's extra options do not turn streaming off
        events = self.stream_events(
            "/v1/messages",
            {**body, "stream": True},
            lambda client: client.messages.create(**sdk_arguments(body), stream=True),
        )
        message = MessageStream(self.name, model, self.secrets)
        async with aclosing(events):
            async for event in events:
                if isinstance(event, WholeAnswer):  # a proxy that does not stream
                    completion = self.from_json(event.data, model)
                    if completion.text:
                        yield completion.text
                    yield completion
                    return
                delta = message.feed(event)
                if delta:
                    yield delta
        yield message.completion()

    def from_json(self, data: Any, model: str) -> Completion:
        """The Completion from a decoded Messages answer (the lean transport)."""
        try:
            blocks = data["content"]
            if not isinstance(blocks, list):
                raise malformed_error(self.name, MISSING_FIELDS)
            text = "".join(b["text"] for b in blocks if b.get("type") == "text")
            usage = data["usage"]
            return Completion(
                text,
                str(data.get("model") or model),
                finish_reason=normalise_stop_reason(data.get("stop_reason")),
                usage=Usage(int(usage["input_tokens"]), int(usage["output_tokens"])),
                provider=self.name,
            )
        except (KeyError, TypeError, AttributeError, ValueError):
            raise malformed_error(self.name, MISSING_FIELDS) from None

    def from_sdk(self, response: Any, model: str) -> Completion:
        """The Completion from the SDK's `Message` (which may be a bare string when the
        upstream sent a non-JSON content type, or lack fields it did not send)."""
        if isinstance(response, str):
            raise malformed_error(self.name, NOT_JSON)
        try:
            blocks = response.content
            if not isinstance(blocks, list):
                raise malformed_error(self.name, MISSING_FIELDS)
            text = "".join(b.text for b in blocks if b.type == "text")
            usage = response.usage
            return Completion(
                text,
                str(response.model or model),
                finish_reason=normalise_stop_reason(response.stop_reason),
                usage=Usage(int(usage.input_tokens), int(usage.output_tokens)),
                provider=self.name,
            )
        except (AttributeError, TypeError, ValueError):
            raise malformed_error(self.name, MISSING_FIELDS) from None


def sdk_arguments(body: dict[str, Any]) -> dict[str, Any]:
    """`messages.create()` keyword arguments for the same wire body: the required parameters
    by name, everything else through `extra_body` (robust to the SDK renaming or dropping
    optional parameters, as it dropped `temperature`)."""
    known = {"model", "max_tokens", "messages"}
    arguments = {k: v for k, v in body.items() if k in known}
    extra = {k: v for k, v in body.items() if k not in known}
    if extra:
        arguments["extra_body"] = extra
    return arguments


@hookimpl
def register_providers(register: RegisterProvider) -> None:
    register(AnthropicProvider, name="anthropic", aliases=["claude"])

"""What the built-in HTTP providers share: credentials from the environment, the retry
policy, one client per provider instance for either transport, and streams read from either
as the same decoded events."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar, TypeVar

import orjson

from agent_core import AgentError, NotConfiguredError, Provider
from providers.builtin_options import UpstreamOptions, read_options
from providers.provider_config import ProviderConfig
from providers.transport.errors import (
    NOT_A_STREAM,
    NOT_JSON,
    STREAM_NOT_JSON,
    malformed_error,
    safe_url,
)
from providers.transport.lean import LeanClient
from providers.transport.retry import RetryPolicy, StreamDeadline, call_with_retries
from providers.transport.sdk import error_from_sdk, stream_error_from_sdk

T = TypeVar("T")


@dataclass(frozen=True)
class WholeAnswer:
    """What an upstream asked to stream sent instead: one plain JSON answer (some
    OpenAI-compatible servers ignore `"stream": true`), decoded."""

    data: Any


def streamed_as(provider: str, content_type: str | None) -> str:
    """How to read a 2xx answer to a stream request: "json" (one plain answer) or "events".
    Anything else but an HTML page (a proxy's) is read as server-sent events, as the SDKs
    read it."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return "json"
    if media == "text/html":
        raise malformed_error(provider, NOT_A_STREAM)
    return "events"


class UpstreamProvider(Provider):
    """Base of the built-in providers that call an HTTP upstream.

    Subclasses set the class attributes below and implement `complete`, using `post` for the
    lean transport and `call_sdk` for the official SDK.
    """

    KEY_ENV: ClassVar[str | None]  # default variable holding the key; None: no key needed
    BASE_URL_ENV: ClassVar[str | None]  # the SDK's own base-URL variable, if any
    DEFAULT_BASE_URL: ClassVar[str | None]  # None: the configuration must give one
    DEFAULT_MODEL: ClassVar[str]

    def __init__(self, *, name: str | None = None, config: ProviderConfig | None = None) -> None:
        config = config or ProviderConfig(type=type(self).name)
        # An instance name shadows the class one: several instances of one type coexist
        # (`[providers.ollama]` and `[providers.groq]`, both openai_compatible).
        self.name = name or type(self).name
        self.config = config
        # Read once, at construction: the registry builds each provider once per process.
        key_env = config.api_key_env or self.KEY_ENV
        self._api_key = os.environ.get(key_env) if key_env else None
        if key_env and not self._api_key:
            raise NotConfiguredError(f"{key_env} is not set")
        base_url = (
            config.base_url
            or (os.environ.get(self.BASE_URL_ENV) if self.BASE_URL_ENV else None)
            or self.DEFAULT_BASE_URL
        )
        if not base_url:
            raise NotConfiguredError(
                f"provider {self.name!r} needs a base_url (the upstream's API address)"
            )
        if not base_url.startswith(("http://", "https://")):
            raise NotConfiguredError(
                f"provider {self.name!r}: base_url must start with http:// or https://, "
                f"got {safe_url(base_url)!r}"
            )
        self.base_url = base_url.rstrip("/")
        self.default_model = config.model or self.DEFAULT_MODEL
        self.transport = config.transport
        self.retry_policy = RetryPolicy.from_config(config)
        self._lean: LeanClient | None = None
        if self.transport == "lean":
            self._lean = LeanClient(
                provider=self.name,
                base_url=self.base_url,
                headers=self.lean_headers(),
                timeout=config.timeout,
                secrets=[self._api_key],
                max_connections=read_options(UpstreamOptions, config.options).max_connections,
            )
        self._sdk_client: Any = None
        self._sdk_loop: asyncio.AbstractEventLoop | None = None
        self.sdk_clients_created = 0
        if self.transport == "sdk":
            # Imported now, once per process, rather than inside the first call's deadline
            # (the SDKs take over a second to import). Never imported for transport "lean".
            self.sdk_module()

    # -- subclass hooks -----------------------------------------------------------------------

    def lean_headers(self) -> dict[str, str]:
        """Headers of every lean request (authentication, API version)."""
        raise NotImplementedError

    def sdk_module(self) -> ModuleType:
        """The official SDK module, imported lazily (only for transport = "sdk")."""
        raise NotImplementedError

    def make_sdk_client(self, sdk: ModuleType) -> Any:
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------------------

    @property
    def secrets(self) -> tuple[str | None, ...]:
        return (self._api_key,)

    def model_for(self, requested: str | None) -> str:
        return requested or self.default_model

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        """The lean transport: POST with retries; the decoded JSON answer."""
        lean = self._lean
        assert lean is not None, "post() is for transport = 'lean'"
        return await call_with_retries(
            lambda: lean.post_json(path, body), self.retry_policy, provider=self.name
        )

    def _client_for_this_loop(self) -> Any:
        # The SDKs' connection pools belong to the loop that opened them, as aiohttp's do.
        loop = asyncio.get_running_loop()
        if self._sdk_client is None or self._sdk_loop is not loop:
            self._sdk_client = self.make_sdk_client(self.sdk_module())
            self._sdk_loop = loop
            self.sdk_clients_created += 1
        return self._sdk_client

    async def call_sdk(
        self, call: Callable[[Any], Awaitable[T]], *, started: float | None = None
    ) -> T:
        """The SDK transport: `call(client)`, errors mapped, with the same retries and deadline
        as the lean transport (the SDK's own retry loop is off: it knows no deadline).
        `started`: when the call's deadline began (a stream's, before it opens)."""
        client = self._client_for_this_loop()

        async def attempt() -> T:
            try:
                return await call(client)
            except Exception as exc:
                raise self._sdk_error(error_from_sdk, exc) from None

        return await call_with_retries(
            attempt, self.retry_policy, provider=self.name, started=started
        )

    # -- streams ------------------------------------------------------------------------------

    def stream_events(
        self,
        path: str,
        body: dict[str, Any],
        sdk_open: Callable[[Any], Awaitable[Any]],
    ) -> AsyncGenerator[Any, None]:
        """The upstream's streamed answer to `body`: each event's data, decoded JSON (the lean
        transport parses the events at `path`; the SDK's `sdk_open(client)` stream yields
        them as models, dumped back to their wire form), or one `WholeAnswer`.

        So one reader per wire format serves both transports, as `error_for_status` does for
        errors. Opening the stream (until its status is known) is retried like any call; after
        that nothing is retried, and every read is held to the same deadline. The response is
        closed when the iteration ends, however it ends (exhausted, an error, `aclose()`, a
        cancelled consumer), so the upstream sees the connection close.
        """
        if self.transport == "sdk":
            return self._sdk_stream(sdk_open)
        return self._lean_stream(path, body)

    async def _lean_stream(self, path: str, body: dict[str, Any]) -> AsyncGenerator[Any, None]:
        lean = self._lean
        assert lean is not None, "a lean stream is for transport = 'lean'"
        deadline = StreamDeadline(self.retry_policy, provider=self.name)
        response = await call_with_retries(
            lambda: lean.open_stream(path, body),
            self.retry_policy,
            provider=self.name,
            started=deadline.started,
        )
        try:
            if streamed_as(self.name, response.headers.get("content-type")) == "json":
                yield WholeAnswer(self._decode(await lean.read_body(response, deadline.wait)))
                return
            async with aclosing(lean.stream_data(response, deadline.wait)) as events:
                async for data in events:
                    yield self._decode(data, STREAM_NOT_JSON)
        finally:
            response.close()  # at once, no await: also right in a cancelled task

    async def _sdk_stream(
        self, sdk_open: Callable[[Any], Awaitable[Any]]
    ) -> AsyncGenerator[Any, None]:
        self._client_for_this_loop()  # as for `complete`, building it is not the call's time
        deadline = StreamDeadline(self.retry_policy, provider=self.name)
        stream = await self.call_sdk(sdk_open, started=deadline.started)
        try:
            if streamed_as(self.name, stream.response.headers.get("content-type")) == "json":
                raw = await self._sdk_read(deadline.wait(stream.response.aread()))
                yield WholeAnswer(self._decode(raw))
                return
            while True:
                try:
                    event = await self._sdk_read(deadline.wait(stream.__anext__()))
                except StopAsyncIteration:
                    return
                yield event.to_dict() if hasattr(event, "to_dict") else event
        finally:
            await stream.close()

    async def _sdk_read(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except (AgentError, StopAsyncIteration):
            raise
        except Exception as exc:
            raise self._sdk_error(stream_error_from_sdk, exc) from None

    def _sdk_error(self, mapping: Callable[..., AgentError], exc: BaseException) -> AgentError:
        """`exc` from the SDK as an agent_core error (`mapping`: for a call or a stream)."""
        return mapping(
            self.sdk_module(),
            exc,
            provider=self.name,
            base_url=self.base_url,
            timeout=self.config.timeout,
            secrets=self.secrets,
        )

    def _decode(self, data: bytes, what: str = NOT_JSON) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            raise malformed_error(self.name, what) from None

    async def aclose(self) -> None:
        if self._lean is not None:
            await self._lean.aclose()
        client, self._sdk_client = self._sdk_client, None
        if client is not None and self._sdk_loop is asyncio.get_running_loop():
            await client.close()
        self._sdk_loop = None

    @property
    def clients_open(self) -> bool:
        """Whether a live upstream client exists (before the first call and after aclose:
        no)."""
        if self._lean is not None and self._lean.session_open:
            return True
        return self._sdk_client is not None and not self._sdk_client.is_closed()

    @property
    def clients_created(self) -> int:
        """How many upstream clients this provider has built (one per event loop used)."""
        lean = self._lean.sessions_created if self._lean is not None else 0
        return lean + self.sdk_clients_created

"""What the built-in HTTP providers share: credentials from the environment, the retry
policy, and one client per provider instance for either transport."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any, ClassVar, TypeVar

from agent_core import NotConfiguredError, Provider
from providers.provider_config import ProviderConfig
from providers.transport.errors import safe_url
from providers.transport.lean import DEFAULT_MAX_CONNECTIONS, LeanClient
from providers.transport.retry import RetryPolicy, call_with_retries
from providers.transport.sdk import error_from_sdk

T = TypeVar("T")


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
                max_connections=int(config.options.get("max_connections", DEFAULT_MAX_CONNECTIONS)),
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

    async def call_sdk(self, call: Callable[[Any], Awaitable[T]]) -> T:
        """The SDK transport: `call(client)`, errors mapped, with the same retries and deadline
        as the lean transport (the SDK's own retry loop is off: it knows no deadline)."""
        client = self._client_for_this_loop()

        async def attempt() -> T:
            try:
                return await call(client)
            except Exception as exc:
                raise error_from_sdk(
                    self.sdk_module(),
                    exc,
                    provider=self.name,
                    base_url=self.base_url,
                    timeout=self.config.timeout,
                    secrets=self.secrets,
                ) from None

        return await call_with_retries(attempt, self.retry_policy, provider=self.name)

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

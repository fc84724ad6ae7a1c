"""The lean transport: one aiohttp session per provider instance, orjson for the bodies.

Measured against a local mock upstream, the official SDKs spend about 2-3 ms of client CPU
per call in their own Python layers; this client spends a small fraction of that
(bench/transport_cpu.py). It does only what a chat call needs: POST a JSON body, read the
answer (or its server-sent events), map failures onto agent_core's error kinds with
`providers.transport.errors`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import aiohttp
import orjson

from agent_core import AgentError
from providers.transport.errors import (
    CONNECTION_DROPPED,
    COULD_NOT_CONNECT,
    connection_error,
    error_for_status,
    malformed_error,
    timeout_error,
)

DEFAULT_MAX_CONNECTIONS = 1000  # as many as the SDKs' pools allow

# A stream is held to the call's deadline by its reader (`StreamDeadline`), not by the session's
# total timeout, which would cut any stream longer than one attempt's `timeout`.
STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None)
STREAM_HEADERS = {"accept": "text/event-stream"}

T = TypeVar("T")
Waiter = Callable[[Awaitable[Any]], Awaitable[Any]]


class LeanClient:
    """POSTs JSON to one upstream through a session created lazily, inside the running event
    loop, on first use and kept for the provider's lifetime.

    An aiohttp session belongs to the loop that created it. If a later call runs in another
    loop (a CLI that calls `asyncio.run` twice, a test per loop) the client opens a fresh
    session there; the old one cannot be closed from a foreign loop and is dropped.
    """

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        secrets: Iterable[str | None] = (),
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = {"content-type": "application/json", "accept": "application/json"}
        self._headers.update(headers)
        self._secrets = tuple(s for s in secrets if s)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sessions_created = 0  # observable: a client is created once, not per request

    def __repr__(self) -> str:  # never the headers: they carry the key
        return f"<LeanClient {self.provider} {self.base_url}>"

    def _session_for_this_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                # Every request runs inside `call_with_retries`, whose asyncio.timeout bounds
                # each attempt (and the call's deadline); a session timeout would arm a second
                # timer per request for nothing.
                timeout=aiohttp.ClientTimeout(total=None),
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections,
                    limit_per_host=self._max_connections,
                    ttl_dns_cache=300,
                ),
                raise_for_status=False,
            )
            self._loop = loop
            self.sessions_created += 1
        return self._session

    async def post_json(self, path: str, payload: Mapping[str, Any]) -> Any:
        """POSTs `payload` to `base_url + path` and returns the decoded JSON of a 2xx answer.

        Raises the agent_core error for every failure: HTTP errors by status, timeouts,
        refused and dropped connections, and bodies that are not JSON.
        """
        url = self.base_url + path
        session = self._session_for_this_loop()
        try:
            async with session.post(url, data=orjson.dumps(payload)) as response:
                status = response.status
                body = await response.read()
                if status >= 300:
                    raise error_for_status(
                        self.provider, status, response.headers, body, secrets=self._secrets
                    )
        except AgentError:
            raise
        except TimeoutError:  # aiohttp's timeouts subclass it
            raise timeout_error(self.provider, self.timeout) from None
        except aiohttp.ClientConnectorError:
            raise connection_error(self.provider, self.base_url, COULD_NOT_CONNECT) from None
        except aiohttp.ClientError:  # disconnected, payload cut short, reset ...
            raise connection_error(self.provider, self.base_url, CONNECTION_DROPPED) from None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise malformed_error(self.provider, f"HTTP {status} body is not JSON") from None

    async def open_stream(self, path: str, payload: Mapping[str, Any]) -> aiohttp.ClientResponse:
        """POSTs `payload` and returns the response of a 2xx answer, its body unread: the
        caller reads it (`stream_data`, `read_body`) and closes it. A failure before that
        raises the same errors as `post_json` (the caller bounds the wait)."""
        url = self.base_url + path
        session = self._session_for_this_loop()
        try:
            response = await session.post(
                url, data=orjson.dumps(payload), headers=STREAM_HEADERS, timeout=STREAM_TIMEOUT
            )
        except aiohttp.ClientConnectorError:
            raise connection_error(self.provider, self.base_url, COULD_NOT_CONNECT) from None
        except aiohttp.ClientError:
            raise connection_error(self.provider, self.base_url, CONNECTION_DROPPED) from None
        if response.status < 300:
            return response
        try:
            body = await self._read(response.read())
        finally:
            response.close()
        raise error_for_status(
            self.provider, response.status, response.headers, body, secrets=self._secrets
        )

    async def read_body(self, response: aiohttp.ClientResponse, wait: Waiter) -> bytes:
        """The whole body of an open response, each wait bounded by `wait`."""
        body: bytes = await self._read(wait(response.read()))
        return body

    async def stream_data(
        self, response: aiohttp.ClientResponse, wait: Waiter
    ) -> AsyncGenerator[bytes, None]:
        """The `data` of each server-sent event of `response`, until `data: [DONE]` or the end
        of the body (an event cut off by the end is dropped, as the SSE spec says).

        A hand-written parser rather than a dependency: chat streams use a few of the SSE rules
        (`data:` lines joined by newlines, a blank line ends an event, other fields and `:`
        comments ignored), this is a dozen lines, and the lean transport exists to avoid the
        layers a general client brings. Lines end in LF or CRLF (no upstream sends a bare CR).
        """
        buffer = b""
        data: list[bytes] = []
        while True:
            chunk: bytes = await self._read(wait(response.content.readany()))
            if not chunk:
                return
            buffer += chunk
            if b"\n" not in chunk:
                continue
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                line = line.removesuffix(b"\r")
                if line:
                    field, _, value = line.partition(b":")
                    if field == b"data":
                        data.append(value.removeprefix(b" "))
                    continue
                if not data:
                    continue
                payload, data = b"\n".join(data), []
                if payload.startswith(b"[DONE]"):
                    # Read to the end of the body, so the connection goes back to the pool.
                    while await self._read(wait(response.content.readany())):
                        pass
                    return
                yield payload

    async def _read(self, awaitable: Awaitable[T]) -> T:
        """`await awaitable` (a read of a response), with failures mapped to error kinds."""
        try:
            return await awaitable
        except AgentError:
            raise
        except TimeoutError:  # aiohttp's timeouts subclass it
            raise timeout_error(self.provider, self.timeout) from None
        except aiohttp.ClientError:  # disconnected, payload cut short, reset ...
            raise connection_error(self.provider, self.base_url, CONNECTION_DROPPED) from None

    @property
    def session_open(self) -> bool:
        return self._session is not None and not self._session.closed

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed and self._loop is asyncio.get_running_loop():
            await session.close()

"""The mock upstream server machinery shared by the OpenAI and Anthropic mocks.

Each mock is an aiohttp.web app served on 127.0.0.1 at an ephemeral port from its own event
loop in a daemon thread, so the same object serves sync tests, async tests (whatever their
loop) and subprocesses (a CLI under test only needs `base_url`). For benchmarks, run it in a
separate process instead (`tests.mock_upstreams.process`), so its CPU is not the client's.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

import orjson
from aiohttp import web

from tests.mock_upstreams.faults import Fault


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the upstream received it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    json: Any  # the decoded body, None when it was not JSON
    peer: tuple[str, int] | None  # the client's (host, port): one per TCP connection


def echo_responder(body: dict[str, Any]) -> str:
    """The default answer: the last user message's text, like agent_core's echo provider."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def content_text(content: Any) -> str:
    """Text of a message content: a string, or a list of content blocks / parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def split_deltas(text: str) -> list[str]:
    """A reply as a stream delivers it: word by word, each word with the whitespace before it
    (`"Hello, world!"` -> `"Hello,"`, `" world!"`), joining back to the text exactly."""
    return [piece for piece in re.split(r"(?<=\S)(?=\s)", text) if piece]


def count_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer: whitespace-separated words."""
    return len(text.split())


def apply_limits(text: str, max_tokens: int | None, stop: Iterable[str]) -> tuple[str, str | None]:
    """Cuts `text` at the first stop sequence, then at `max_tokens` words, as a model would.

    Returns the text and why it ended early: the stop sequence hit, "length", or None.
    """
    reason: str | None = None
    hits = [(text.find(s), s) for s in stop if s and s in text]
    if hits:
        at, sequence = min(hits)
        text, reason = text[:at], sequence
    words = text.split()
    if max_tokens is not None and len(words) > max_tokens:
        return " ".join(words[:max_tokens]), "length"
    return text, reason


class MockUpstream:
    """Base class: request recording, the fault queue and the server thread.

    Subclasses define `PATH`, how a request is validated, and how answers and errors look.
    """

    PATH: ClassVar[str]
    BASE_PATH: ClassVar[str] = ""
    DEFAULT_MODEL: ClassVar[str]

    def __init__(
        self,
        *,
        api_key: str | None = None,
        responder: Callable[[dict[str, Any]], str] = echo_responder,
        latency: float = 0.0,
        record_limit: int = 10_000,
        host: str = "127.0.0.1",
        port: int = 0,
        delta_delay: float = 0.0,
    ) -> None:
        """`api_key`: when set, requests must carry it (else the provider's real 401).
        `latency`: seconds every answer waits (a stand-in for model time in benchmarks).
        `delta_delay`: seconds before each text delta of a streamed answer."""
        self.api_key = api_key
        self.responder = responder
        self.latency = latency
        self.delta_delay = self._delta_delay = delta_delay
        # Answer `"stream": true` with one plain JSON answer, as some compatible servers do.
        self.ignores_stream = False
        # How each streamed answer ended: "completed", "client_closed" (the client closed the
        # connection first), "dropped" or "error_event" (a scripted fault).
        self.stream_outcomes: deque[str] = deque(maxlen=record_limit)
        self.requests: deque[RecordedRequest] = deque(maxlen=record_limit)
        self.calls = 0
        self.waiting = 0  # requests held by `latency` or a delay right now
        self.closed_early = 0  # requests whose client closed the connection while held
        self.always: Fault | None = None
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._host, self._port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- scripting ----------------------------------------------------------------------------

    def enqueue(self, *faults: Fault, times: int = 1) -> None:
        """The next calls get these behaviours, in order (`times` repeats the whole list)."""
        with self._lock:
            for _ in range(times):
                self._queue.extend(faults)

    def fail_next(self, n: int, fault: Fault) -> None:
        """The next `n` calls get `fault`; later calls succeed (retries become observable)."""
        self.enqueue(fault, times=n)

    def reset(self) -> None:
        """Forgets queued faults, `always`, recorded requests and streams and the call count,
        and puts the stream settings (`delta_delay`, `ignores_stream`) back as created."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.stream_outcomes.clear()
            self.calls = 0
            self.closed_early = 0
            self.always = None
            self.delta_delay = self._delta_delay
            self.ignores_stream = False

    @property
    def pending_faults(self) -> int:
        return len(self._queue)

    @property
    def connections(self) -> set[tuple[str, int]]:
        """Distinct client (host, port) pairs seen: one per TCP connection the client opened."""
        return {r.peer for r in self.requests if r.peer is not None}

    def _next_fault(self) -> Fault | None:
        with self._lock:
            self.calls += 1
            if self._queue:
                return self._queue.popleft()
            return self.always

    # -- wire format, per provider ------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}{self.BASE_PATH}"

    def check_request(self, request: web.Request, body: Any) -> web.Response | None:
        """The provider's own rejection of a bad request (auth, validation), or None."""
        raise NotImplementedError

    def answer(self, body: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
        raise NotImplementedError

    def missing_fields_body(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def stream_frames(self, body: dict[str, Any], fault: Fault | None) -> list[tuple[bytes, bool]]:
        """The answer as server-sent events, in the provider's real sequence: (frame, whether
        the frame carries a text delta)."""
        raise NotImplementedError

    def stream_error_frame(self, status: int, message: str | None) -> bytes:
        """The event the provider sends when it fails in the middle of a stream."""
        raise NotImplementedError

    def error(
        self, status: int, *, message: str | None = None, error_type: str | None = None
    ) -> dict[str, Any]:
        raise NotImplementedError

    def error_headers(self, fault: Fault) -> dict[str, str]:
        """Headers sent with an error (request ids, rate-limit headers, retry-after)."""
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["retry-after"] = str(fault.retry_after)
        if fault.retry_after_ms is not None:
            headers["retry-after-ms"] = str(fault.retry_after_ms)
        return headers

    def success_headers(self) -> dict[str, str]:
        return {}

    # -- the handler --------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=raw,
                json=body,
                peer=tuple(peer[:2]) if peer else None,
            )
        )
        if request.method != "POST" or request.path != self.BASE_PATH + self.PATH:
            return self._json(404, self.error(404, message=f"Unknown path {request.path}"))
        fault = self._next_fault()
        if fault is None or fault.kind not in ("raw", "drop", "html"):
            rejection = self.check_request(request, body)
            if rejection is not None:
                return rejection
        if self.latency and not await self._wait(request, self.latency):
            return web.Response()  # the client went away: nothing to answer
        streams = isinstance(body, dict) and body.get("stream") is True and not self.ignores_stream
        if fault is None:
            if streams:
                return await self._stream(request, body, None)
            return self._json(200, self.answer(body, None), self.success_headers())
        return await self._apply(request, body, fault, streams)

    async def _wait(self, request: web.Request, seconds: float) -> bool:
        """Waits `seconds` as a slow upstream would, watching the connection: False (and
        `closed_early` counted) when the client closed it first, which is how tests see a
        cancelled call reach the upstream."""
        self.waiting += 1
        try:
            deadline = asyncio.get_running_loop().time() + seconds
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                transport = request.transport
                if transport is None or transport.is_closing():
                    self.closed_early += 1
                    return False
                await asyncio.sleep(min(left, 0.02))
            return True
        except asyncio.CancelledError:  # the server cancels a handler whose client went away
            self.closed_early += 1
            raise
        finally:
            self.waiting -= 1

    async def _apply(
        self, request: web.Request, body: Any, fault: Fault, streams: bool = False
    ) -> web.StreamResponse:
        kind = fault.kind
        if fault.delay and not await self._wait(request, fault.delay):
            return web.Response()
        stream_kinds = ("reply", "slow", "drop_mid_body", "drop_mid_stream", "stream_error")
        if streams and kind in stream_kinds:
            return await self._stream(request, body, fault)
        if kind == "drop_mid_stream":
            kind = "drop_mid_body"
        if kind == "stream_error":
            kind = "status"
        if kind in ("reply", "slow"):
            return self._json(200, self.answer(body, fault), self.success_headers())
        if kind == "status":
            payload = self.error(fault.status, message=fault.message, error_type=fault.error_type)
            return self._json(fault.status, payload, self.error_headers(fault))
        if kind == "drop":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()  # never sent: the socket is gone
        if kind == "drop_mid_body":
            full = orjson.dumps(self.answer(body, None))
            response = web.StreamResponse(
                status=200,
                headers={"content-type": "application/json", "content-length": str(len(full))},
            )
            await response.prepare(request)
            await response.write(full[: len(full) // 2])
            assert request.transport is not None
            request.transport.abort()
            return response
        if kind == "truncated":
            full = orjson.dumps(self.answer(body, None))
            return web.Response(
                status=200, body=full[: len(full) // 2], content_type="application/json"
            )
        if kind == "non_json":
            return web.Response(
                status=200,
                body=b"<html><body><h1>Welcome to nginx!</h1></body></html>",
                content_type="application/json",
            )
        if kind == "html":
            return web.Response(
                status=fault.status,
                body=(
                    f"<html><head><title>{fault.status}</title></head><body><center>"
                    f"<h1>{fault.status}</h1></center><hr><center>cloudflare</center>"
                    "</body></html>"
                ).encode(),
                content_type="text/html",
                headers=self.error_headers(fault),
            )
        if kind == "missing_fields":
            return self._json(200, self.missing_fields_body(body), self.success_headers())
        if kind == "raw":
            return web.Response(
                status=fault.status,
                body=fault.body or b"",
                headers={"content-type": fault.content_type, **fault.headers},
            )
        raise AssertionError(f"unknown fault kind {kind!r}")

    async def _stream(
        self, request: web.Request, body: dict[str, Any], fault: Fault | None
    ) -> web.StreamResponse:
        """Streams the answer delta by delta (`delta_delay` before each), with the stream
        faults: a drop or an error event after `fault.after` deltas (half of them for
        `drop_mid_body`)."""
        frames = self.stream_frames(body, fault)
        cut: int | None = None
        if fault is not None and fault.kind in ("drop_mid_body", "drop_mid_stream", "stream_error"):
            deltas = sum(1 for _, is_delta in frames if is_delta)
            cut = deltas // 2 if fault.after is None else fault.after
        response = web.StreamResponse(
            status=200,
            headers={
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                **self.success_headers(),
            },
        )
        sent, cut_short, recorded = 0, False, False

        def record(outcome: str) -> None:
            # Before the end is sent: a client that has read the whole stream finds it here.
            nonlocal recorded
            if not recorded:
                self.stream_outcomes.append(outcome)
                recorded = True

        try:
            await response.prepare(request)
            for frame, is_delta in frames:
                if is_delta:
                    if sent == cut:
                        cut_short = True
                        break
                    if self.delta_delay:
                        await asyncio.sleep(self.delta_delay)
                    sent += 1
                await response.write(frame)
            if cut_short and fault is not None and fault.kind == "stream_error":
                record("error_event")
                await response.write(self.stream_error_frame(fault.status, fault.message))
            elif cut_short:
                record("dropped")
                assert request.transport is not None
                request.transport.abort()
                return response
            else:
                record("completed")
            await response.write_eof()
        except asyncio.CancelledError:
            # The client closed the connection and the server cancelled this handler: what a
            # client that stops reading must cause.
            record("client_closed")
            raise
        except ConnectionResetError:  # the write found the socket gone
            record("client_closed")
        return response

    @staticmethod
    def _json(
        status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.Response(
            status=status,
            body=orjson.dumps(payload),
            headers={"content-type": "application/json", **(headers or {})},
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _start(self) -> None:
        # handler_cancellation: a client that closes the connection cancels its handler at
        # once, so a stream sees the close even between two deltas.
        self._runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, backlog=1024)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    def start(self) -> Self:
        """Starts serving from a background thread; returns once the port is bound."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=serve, name=type(self).__name__, daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = self._loop = self._runner = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def serve_forever(self) -> None:
        """Serves from the current event loop (used when the mock is its own process)."""
        await self._start()
        try:
            await asyncio.Event().wait()
        finally:
            if self._runner is not None:
                await self._runner.cleanup()

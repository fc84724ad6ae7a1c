"""A listener that accepts connections and never answers: the upstream that hangs.

What a stuck proxy, a crashed model server behind a live load balancer or a firewall that
swallows replies looks like to a client: the TCP handshake succeeds, then nothing comes.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Self


class SilentListener:
    """`with SilentListener() as silent:` point a client at `silent.base_url`; `accepted`
    counts the connections it took (one per attempt of a client that does not reuse them)."""

    def __init__(self, path: str = "/v1") -> None:
        self._path = path
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(128)
        self.port: int = self._server.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self._path}"

    def _accept(self) -> None:
        self._server.settimeout(0.05)
        while not self._closed.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._held.append(connection)  # held open, never read from or written to

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        for connection in self._held:
            connection.close()
        self._server.close()

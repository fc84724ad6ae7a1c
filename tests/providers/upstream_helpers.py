"""Constants and helpers shared by the built-in providers' tests (imported, not fixtures)."""

from __future__ import annotations

import socket
from typing import Any

from agent_core import CompletionRequest, Message

OPENAI_KEY = "sk-proj-TESTKEYopenai0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-api03-TESTKEYanthropic0123456789abcdef"
KEYS = (OPENAI_KEY, ANTHROPIC_KEY)

TRANSPORTS = ["lean", "sdk"]
PROVIDER_KINDS = ["openai", "anthropic"]

# Tiny delays keep the suite fast; the SDK transport uses the SDKs' own (0.5 s base) backoff,
# so tests that retry it without a retry-after keep max_retries low.
FAST_RETRIES = {"retry_initial_delay": 0.01, "retry_max_delay": 0.05}


def ask(text: str = "What is 2 + 2?", **options: Any) -> CompletionRequest:
    """A request with a system and a user message."""
    return CompletionRequest(
        [Message("system", "Answer briefly."), Message("user", text)], **options
    )


def closed_port() -> int:
    """A local port with nothing listening (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

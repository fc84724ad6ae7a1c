"""The `openai_compatible` provider: any server with OpenAI's chat API (Ollama, vLLM,
llama.cpp server, LM Studio, OpenRouter, Groq ...).

Several instances, each with its own name, come from configuration:

    [providers.ollama]
    type = "openai_compatible"
    base_url = "http://localhost:11434/v1"
    model = "llama3.2"

`base_url` is required; the key is optional (`api_key_env` names its variable when the server
wants one). Unlike `openai`, nothing is read from OPENAI_* variables: OpenAI's key, base URL
or organization must never reach a third-party server by accident.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from agent_core import Completion, CompletionRequest
from providers.builtin.openai import OpenAIProvider
from providers.hookspecs import RegisterProvider, hookimpl


class OpenAICompatibleProvider(OpenAIProvider):
    name = "openai_compatible"

    KEY_ENV: ClassVar[str | None] = None
    BASE_URL_ENV: ClassVar[str | None] = None
    DEFAULT_BASE_URL: ClassVar[str | None] = None
    DEFAULT_MODEL: ClassVar[str] = "default"
    ORG_ENV: ClassVar[str | None] = None
    PROJECT_ENV: ClassVar[str | None] = None
    MAX_TOKENS_FIELD: ClassVar[str] = "max_tokens"

    async def complete_many(self, request: CompletionRequest, n: int) -> list[Completion]:
        """`n` samples: asks with `n`, and tops up with single calls when the server ignores
        `n` and returns fewer choices (several compatible servers do)."""
        if n < 1:
            return []
        completions = await self._complete(request, n)
        missing = n - len(completions)
        if missing > 0:
            extra = await asyncio.gather(*(self.complete(request) for _ in range(missing)))
            completions.extend(extra)
        return completions

    def check_count(self, completions: list[Completion], n: int) -> list[Completion]:
        return completions[:n]  # fewer is fine: complete_many tops up


@hookimpl
def register_providers(register: RegisterProvider) -> None:
    register(OpenAICompatibleProvider, name="openai_compatible", aliases=["openai-compatible"])

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

from typing import ClassVar

from providers.builtin.openai import OpenAIProvider
from providers.hookspecs import RegisterProvider, hookimpl
from providers.provider_config import MultipleSamples


class OpenAICompatibleProvider(OpenAIProvider):
    name = "openai_compatible"

    KEY_ENV: ClassVar[str | None] = None
    BASE_URL_ENV: ClassVar[str | None] = None
    DEFAULT_BASE_URL: ClassVar[str | None] = None
    DEFAULT_MODEL: ClassVar[str] = "default"
    ORG_ENV: ClassVar[str | None] = None
    PROJECT_ENV: ClassVar[str | None] = None
    MAX_TOKENS_FIELD: ClassVar[str] = "max_tokens"
    # Many compatible servers and proxies ignore `n` or refuse it: one call per sample unless
    # the operator says the server honours it (`multiple_samples = true` or "auto").
    DEFAULT_MULTIPLE_SAMPLES: ClassVar[MultipleSamples] = False


@hookimpl
def register_providers(register: RegisterProvider) -> None:
    register(OpenAICompatibleProvider, name="openai_compatible", aliases=["openai-compatible"])

"""One provider's configuration: a `[providers.NAME]` table of plugins.toml, plus environment."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Transport = Literal["lean", "sdk"]
MultipleSamples = bool | Literal["auto"]


class ProviderConfig(BaseModel):
    """Settings for one configured provider instance.

    Secrets never live here: `api_key_env` names the environment variable that holds the key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(description="registered provider name to instantiate: openai, anthropic, ...")
    enabled: bool = True
    model: str | None = Field(default=None, description="default model when a request names none")
    base_url: str | None = None
    api_key_env: str | None = Field(
        default=None, description="name of the environment variable holding the API key"
    )
    organization: str | None = None
    timeout: float = Field(
        default=30.0, gt=0, le=3600, description="seconds one attempt at an upstream call may take"
    )
    deadline: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description=(
            "seconds one upstream call may take in all, retries and their waits included "
            "(default: 1.5 x timeout). A retry starts only if a whole attempt still fits"
        ),
    )
    max_retries: int = Field(default=2, ge=0, le=10, description="retries of retryable failures")
    transport: Transport = Field(
        default="lean", description="lean: aiohttp + orjson (fast); sdk: the official SDK"
    )
    multiple_samples: MultipleSamples | None = Field(
        default=None,
        description=(
            "OpenAI-style providers: ask for a vote's samples in one call with `n`. "
            '"auto": try it, and switch to one call per sample for good if the upstream '
            "refuses or ignores `n`; true: always; false: one call per sample. Default: the "
            'provider type\'s ("auto" for openai, false for openai_compatible)'
        ),
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="provider-specific options passed to the plugin"
    )

    @property
    def call_deadline(self) -> float:
        """Seconds one call may take across all its attempts."""
        return self.deadline if self.deadline is not None else 1.5 * self.timeout

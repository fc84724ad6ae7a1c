"""The service's settings, read from the environment (names as the README gives them).

Providers, strategies and their defaults are configured separately (`providers.config`,
`plugins.toml`); this module holds what the HTTP service itself needs: keys, limits, storage,
server and logging.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from limits import parse_many
from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

__all__ = [
    "QUERY_LIMIT_MAX",
    "ServiceSettings",
    "SettingsInvalid",
    "get_settings",
    "load_service_settings",
]


class SettingsInvalid(Exception):
    """The service cannot start with this configuration; the message says which variable and
    why, one problem per line, and never echoes a secret."""

    code = "config_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _comma_separated(value: Any) -> Any:
    """`API_KEYS=key1, key2,,key3` -> ["key1", "key2", "key3"] (spaces and empties dropped)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


KeyList = Annotated[list[str], NoDecode, BeforeValidator(_comma_separated)]

_SIZE = re.compile(r"^\s*(\d+)\s*([kKmM]?)[iI]?[bB]?\s*$")


def _byte_size(value: Any) -> Any:
    """`1048576`, `512k`, `1m`, `2MiB` -> bytes."""
    if isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a size (examples: 1048576, 512k, 1m)")
        number, unit = int(match.group(1)), match.group(2).lower()
        return number * {"": 1, "k": 1024, "m": 1024 * 1024}[unit]
    return value


ByteSize = Annotated[int, BeforeValidator(_byte_size)]

QUERY_LIMIT_MAX = 1000
"""The largest page GET /query serves, whatever QUERY_MAX_LIMIT says."""


class ServiceSettings(BaseSettings):
    """Environment variables of the REST service (unprefixed, as the README names them)."""

    model_config = SettingsConfigDict(
        extra="ignore",  # the process environment holds many unrelated variables
        frozen=True,
        case_sensitive=False,
    )

    # --- authentication ---------------------------------------------------------------------
    api_keys: KeyList = Field(
        default_factory=list, description="API_KEYS: comma-separated keys accepted in X-API-Key"
    )
    admin_api_keys: KeyList = Field(
        default_factory=list,
        description="ADMIN_API_KEYS: keys that may also read every key's history in /query",
    )
    key_id_salt: str = Field(
        default="reasoning-agent/key-id/v1",
        description=(
            "KEY_ID_SALT: HMAC key for the key ids stored in the history (a key itself is never "
            "stored). Changing it detaches existing history from its keys."
        ),
    )

    # --- rate limiting ----------------------------------------------------------------------
    rate_limit: str = Field(
        default="60/minute",
        description="RATE_LIMIT: per-key budget, e.g. 60/minute, 100/hour, 10/second;1000/day",
    )
    rate_limit_strategy: Literal["moving-window", "sliding-window-counter", "fixed-window"] = Field(
        default="moving-window",
        description=(
            "RATE_LIMIT_STRATEGY: `moving-window` (default) admits at most N in any window "
            "of the period, at a cost per request that grows with N; "
            "`sliding-window-counter` costs the same whatever N, and approximates the "
            "window by weighting the previous one; `fixed-window` resets on the period's "
            "boundaries (up to 2N across one)"
        ),
    )
    rate_limit_storage_uri: str | None = Field(
        default=None, description="RATE_LIMIT_STORAGE_URI: memory:// or redis://host:port/db"
    )
    redis_url: str | None = Field(
        default=None, description="REDIS_URL: used for rate limits when no storage URI is set"
    )
    rate_limit_key_prefix: str = Field(
        default="reasoning-agent",
        description="RATE_LIMIT_KEY_PREFIX: namespace of the limiter's keys in Redis",
    )
    rate_limit_storage_down: Literal["memory", "reject"] = Field(
        default="memory",
        description=(
            "RATE_LIMIT_STORAGE_DOWN: when Redis is unreachable, `memory` keeps limiting each "
            "instance on its own (same limits, per instance) until Redis is back; `reject` "
            "answers 503. Never unlimited."
        ),
    )
    rate_limit_storage_timeout: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description=(
            "RATE_LIMIT_STORAGE_TIMEOUT: seconds one rate-limit check may wait for Redis, "
            "all its calls together"
        ),
    )

    # --- spend budgets (api/budgets.py) -----------------------------------------------------
    key_budgets: str = Field(
        default="",
        description=(
            "KEY_BUDGETS: dollars per UTC day or month per key id, e.g. "
            "`*=5/day;3f2a9c1d0e7b4a55=100/month` (`*`: every key without its own entry; "
            "a key's id is the `key_id` of its tasks in GET /query). Empty: no budgets"
        ),
    )
    budget_reservation_usd: float = Field(
        default=0.25,
        gt=0,
        le=10_000,
        description=(
            "BUDGET_RESERVATION_USD: what a budgeted key's task reserves (and may spend) when "
            "it sets no max_cost_usd"
        ),
    )
    budget_min_reservation_usd: float = Field(
        default=0.001,
        ge=0.000001,
        le=100,
        description=(
            "BUDGET_MIN_RESERVATION_USD: a task is refused (402) when less than this is left "
            "in its key's budget"
        ),
    )
    budget_reservation_ttl: float = Field(
        default=900,
        ge=10,
        le=86_400,
        description=(
            "BUDGET_RESERVATION_TTL: seconds a reservation holds before it expires (what a "
            "crashed instance left behind is released); keep it above the longest task"
        ),
    )
    budget_storage_down: Literal["memory", "reject"] = Field(
        default="reject",
        description=(
            "BUDGET_STORAGE_DOWN: when Redis is unreachable, `reject` refuses budgeted keys' "
            "tasks with 503; `memory` keeps a ledger per instance (each may then spend the whole "
            "budget). Never unlimited"
        ),
    )

    # --- history ----------------------------------------------------------------------------
    data_dir: Path = Field(default=Path("./data"), description="DATA_DIR: where SQLite lives")
    database_url: str | None = Field(
        default=None,
        description="DATABASE_URL: SQLAlchemy URL; default sqlite+aiosqlite:///DATA_DIR/...db",
    )
    migrate_on_start: bool = Field(
        default=True, description="MIGRATE_ON_START: apply Alembic migrations at start"
    )

    # --- requests ---------------------------------------------------------------------------
    max_prompt_chars: int = Field(
        default=32_000,
        ge=1,
        le=10_000_000,
        description="MAX_PROMPT_CHARS: longest prompt (and system) accepted",
    )
    max_body_bytes: ByteSize = Field(
        default=256 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="MAX_BODY_BYTES: larger request bodies get 413",
    )
    query_max_limit: int = Field(
        default=100,
        ge=1,
        le=QUERY_LIMIT_MAX,
        description="QUERY_MAX_LIMIT: cap of GET /query's `limit`",
    )
    public_docs: bool = Field(
        default=False,
        description="PUBLIC_DOCS: serve /docs and /openapi.json without a key (development)",
    )
    console: bool = Field(
        default=True,
        description="CONSOLE: serve the web console at /console (its data still needs a key)",
    )

    # --- background tasks -------------------------------------------------------------------
    job_key_prefix: str = Field(
        default="reasoning-agent",
        max_length=100,
        description="JOB_KEY_PREFIX: namespace of the job queue and event streams in Redis",
    )
    job_concurrency: int = Field(
        default=8,
        ge=1,
        le=1000,
        description="JOB_CONCURRENCY: background tasks one worker process (or the API, "
        "without REDIS_URL) runs at once",
    )
    job_lease_seconds: float = Field(
        default=30.0,
        ge=1,
        le=3600,
        description="JOB_LEASE_SECONDS: a running task's lease; a worker that stops renewing "
        "it (killed) loses the task to another after this long",
    )
    job_sweep_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="JOB_SWEEP_SECONDS: how often the sweeper looks for tasks the queue lost",
    )
    job_requeue_seconds: float = Field(
        default=60.0,
        ge=1,
        le=86400,
        description="JOB_REQUEUE_SECONDS: a queued task no worker took for this long is put on "
        "the queue again (duplicates are harmless: a task is claimed once)",
    )
    job_max_active_per_key: int = Field(
        default=100,
        ge=1,
        le=1_000_000,
        description="JOB_MAX_ACTIVE_PER_KEY: queued plus running background tasks per key; "
        "beyond it POST /task answers 429 too_many_active_tasks",
    )
    job_max_attempts: int = Field(
        default=3,
        ge=1,
        le=20,
        description="JOB_MAX_ATTEMPTS: runs of a task at most (first run, reruns after a "
        "crashed worker and retries of upstream unavailability together)",
    )
    job_retry_seconds: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="JOB_RETRY_SECONDS: wait before the first retry; doubled for each next",
    )
    job_shutdown_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="JOB_SHUTDOWN_SECONDS: on SIGTERM a worker lets running tasks finish this "
        "long, then hands the rest back to the queue",
    )
    job_events_retention_seconds: int = Field(
        default=86_400,
        ge=10,
        le=30 * 86_400,
        description="JOB_EVENTS_RETENTION_SECONDS: how long a task's events stay replayable "
        "after it ends",
    )
    job_events_max: int = Field(
        default=10_000,
        ge=100,
        le=1_000_000,
        description="JOB_EVENTS_MAX: events kept per task (the oldest deltas go first)",
    )
    callback_allowed_hosts: KeyList = Field(
        default_factory=list,
        description="CALLBACK_ALLOWED_HOSTS: hosts a callback_url may name (comma-separated; "
        "`*.example.com` for subdomains); empty: callbacks are off",
    )
    callback_secret: SecretStr | None = Field(
        default=None,
        description="CALLBACK_SECRET: HMAC-SHA256 key of the callbacks' signatures (required "
        "for callbacks; never logged)",
    )
    callback_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="CALLBACK_TIMEOUT_SECONDS: per delivery attempt"
    )
    callback_max_attempts: int = Field(
        default=5, ge=1, le=20, description="CALLBACK_MAX_ATTEMPTS: deliveries tried at most"
    )
    callback_retry_seconds: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        description="CALLBACK_RETRY_SECONDS: wait before the second attempt; doubled after",
    )
    worker_host: str = Field(
        default="127.0.0.1", description="WORKER_HOST: where a worker serves /metrics, /healthz"
    )
    worker_port: int = Field(
        default=9000, ge=0, le=65535, description="WORKER_PORT: a worker's metrics and probes"
    )

    # --- server and logs --------------------------------------------------------------------
    # Loopback by default: a local run is not exposed to the network by accident. The image,
    # compose file and Kubernetes manifests set HOST=0.0.0.0 themselves.
    host: str = Field(default="127.0.0.1", description="HOST: address to bind")
    port: int = Field(default=8000, ge=0, le=65535, description="PORT")
    workers: int = Field(default=1, ge=1, le=64, description="WORKERS: server processes")
    graceful_shutdown_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="GRACEFUL_SHUTDOWN_SECONDS: time to finish requests",
    )
    log_format: Literal["text", "json"] = Field(default="text", description="LOG_FORMAT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="LOG_LEVEL"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("rate_limit")
    @classmethod
    def _parsable_limit(cls, value: str) -> str:
        text = value.strip()
        try:
            items = parse_many(text)
        except ValueError:
            items = []
        if not items:
            raise ValueError(
                f"{value!r} is not a rate limit; examples: 60/minute, 100/hour, 10/second;1000/day"
            )
        return text

    @field_validator("key_budgets")
    @classmethod
    def _parsable_budgets(cls, value: str) -> str:
        from api.budget_table import parse_budgets

        parse_budgets(value)
        return value.strip()

    @field_validator(
        "rate_limit_storage_uri", "redis_url", "database_url", "callback_secret", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _at_least_one_key(self) -> ServiceSettings:
        if not self.api_keys and not self.admin_api_keys:
            raise ValueError(
                "no API key configured: set API_KEYS (comma-separated), e.g. API_KEYS=key1,key2"
            )
        return self

    @property
    def limiter_storage_uri(self) -> str:
        """The `limits` async storage URI: memory, or Redis (plain `redis://` accepted)."""
        uri = self.rate_limit_storage_uri or self.redis_url or "memory://"
        if uri.startswith(("memory://", "redis://", "rediss://", "redis+unix://")):
            return "async+" + uri  # limits' asyncio storages; users write the plain scheme
        return uri

    @property
    def uses_redis(self) -> bool:
        return "redis" in self.limiter_storage_uri.split("://", 1)[0]

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'reasoning-agent.db').as_posix()}"


_ENV_NAMES = {name: name.upper() for name in ServiceSettings.model_fields}


def load_service_settings(**overrides: Any) -> ServiceSettings:
    """Reads the settings from the environment (with `overrides` on top).

    :raises SettingsInvalid: with one readable line per bad variable (no pydantic URLs, and the
        offending value is never quoted, since it may be a key).
    """
    try:
        return ServiceSettings(**overrides)
    except ValidationError as error:
        lines = []
        for problem in error.errors(include_url=False):
            loc = [str(part) for part in problem["loc"]]
            name = _ENV_NAMES.get(loc[0], loc[0].upper()) if loc else "configuration"
            message = str(problem["msg"]).removeprefix("Value error, ")
            lines.append(f"{name}: {message}" if loc else message)
        raise SettingsInvalid("\n".join(lines)) from None
    except SettingsError as error:
        raise SettingsInvalid(f"environment: {error}") from None


@lru_cache(maxsize=1)
def get_settings() -> ServiceSettings:
    """The process's settings, read once. Tests build their own and pass them to `create_app`."""
    return load_service_settings()

"""ReasoningAgent's provider configuration: `plugins.toml` plus the environment.

The file's path comes from `REASONING_AGENT_CONFIG` (default `./plugins.toml`). A missing
default file is fine (built-in defaults apply); a path that was named explicitly and does not
exist is an error. Every setting can be overridden from the environment with the prefix
`REASONING_AGENT_` and `__` between nested keys, e.g. `REASONING_AGENT_DEFAULT_PROVIDER=echo`
or `REASONING_AGENT_PROVIDERS__OLLAMA__BASE_URL=http://127.0.0.1:11434/v1`. Precedence,
highest first: values passed in code, the environment, the file, the defaults.

Bad configuration fails fast with :class:`ConfigError`, whose message names the file (or the
environment variable), the key and what is wrong. `docs/configuration.md` is the reference.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

import agent_core
from providers.provider_config import ProviderConfig

__all__ = [
    "CONFIG_PATH_ENV",
    "DEFAULT_CONFIG_PATH",
    "ENV_PREFIX",
    "ConfigError",
    "PluginsSettings",
    "ProvidersSettings",
    "StrategyDefaults",
    "load_settings",
    "valid_name",
    "where_key_comes_from",
]

CONFIG_PATH_ENV = "REASONING_AGENT_CONFIG"
"""The environment variable that names the configuration file."""
DEFAULT_CONFIG_PATH = Path("plugins.toml")
ENV_PREFIX = "REASONING_AGENT_"
ENV_NESTED_DELIMITER = "__"

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
"""Provider and plugin names: they appear in URLs, command lines and environment variables."""
NAME_RULE = "letters, digits, '_', '.', '-', starting with a letter or digit"


class ConfigError(Exception):
    """The configuration is invalid. The message says where (file or variable), which key, and
    what is wrong, one problem per line; it never carries a stack trace or a secret."""

    code = "config_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _names(value: Any) -> Any:
    """Lists of names also accept a comma-separated string or a JSON list, the natural forms
    in an environment variable."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return value  # reported as not a list, quoting the value
    return [part.strip() for part in text.split(",") if part.strip()]


NameList = Annotated[list[str], NoDecode, BeforeValidator(_names)]


class StrategyDefaults(BaseModel):
    """The `[strategy]` table: defaults for a task's options when a request leaves them out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    samples: int = Field(default=5, ge=1, le=64, description="self_consistency: voting samples")
    rounds: int = Field(default=1, ge=0, le=10, description="refine: critique-and-revise rounds")
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, description="per call")
    max_calls: int | None = Field(default=None, ge=1, description="budget: calls per task")
    max_total_tokens: int | None = Field(default=None, ge=1, description="budget: tokens per task")

    def task_options(self) -> dict[str, Any]:
        """The keyword options for `agent_core.Task`, without the unset ones."""
        return {key: value for key, value in self.model_dump().items() if value is not None}


class PluginsSettings(BaseModel):
    """The `[plugins]` table: which plugins load, and how strictly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: NameList | None = Field(
        default=None,
        description="when set, only these plugins (entry-point names) are loaded",
    )
    disabled: NameList = Field(
        default_factory=list, description="plugins (entry-point names) never loaded"
    )
    strict: bool = Field(
        default=False,
        description="a plugin that fails to load or a duplicate provider name stops start-up",
    )
    choose: dict[str, str] = Field(
        default_factory=dict,
        description="provider name -> plugin that serves it, when several plugins register it",
    )

    @field_validator("enabled", "disabled")
    @classmethod
    def _valid_names(cls, names: list[str] | None) -> list[str] | None:
        for name in names or ():
            _check_name(name)
        return names


def valid_name(name: str) -> bool:
    """Whether `name` can name a provider, alias or plugin."""
    return bool(NAME_PATTERN.match(name))


def _check_name(name: str) -> str:
    if not valid_name(name):
        raise ValueError(f"{name!r} is not a valid name ({NAME_RULE})")
    return name


_config_path_override: ContextVar[Path | None] = ContextVar("config_path", default=None)
_isolated: ContextVar[bool] = ContextVar("isolated", default=False)


def config_path(environ: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """The configuration file's path, and whether it was named explicitly."""
    override = _config_path_override.get()
    if override is not None:
        return override, True
    env = os.environ if environ is None else environ
    named = env.get(CONFIG_PATH_ENV, "").strip()
    if named:
        return Path(named), True
    return DEFAULT_CONFIG_PATH, False


class ProvidersSettings(BaseSettings):
    """Everything `plugins.toml` configures about providers, plugins and strategies."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    default_provider: str = Field(
        default="openai",
        description="the provider for requests that name none (an instance name or an alias)",
    )
    default_model: str | None = Field(
        default=None,
        description="the default provider's model when its table sets no `model`",
    )
    default_strategy: str = Field(default="direct", description="direct, cot, ...")
    strategy: StrategyDefaults = Field(default_factory=StrategyDefaults)
    providers: dict[str, ProviderConfig] = Field(
        default_factory=dict,
        description="[providers.NAME] tables; `type` defaults to NAME",
    )
    plugins: PluginsSettings = Field(default_factory=PluginsSettings)
    fallback: dict[str, NameList] = Field(
        default_factory=dict,
        description="provider name -> providers tried next, in order, when it is unavailable",
    )

    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The file these settings were read from (`None` when no file was read)."""
        return self._source

    def describe_source(self) -> str:
        """How error messages name where the configuration came from."""
        return str(self._source) if self._source is not None else "configuration"

    @classmethod
    def isolated(cls, **values: Any) -> ProvidersSettings:
        """Settings from exactly `values` and the defaults: neither plugins.toml nor the
        environment is read (for tests and for applications that configure in code).

        :raises ConfigError: a value is invalid.
        """
        token = _isolated.set(True)
        try:
            return cls(**values)
        except ValidationError as error:
            raise ConfigError(_describe(error, None, environment=False)) from None
        finally:
            _isolated.reset(token)

    @model_validator(mode="before")
    @classmethod
    def _provider_type_defaults_to_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("providers"), dict):
            tables = {}
            for name, table in data["providers"].items():
                if isinstance(table, dict) and "type" not in table:
                    table = {**table, "type": name}
                tables[name] = table
            data = {**data, "providers": tables}
        return data

    @field_validator("providers")
    @classmethod
    def _valid_provider_names(cls, tables: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        for name in tables:
            _check_name(name)
        return tables

    @field_validator("default_strategy")
    @classmethod
    def _known_strategy(cls, strategy: str) -> str:
        known = agent_core.strategies()
        if strategy not in known:
            raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(known)}")
        return strategy

    @field_validator("fallback")
    @classmethod
    def _chains_without_repeats(cls, chains: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, chain in chains.items():
            if name in chain:
                raise ValueError(f"the chain of {name!r} names {name!r} itself")
            repeated = sorted({n for n in chain if chain.count(n) > 1})
            if repeated:
                raise ValueError(f"the chain of {name!r} repeats {', '.join(repeated)}")
        return chains

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Code beats the environment, which beats the file. No .env or secrets-dir reading:
        # the service's environment is set by its operator, explicitly.
        if _isolated.get():
            return (init_settings,)
        path, _ = config_path()
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, path))


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    token = _config_path_override.set(path)
    try:
        yield
    finally:
        _config_path_override.reset(token)


def load_settings(
    path: str | os.PathLike[str] | None = None, **overrides: Any
) -> ProvidersSettings:
    """Reads the configuration: `path` (or `$REASONING_AGENT_CONFIG`, or `./plugins.toml`),
    then the environment over it, then `overrides` over both.

    :raises ConfigError: the file is named but missing, is not valid TOML, or holds a bad value.
    """
    if path is not None:
        file, explicit = Path(path), True
    else:
        file, explicit = config_path()
    if file.is_file():
        try:
            with file.open("rb") as handle:
                tomllib.load(handle)  # syntax errors get a clean message here
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{file}: not valid TOML: {error}") from None
        except OSError as error:
            raise ConfigError(f"{file}: cannot be read: {error.strerror}") from None
    elif explicit:
        origin = "" if path is not None else f" (named by {CONFIG_PATH_ENV})"
        raise ConfigError(f"{file}: configuration file not found{origin}")
    source = file if file.is_file() else None
    try:
        with _reading(file):
            settings = ProvidersSettings(**overrides)
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None
    except SettingsError as error:  # a variable whose value is not the JSON its field needs
        raise ConfigError(f"environment: {_settings_error_text(error)}") from None
    settings._source = source
    return settings


def _settings_error_text(error: SettingsError) -> str:
    text = str(error)
    match = re.search(r'error parsing value for field "([^"]+)" from source "(\w+)"', text)
    if match:
        return f"{ENV_PREFIX}{match.group(1).upper()}: not valid JSON for this setting"
    return text


def _describe(error: ValidationError, source: Path | None, *, environment: bool = True) -> str:
    """One clean line per problem: where, which key, what is wrong (no pydantic URLs)."""
    lines = []
    for problem in error.errors(include_url=False):
        loc = [str(part) for part in problem["loc"] if not _is_internal_loc(part)]
        key = ".".join(loc) or "(top level)"
        where = where_key_comes_from(loc, source, environment=environment)
        message = _message(problem)
        lines.append(f"{where}: {key}: {message}")
    return "\n".join(lines)


def _is_internal_loc(part: Any) -> bool:
    # pydantic adds validator names ("function-before[...]") to some locations.
    return isinstance(part, str) and ("[" in part and "]" in part and "-" in part)


def where_key_comes_from(
    loc: Sequence[str], source: Path | None, *, environment: bool = True
) -> str:
    """Names the environment variable when the bad value came from one, else the file."""
    for depth in range(len(loc) if environment else 0, 0, -1):
        variable = ENV_PREFIX + ENV_NESTED_DELIMITER.join(loc[:depth]).upper()
        if any(name.upper() == variable for name in os.environ):
            return f"environment variable {variable}"
    return str(source) if source is not None else "configuration"


def _message(problem: Mapping[str, Any]) -> str:
    kind = problem["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = str(problem["msg"])
    message = message.removeprefix("Value error, ")
    value = problem.get("input")
    if kind not in {"value_error"} and isinstance(value, str | int | float | bool):
        message = f"{message} (got {value!r})"
    return message

"""ReasoningAgent's provider configuration: `plugins.toml` plus the environment.

The file's path comes from `REASONING_AGENT_CONFIG` (default `./plugins.toml`). A missing
default file is fine (built-in defaults apply); a path that was named explicitly and does not
exist is an error. Every setting can be overridden from the environment with the prefix
`REASONING_AGENT_` and `__` between nested keys, e.g. `REASONING_AGENT_DEFAULT_PROVIDER=echo`
or `REASONING_AGENT_PROVIDERS__OLLAMA__BASE_URL=http://127.0.0.1:11434/v1`. Precedence,
highest first: values passed in code, the environment, the file, the defaults.

The file's values must have the right TOML type (pydantic's strict mode, see
:class:`StrictTomlSettingsSource`): `timeout = true` or `timeout = "5"` is an error, not a
1-second or 5-second timeout. The environment holds only strings, so its values are parsed
(`REASONING_AGENT_PROVIDERS__OPENAI__TIMEOUT=5`, comma-separated lists of names).

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
from datetime import date, datetime, time
from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

import agent_core
from providers.prices import ModelPrice, PriceTable
from providers.provider_config import ProviderConfig
from providers.task_options import Rounds, Samples, TaskOptions

__all__ = [
    "CONFIG_PATH_ENV",
    "DEFAULT_CONFIG_PATH",
    "ENV_PREFIX",
    "ConfigError",
    "PluginsSettings",
    "ProvidersSettings",
    "StrategyDefaults",
    "StrictTomlSettingsSource",
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


_FILE_CONTEXT: Final = {"source": "file"}
"""The validation context of the configuration file's strict check (see `_names`)."""


def _names(value: Any, info: ValidationInfo) -> Any:
    """Lists of names also accept a comma-separated string or a JSON list, the natural forms
    in an environment variable. Not in the file: TOML has arrays, so a string there is a
    mistake. (Strict mode does not stop a before-validator, hence the context check.)"""
    if not isinstance(value, str) or info.context == _FILE_CONTEXT:
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return value  # reported as not a list, quoting the value
    return [part.strip() for part in text.split(",") if part.strip()]


NameList = Annotated[list[str], NoDecode, BeforeValidator(_names)]


class StrategyDefaults(TaskOptions):
    """The `[strategy]` table: defaults for a task's options when a request leaves them out.
    The options and their ranges are `TaskOptions`' (the engine's own, agent_core.LIMITS)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    samples: Samples = Field(default=5, description="self_consistency: voting samples")
    rounds: Rounds = Field(default=1, description="refine: critique-and-revise rounds")

    def task_options(self) -> dict[str, Any]:
        """The keyword options for `agent_core.Task`, without the unset ones."""
        return self.given()


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
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description=(
            'model prices: "provider/model" -> input and output US dollars per million tokens '
            "and the date of the price (over the built-in ones)"
        ),
    )
    fallback: dict[str, NameList] = Field(
        default_factory=dict,
        description="provider name -> providers tried next, in order, when it is unavailable",
    )

    _source: Path | None = PrivateAttr(default=None)

    @cached_property
    def price_table(self) -> PriceTable:
        """The built-in prices with this configuration's over them (built once: every task
        looks prices up)."""
        return PriceTable.with_builtins(self.prices)

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
            problems = error.errors(include_url=False)
            raise ConfigError(_describe(problems, None, [values], environment=False)) from None
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
        return (init_settings, env_settings, StrictTomlSettingsSource(settings_cls, path))


class StrictTomlSettingsSource(TomlConfigSettingsSource):
    """The configuration file, validated on its own in pydantic's strict mode before it is
    merged with the environment.

    TOML values have types, so a value of the wrong type is a mistake to report, not text to
    parse: `timeout = true` must not become a 1-second timeout, `enabled = 0` must not become
    false, `timeout = "5"` must not become 5.0. (An integer is a number: `timeout = 5` is
    fine.) The merged settings are then validated leniently, as before, because environment
    variables hold only strings (`REASONING_AGENT_PROVIDERS__OPENAI__TIMEOUT=5`).

    Strict mode covers every field of the settings class, current and future, by itself.

    :raises ConfigError: (when called) the file holds a value of the wrong type, an unknown
        key, or a value out of range; one line per problem, naming the file and the key.
    """

    def __init__(self, settings_cls: type[BaseSettings], toml_file: Path) -> None:
        super().__init__(settings_cls, toml_file)
        self.file = toml_file

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        if self.toml_data:
            _check_strictly(self.settings_cls, self.toml_data, self.file)
        return data


def _check_strictly(settings_cls: type[BaseSettings], data: dict[str, Any], file: Path) -> None:
    try:
        _without_sources(settings_cls).model_validate(data, strict=True, context=_FILE_CONTEXT)
    except ValidationError as error:
        # Left to the validation of the merged settings, which sees every source: a key that
        # is missing here may come from the environment, and a validator's check (a strategy
        # name, a fallback chain, a rule over several keys) may concern the merged values.
        problems = [
            problem
            for problem in error.errors(include_url=False)
            if problem["type"] not in {"missing", "value_error", "assertion_error"}
        ]
        if problems:
            raise ConfigError(_describe(problems, file, [data], environment=False)) from None


@cache
def _without_sources(settings_cls: type[BaseSettings]) -> type[BaseSettings]:
    """`settings_cls` with pydantic's own `__init__`: validating a dict with it reads no
    settings source. (A settings class's `__init__` gathers the sources and then validates
    their values leniently, whatever `strict=True` asked; `__pydantic_base_init__`, which
    marks pydantic's `__init__`, is how pydantic decides whether to call `__init__`.)"""
    return type(
        f"{settings_cls.__name__}File",
        (settings_cls,),
        {"__init__": BaseModel.__init__, "__module__": settings_cls.__module__},
    )


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

    The file's values must have the right TOML type (strict); the environment's strings are
    parsed (lenient). See :class:`StrictTomlSettingsSource`.

    :raises ConfigError: the file is named but missing, is not valid TOML, or holds a bad value.
    """
    if path is not None:
        file, explicit = Path(path), True
    else:
        file, explicit = config_path()
    file_data: dict[str, Any] = {}
    if file.is_file():
        try:
            with file.open("rb") as handle:
                file_data = tomllib.load(handle)  # syntax errors get a clean message here
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
        inputs = [overrides, _environment_values(), file_data]
        raise ConfigError(_describe(error.errors(include_url=False), source, inputs)) from None
    except SettingsError as error:  # a variable whose value is not the JSON its field needs
        raise ConfigError(f"environment: {_settings_error_text(error)}") from None
    settings._source = source
    return settings


def _environment_values() -> dict[str, Any]:
    """The settings the environment holds, as the merged validation saw them."""
    try:
        return EnvSettingsSource(ProvidersSettings)()
    except SettingsError:  # not reached: such a variable fails before any validation
        return {}


def _settings_error_text(error: SettingsError) -> str:
    text = str(error)
    match = re.search(r'error parsing value for field "([^"]+)" from source "(\w+)"', text)
    if match:
        return f"{ENV_PREFIX}{match.group(1).upper()}: not valid JSON for this setting"
    return text


def _describe(
    problems: Sequence[ErrorDetails],
    source: Path | None,
    inputs: Sequence[Any] | None = None,
    *,
    environment: bool = True,
) -> str:
    """One clean line per problem: where, which key, what is wrong (no pydantic URLs).

    `inputs` are the validated data (one mapping per source), when known: they tell the keys
    in an error's location from the names pydantic adds to it, so that the several errors of
    one union (`bool | Literal["auto"]`: one per member) become one line, at the right key.
    """
    by_key: dict[tuple[str | int, ...], list[ErrorDetails]] = {}
    for problem in problems:
        by_key.setdefault(_key_of(problem, inputs), []).append(problem)
    lines = []
    for key, found in by_key.items():
        loc = [str(part) for part in key]
        where = where_key_comes_from(loc, source, environment=environment)
        for message in _messages(found):
            lines.append(f"{where}: {_dotted(key)}: {message}")
    return "\n".join(lines)


_ABSENT: Final = object()


def _key_of(problem: ErrorDetails, inputs: Sequence[Any] | None) -> tuple[str | int, ...]:
    """The key a problem is about: its location without union members' and validators' names
    (`providers.x.mode.bool` is about `providers.x.mode`)."""
    loc = problem["loc"]
    if inputs is None:
        return tuple(part for part in loc if not _is_internal_loc(part))
    nodes = list(inputs)
    key: list[str | int] = []
    for index, part in enumerate(loc):
        children = [child for node in nodes if (child := _child(node, part)) is not _ABSENT]
        if children:
            key.append(part)
            nodes = children
        elif isinstance(part, int) or (index == len(loc) - 1 and problem["type"] == "missing"):
            key.append(part)  # a list index of a value a validator made; a missing key
            nodes = []
        # else: a name pydantic added (a union member, a validator), not a key of the input
    return tuple(key)


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, Mapping):
        return node.get(part, _ABSENT)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return _ABSENT


def _dotted(key: Sequence[str | int]) -> str:
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in key)
    return text.removeprefix(".") or "(top level)"


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


def _messages(problems: Sequence[ErrorDetails]) -> list[str]:
    """What is wrong with one key. Several problems at one key are a union's, one per member:
    when the value has none of the members' types, one line lists what would fit; when it has
    one member's type, that member's complaint (a range, say) is the one that matters."""
    expected = [_expected(problem) for problem in problems]
    wrong_values = [_message(p) for p, fits in zip(problems, expected, strict=True) if not fits]
    if wrong_values:
        return wrong_values
    value = problems[0].get("input")
    fits = " or ".join(dict.fromkeys(fit for fit in expected if fit))
    return [f"expected {fits}, got {_show(value)} ({_kind(value)})"]


# pydantic's words are Python's ("a valid dictionary"); a configuration's are TOML's ("a
# table"). Keyed by error type without its `_type`/`_parsing` suffix; other types keep
# pydantic's words.
_EXPECTED: Final = {
    "bool": "a boolean",
    "int": "an integer",
    "float": "a number",
    "string": "a string",
    "list": "an array",
    "tuple": "an array",
    "set": "an array",
    "frozen_set": "an array",
    "dict": "a table",
    "model": "a table",
    "model_attributes": "a table",
    "dataclass": "a table",
}


def _expected(problem: ErrorDetails) -> str | None:
    """What the key takes, when the problem is the value's type; `None` for other problems."""
    kind = problem["type"]
    if kind in {"literal_error", "enum"}:
        return str(problem.get("ctx", {}).get("expected", problem["msg"]))
    if kind == "int_from_float":
        return "an integer"
    base, _, suffix = kind.rpartition("_")
    if suffix not in {"type", "parsing"}:
        return None
    return _EXPECTED.get(base) or str(problem["msg"]).removeprefix("Input should be ").split(",")[0]


_KINDS: Final = (
    (bool, "a boolean"),  # before int: a bool is an int to Python
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (list, "an array"),
    (dict, "a table"),
    (datetime, "a date-time"),  # before date, its base class
    (date, "a date"),
    (time, "a time"),
)


def _kind(value: Any) -> str:
    """What a value is, in TOML's words."""
    for python_type, name in _KINDS:
        if isinstance(value, python_type):
            return name
    return "nothing" if value is None else f"a {type(value).__name__}"


def _show(value: Any, limit: int = 40) -> str:
    """A value as TOML writes it (`true`, not `True`), cut to `limit` characters."""
    text = _toml_text(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _toml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_text(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{key} = {_toml_text(item)}" for key, item in value.items())
        return "{ " + ", ".join(pairs) + " }" if value else "{}"
    return repr(value)


def _message(problem: ErrorDetails) -> str:
    kind = problem["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = str(problem["msg"])
    message = message.removeprefix("Value error, ")
    value = problem.get("input")
    if kind not in {"value_error"} and isinstance(value, str | int | float | bool):
        message = f"{message} (got {_show(value)})"
    return message

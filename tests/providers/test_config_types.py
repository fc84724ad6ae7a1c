"""plugins.toml's values must have the right TOML type; the environment's strings are parsed.

The table of wrong types is generated from the settings models' fields, so a field added
later is tested without touching this file: every key (top level, `[strategy]`,
`[providers.NAME]` incl. `options`, `[plugins]` incl. `choose`, `[fallback]`, the items of
arrays) gets every TOML value its type does not take, and loading must fail naming the file,
the key, the expected type and what was found.
"""

from __future__ import annotations

import json
import tomllib
import types
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings

from providers import ConfigError, ProviderConfig, ProvidersSettings, load_settings
from tests.providers.plugin_helpers import isolate


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


@dataclass(frozen=True)
class Sample:
    """A TOML value, as the error message shows it, and what it is in TOML's words."""

    value: Any
    shown: str
    kind: str


SAMPLES = (
    Sample(True, "true", "a boolean"),
    Sample(7, "7", "an integer"),
    Sample(2.5, "2.5", "a float"),
    Sample("5", "'5'", "a string"),
    Sample("true", "'true'", "a string"),
    Sample(["x"], "['x']", "an array"),
    Sample({"x": 1}, "{ x = 1 }", "a table"),
    Sample(datetime(2024, 5, 1, 12, 30), "2024-05-01T12:30:00", "a date-time"),
)

KEY_NAME = "sample"
"""The name used for a table's free keys: `[providers.sample]`, `fallback.sample`, ..."""

Key = tuple[str | int, ...]


def keys(annotation: Any, path: Key = ()) -> Iterator[tuple[Key, Any]]:
    """Every key the type `annotation` has under `path`, with its type, depth first."""
    if path:
        yield path, annotation
    for inner in members(annotation):
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            for name, field in inner.model_fields.items():
                yield from keys(field.annotation, (*path, name))
        elif get_origin(inner) is dict:
            yield from keys(get_args(inner)[1], (*path, KEY_NAME))
        elif get_origin(inner) is list:
            yield from keys(get_args(inner)[0], (*path, 0))


def members(annotation: Any) -> list[Any]:
    """The types a value may have: a union's members, without None (TOML has no null)."""
    if get_origin(annotation) is Annotated:
        return members(get_args(annotation)[0])
    if get_origin(annotation) in {Union, types.UnionType}:
        return [m for arg in get_args(annotation) for m in members(arg) if m is not type(None)]
    return [annotation]


def accepts(annotation: Any, value: Any) -> bool:
    """Whether a TOML value has a type `annotation` takes."""
    for member in members(annotation):
        origin = get_origin(member) or member
        if member is Any:
            return True
        if origin is Literal:
            if any(type(value) is type(choice) and value == choice for choice in get_args(member)):
                return True
        elif origin is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return True  # an integer is a number
        elif origin is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return True
        elif origin is date:
            if type(value) is date:  # a TOML local date; a date-time is not one
                return True
        elif isinstance(origin, type) and issubclass(origin, BaseModel):
            if isinstance(value, dict):
                return True
        elif isinstance(origin, type) and type(value) is origin:
            return True  # bool, str, list, dict: exactly
    return False


def expected(annotation: Any) -> str:
    """What the error message says a key of this type takes."""
    return " or ".join(dict.fromkeys(expected_member(m) for m in members(annotation)))


def expected_member(member: Any) -> str:
    origin = get_origin(member) or member
    if origin is Literal:
        choices = [repr(choice) for choice in get_args(member)]
        return " or ".join([", ".join(choices[:-1]), choices[-1]] if len(choices) > 1 else choices)
    if isinstance(origin, type) and issubclass(origin, BaseModel):
        return "a table"
    words = {
        date: "a valid date",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }
    return words[origin]


@dataclass(frozen=True)
class WrongType:
    key: Key
    sample: Sample
    expected: str

    @property
    def dotted(self) -> str:
        text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.key)
        return text.removeprefix(".")

    def document(self) -> dict[str, Any]:
        """The configuration holding this one wrong value."""
        value: Any = self.sample.value
        for part in reversed(self.key):
            value = [value] if isinstance(part, int) else {part: value}
        document: dict[str, Any] = value
        return document

    def message(self, file: Path) -> str:
        return (
            f"{file}: {self.dotted}: expected {self.expected}, "
            f"got {self.sample.shown} ({self.sample.kind})"
        )


def wrong_types(settings: type[BaseSettings]) -> list[WrongType]:
    return [
        WrongType(key, sample, expected(annotation))
        for key, annotation in keys(settings)
        for sample in SAMPLES
        if not accepts(annotation, sample.value)
    ]


def toml(value: Any) -> str:
    """A value in TOML (inline tables and arrays): enough for these tests' documents."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml(item) for item in value) + "]"
    return "{ " + ", ".join(f"{key} = {toml(item)}" for key, item in value.items()) + " }"


def write_document(path: Path, document: dict[str, Any]) -> Path:
    path.write_text("".join(f"{key} = {toml(value)}\n" for key, value in document.items()))
    assert tomllib.loads(path.read_text()) == document  # the file says what the test means
    return path


WRONG_TYPES = wrong_types(ProvidersSettings)


@pytest.mark.parametrize("case", WRONG_TYPES, ids=lambda c: f"{c.dotted}={c.sample.shown}")
def test_a_value_of_the_wrong_type_is_named_with_its_key_and_the_expected_type(
    tmp_path: Path, case: WrongType
) -> None:
    config = write_document(tmp_path / "plugins.toml", case.document())
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert error.value.message == case.message(config)


def test_the_table_covers_every_model_and_the_free_keys() -> None:
    covered = {case.dotted for case in WRONG_TYPES}
    for model, prefix in (
        (ProvidersSettings, ""),
        (ProvidersSettings.model_fields["strategy"].annotation, "strategy."),
        (ProvidersSettings.model_fields["plugins"].annotation, "plugins."),
        (ProviderConfig, f"providers.{KEY_NAME}."),
    ):
        assert isinstance(model, type) and issubclass(model, BaseModel)
        assert {prefix + name for name in model.model_fields} <= covered
    assert {
        f"providers.{KEY_NAME}",
        f"plugins.choose.{KEY_NAME}",
        f"fallback.{KEY_NAME}",
        f"fallback.{KEY_NAME}[0]",
        "plugins.enabled[0]",
    } <= covered


EXAMPLES = {
    "a boolean for a number": (
        "[providers.openai]\ntimeout = true\n",
        "providers.openai.timeout: expected a number, got true (a boolean)",
    ),
    "a boolean for an integer": (
        "[providers.openai]\nmax_retries = true\n",
        "providers.openai.max_retries: expected an integer, got true (a boolean)",
    ),
    "an integer for a boolean": (
        "[providers.ollama]\nenabled = 0\n",
        "providers.ollama.enabled: expected a boolean, got 0 (an integer)",
    ),
    "a string for a number": (
        '[providers.openai]\ntimeout = "5"\n',
        "providers.openai.timeout: expected a number, got '5' (a string)",
    ),
    "a string for a boolean": (
        '[plugins]\nstrict = "true"\n',
        "plugins.strict: expected a boolean, got 'true' (a string)",
    ),
    "a float for an integer": (
        "[strategy]\nsamples = 5.0\n",
        "strategy.samples: expected an integer, got 5.0 (a float)",
    ),
    "a comma-separated string for an array": (
        '[plugins]\ndisabled = "anthropic,calculator"\n',
        "plugins.disabled: expected an array, got 'anthropic,calculator' (a string)",
    ),
    "a string for a fallback chain": (
        '[fallback]\nopenai = "anthropic"\n',
        "fallback.openai: expected an array, got 'anthropic' (a string)",
    ),
}


@pytest.mark.parametrize(("text", "line"), EXAMPLES.values(), ids=EXAMPLES.keys())
def test_the_issues_examples_fail_with_one_line(tmp_path: Path, text: str, line: str) -> None:
    config = tmp_path / "plugins.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert error.value.message == f"{config}: {line}"


def test_every_wrong_type_is_reported_at_once(tmp_path: Path) -> None:
    config = tmp_path / "plugins.toml"
    config.write_text("[providers.openai]\ntimeout = true\nenabled = 1\n[strategy]\nrounds = '2'\n")
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert error.value.message.splitlines() == [
        f"{config}: strategy.rounds: expected an integer, got '2' (a string)",
        f"{config}: providers.openai.enabled: expected a boolean, got 1 (an integer)",
        f"{config}: providers.openai.timeout: expected a number, got true (a boolean)",
    ]


def test_an_integer_is_a_number(tmp_path: Path) -> None:
    config = tmp_path / "plugins.toml"
    config.write_text("[strategy]\ntemperature = 1\n[providers.openai]\ntimeout = 5\n")
    settings = load_settings(config)
    assert (settings.strategy.temperature, settings.providers["openai"].timeout) == (1.0, 5.0)


def test_options_take_any_value_their_plugin_understands(tmp_path: Path) -> None:
    config = tmp_path / "plugins.toml"
    config.write_text("[providers.echo.options]\nlatency = 0\nlabels = ['a']\nfast = true\n")
    options = load_settings(config).providers["echo"].options
    assert options == {"latency": 0, "labels": ["a"], "fast": True}


# --- the environment holds strings: they are parsed --------------------------------------------


ENVIRONMENT = {
    "REASONING_AGENT_PROVIDERS__OPENAI__TIMEOUT": ("5", ("providers", "openai", "timeout"), 5.0),
    "REASONING_AGENT_PROVIDERS__OPENAI__MAX_RETRIES": (
        "3",
        ("providers", "openai", "max_retries"),
        3,
    ),
    "REASONING_AGENT_PROVIDERS__OLLAMA__ENABLED": (
        "false",
        ("providers", "ollama", "enabled"),
        False,
    ),
    "REASONING_AGENT_STRATEGY__SAMPLES": ("9", ("strategy", "samples"), 9),
    "REASONING_AGENT_STRATEGY__TEMPERATURE": ("0.5", ("strategy", "temperature"), 0.5),
    "REASONING_AGENT_PLUGINS__STRICT": ("true", ("plugins", "strict"), True),
    "REASONING_AGENT_PLUGINS__DISABLED": (
        "anthropic, calc",
        ("plugins", "disabled"),
        ["anthropic", "calc"],
    ),
    "REASONING_AGENT_FALLBACK__OPENAI": (
        "anthropic,echo",
        ("fallback", "openai"),
        ["anthropic", "echo"],
    ),
}


def setting(settings: ProvidersSettings, path: tuple[str, ...]) -> Any:
    value: Any = settings
    for part in path:
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


@pytest.mark.parametrize(
    ("variable", "text", "path", "value"),
    [(variable, *case) for variable, case in ENVIRONMENT.items()],
    ids=ENVIRONMENT.keys(),
)
def test_the_environment_stays_lenient(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str, path: tuple[str, ...], value: Any
) -> None:
    monkeypatch.setenv(variable, text)
    assert setting(load_settings(), path) == value


def test_the_environment_overrides_a_file_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "plugins.toml"
    config.write_text("[providers.openai]\ntimeout = 30\nmax_retries = 4\n")
    monkeypatch.setenv("REASONING_AGENT_PROVIDERS__OPENAI__TIMEOUT", "5")
    openai = load_settings(config).providers["openai"]
    assert (openai.timeout, openai.max_retries) == (5.0, 4)


def test_a_wrong_type_in_the_file_is_an_error_even_when_the_environment_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "plugins.toml"
    config.write_text("[providers.openai]\ntimeout = true\n")
    monkeypatch.setenv("REASONING_AGENT_PROVIDERS__OPENAI__TIMEOUT", "5")
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert error.value.message == (
        f"{config}: providers.openai.timeout: expected a number, got true (a boolean)"
    )


def test_a_bad_environment_value_names_the_variable_and_the_expected_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REASONING_AGENT_PROVIDERS__OPENAI__ENABLED", "maybe")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert error.value.message == (
        "environment variable REASONING_AGENT_PROVIDERS__OPENAI__ENABLED: "
        "providers.openai.enabled: expected a boolean, got 'maybe' (a string)"
    )


# --- fields of kinds the models do not have yet: unions, literals, optional numbers -----------


class FutureProviderConfig(ProviderConfig):
    """ProviderConfig with fields of the kinds that are planned (`multiple_samples = "auto" |
    true | false`, a per-call deadline), under names the real model will not take."""

    test_samples: bool | Literal["auto"] = "auto"
    test_deadline: float | None = Field(default=None, gt=0)
    test_mode: Literal["fast", "careful", "exhaustive"] = "fast"


class FutureSettings(ProvidersSettings):
    # A narrower table type than the base class's: pydantic allows it, mypy's dict is invariant.
    providers: dict[str, FutureProviderConfig] = Field(  # type: ignore[assignment]
        default_factory=dict
    )


FUTURE_WRONG_TYPES = [
    case
    for case in wrong_types(FutureSettings)
    if case.dotted not in {known.dotted for known in WRONG_TYPES}
]


def test_the_generated_table_grows_with_the_models() -> None:
    added = {case.dotted for case in FUTURE_WRONG_TYPES}
    assert added == {
        f"providers.{KEY_NAME}.{name}" for name in ("test_samples", "test_deadline", "test_mode")
    }


@pytest.mark.parametrize("case", FUTURE_WRONG_TYPES, ids=lambda c: f"{c.dotted}={c.sample.shown}")
def test_union_and_literal_fields_are_checked_strictly_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: WrongType
) -> None:
    config = write_document(tmp_path / "plugins.toml", case.document())
    monkeypatch.setenv("REASONING_AGENT_CONFIG", str(config))
    with pytest.raises(ConfigError) as error:
        FutureSettings()
    assert error.value.message == case.message(config)


def test_a_union_field_takes_each_of_its_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "plugins.toml"
    config.write_text(
        "[providers.a]\ntest_samples = true\n[providers.b]\ntest_samples = 'auto'\n"
        "[providers.c]\ntest_deadline = 3\n"
    )
    monkeypatch.setenv("REASONING_AGENT_CONFIG", str(config))
    providers = FutureSettings().providers
    assert (
        providers["a"].test_samples,
        providers["b"].test_samples,
        providers["c"].test_deadline,
    ) == (True, "auto", 3.0)


def test_a_union_field_from_the_environment_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REASONING_AGENT_PROVIDERS__OPENAI__TEST_SAMPLES", "false")
    monkeypatch.setenv("REASONING_AGENT_PROVIDERS__ANTHROPIC__TEST_SAMPLES", "auto")
    providers = FutureSettings().providers
    assert (providers["openai"].test_samples, providers["anthropic"].test_samples) == (
        False,
        "auto",
    )

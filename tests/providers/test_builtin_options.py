"""The built-in providers' numeric options are bounded where they are declared
(providers/builtin_options.py): a wrong value fails that provider's creation with the option
named, and the others keep serving."""

from __future__ import annotations

import asyncio

import pytest

from providers import ProvidersSettings, load_registry


@pytest.mark.parametrize(
    ("table", "option", "value"),
    [
        ("echo", "latency", -1),
        ("echo", "latency", 10**9),
        ("openai_compatible", "max_connections", 0),
        ("openai_compatible", "retry_max_delay", 1e308),
        ("openai_compatible", "retry_initial_delay", "soon"),
        ("openai_compatible", "retry_after_cap", -5),
    ],
)
def test_an_out_of_range_option_fails_its_provider_with_the_option_named(
    table: str, option: str, value: object
) -> None:
    config: dict[str, object] = {"type": table, "options": {option: value}}
    if table == "openai_compatible":
        config["base_url"] = "http://127.0.0.1:9/v1"
    settings = ProvidersSettings.isolated(default_provider="echo", providers={"bad": config})
    registry = load_registry(settings)
    try:
        status = registry.status("bad")
        assert status.status == "failed"
        assert f"options.{option}:" in (status.reason or "")
        assert registry.status("echo").status == "available"
    finally:
        asyncio.run(registry.aclose())


def test_options_within_range_and_unknown_ones_are_accepted() -> None:
    settings = ProvidersSettings.isolated(
        default_provider="echo",
        providers={
            "slow": {"type": "echo", "options": {"latency": 0.5, "note": "kept for plugins"}},
        },
    )
    registry = load_registry(settings)
    try:
        assert registry.status("slow").status == "available"
    finally:
        asyncio.run(registry.aclose())

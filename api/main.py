"""The service's ASGI app: `uvicorn api.main:app` (and `reasoning-agent serve`) run this.

Importing this module builds the app from the environment (API_KEYS, RATE_LIMIT, ... and
plugins.toml). Tests and tools that need their own app call `api.app.create_app(settings)`.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from api.config import SettingsInvalid
from providers import ConfigError

__all__ = ["app"]


def _app_from_environment() -> FastAPI:
    """A configuration error ends the process with its message, not a traceback."""
    try:
        return create_app()
    except (SettingsInvalid, ConfigError) as error:
        raise SystemExit(f"reasoning-agent: configuration error:\n{error}") from None


app = _app_from_environment()

"""Structured logs: text or JSON lines, each with the request id, secrets redacted.

Every record passes through `redact` after formatting, message and traceback alike, so an API
key that reaches a log call by mistake is still masked. Uvicorn's own loggers are routed
through the same handler, and its access log is replaced by ours (which knows the route
template, the request id and the key id).

Alembic logs its own set-up at INFO (a "setup plugin" line per autogenerate plugin, the
migration context) on every start: noise for an operator. Its loggers are kept at WARNING
unless LOG_LEVEL=DEBUG; a migration actually applied is logged once, at INFO, by
api.persistence.migrations.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from api.redaction import redact

__all__ = ["REQUEST_ID", "JsonFormatter", "TextFormatter", "configure_logging"]

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged as a field.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "request_id", "color_message", "taskName"}
)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        entry.update(_extras(record))
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """`2024-01-01T00:00:00.000Z INFO api.access [req-id] message key=value ...`."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        request_id = getattr(record, "request_id", None)
        parts = [ts, f"{record.levelname:<7}", record.name]
        if request_id:
            parts.append(f"[{request_id}]")
        parts.append(record.getMessage())
        parts.extend(f"{key}={value}" for key, value in _extras(record).items())
        text = " ".join(parts)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return redact(text)


_HANDLER_NAME = "reasoning-agent"

# Third-party loggers whose INFO records describe their own machinery, not the service.
_QUIET_BELOW_WARNING = ("alembic",)


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    """Installs our handler on the root logger (idempotent: reconfiguring replaces it)."""
    # Neither format shows the source line, thread or process: skip collecting them for every
    # record (a stack walk, the current thread, the pid), as the logging HOWTO's "Optimization"
    # section advises. Most records are the access log's one line per request.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # Uvicorn's loggers go through our handler; its access log is replaced by api.access.
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
    # Their details come back with LOG_LEVEL=DEBUG; otherwise only their warnings and errors
    # (none below LOG_LEVEL either, when it is ERROR or CRITICAL).
    verbose = root.getEffectiveLevel() <= logging.DEBUG
    floor = max(root.getEffectiveLevel(), logging.WARNING)
    for name in _QUIET_BELOW_WARNING:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else floor)

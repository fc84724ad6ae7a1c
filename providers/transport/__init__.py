"""Shared upstream transport code for the built-in providers.

- `errors`: one mapping from upstream failures (HTTP status, network errors, bad bodies) to
  agent_core's error kinds, used by both transports, plus secret redaction.
- `retry`: retries with exponential backoff, jitter and retry-after (tenacity).
- `lean`: the default transport, one shared aiohttp session per provider with orjson.
"""

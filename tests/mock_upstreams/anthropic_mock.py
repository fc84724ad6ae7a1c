"""A mock of Anthropic's Messages API (`POST /v1/messages`).

Speaks the real wire format: `content` blocks, `stop_reason`, `usage.input_tokens` /
`output_tokens`, the `{"type": "error", "error": {type, message}}` error body, 529 overloaded,
`request-id` and the `anthropic-ratelimit-*` headers; checks `x-api-key` and
`anthropic-version` as the real API does. With `"stream": true`, the real event sequence:
`message_start` (with the input usage), `content_block_start`, `ping`, a `content_block_delta`
per text delta, `content_block_stop`, `message_delta` (stop reason and output usage),
`message_stop`; a failure mid-stream is an `error` event.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import orjson
from aiohttp import web

from tests.mock_upstreams.faults import Fault
from tests.mock_upstreams.server import (
    MockUpstream,
    apply_limits,
    content_text,
    count_tokens,
    split_deltas,
)


def event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


# The error type and message Anthropic sends for each status (its documented error types).
ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "messages: field required"),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "model: claude-nonexistent"),
    408: ("timeout_error", "Request timed out."),
    409: ("conflict_error", "Conflict."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    422: ("invalid_request_error", "Unprocessable entity."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    502: ("api_error", "Bad gateway"),
    503: ("api_error", "Service unavailable"),
    529: ("overloaded_error", "Overloaded"),
}


class AnthropicMock(MockUpstream):
    PATH = "/v1/messages"
    BASE_PATH = ""
    DEFAULT_MODEL = "claude-sonnet-4-6"
    SNAPSHOT = "-20250929"

    _ids: ClassVar[itertools.count[int]] = itertools.count(1)

    def check_request(self, request: web.Request, body: Any) -> web.Response | None:
        if self.api_key is not None:
            # The API takes the key as `x-api-key`; newer SDKs send it as a Bearer token.
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            if self.api_key not in (request.headers.get("x-api-key"), bearer):
                return self._json(401, self.error(401))
        if "anthropic-version" not in request.headers:
            return self._json(400, self.error(400, message="anthropic-version: header is required"))
        if not isinstance(body, dict):
            return self._json(400, self.error(400, message="There was an error parsing the body"))
        for required in ("model", "max_tokens", "messages"):
            if required not in body:
                return self._json(400, self.error(400, message=f"{required}: Field required"))
        for i, message in enumerate(body["messages"]):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ("user", "assistant"):
                return self._json(
                    400,
                    self.error(
                        400,
                        message=f"messages.{i}.role: Input should be 'user' or 'assistant'",
                    ),
                )
        return None

    def answer(self, body: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
        text = fault.text if fault is not None and fault.text is not None else self.responder(body)
        text, ended = apply_limits(text, body.get("max_tokens"), body.get("stop_sequences") or [])
        stop_reason, stop_sequence = "end_turn", None
        if ended == "length":
            stop_reason = "max_tokens"
        elif ended is not None:
            stop_reason, stop_sequence = "stop_sequence", ended
        if fault is not None and fault.finish_reason is not None:
            stop_reason = fault.finish_reason
        system = content_text(body.get("system"))
        input_tokens = count_tokens(system) + sum(
            count_tokens(content_text(m.get("content"))) + 3 for m in body.get("messages") or []
        )
        output_tokens = count_tokens(text)
        if fault is not None and fault.usage is not None:
            input_tokens, output_tokens = fault.usage
        model = (fault.model if fault is not None else None) or (
            str(body.get("model", self.DEFAULT_MODEL)) + self.SNAPSHOT
        )
        return {
            "id": f"msg_mock{next(self._ids)}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }

    def missing_fields_body(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"id": "msg_mock", "type": "message", "role": "assistant"}

    def stream_frames(self, body: dict[str, Any], fault: Fault | None) -> list[tuple[bytes, bool]]:
        answer = self.answer(body, fault)  # the same text, stop reason and usage as a plain one
        usage = answer["usage"]
        start = {
            **answer,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},  # the API reports a token or so here
        }
        frames = [
            (event("message_start", {"type": "message_start", "message": start}), False),
            (
                event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                ),
                False,
            ),
            (event("ping", {"type": "ping"}), False),
        ]
        for piece in split_deltas(answer["content"][0]["text"]):
            delta = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            }
            frames.append((event("content_block_delta", delta), True))
        message_delta = {
            "type": "message_delta",
            "delta": {
                "stop_reason": answer["stop_reason"],
                "stop_sequence": answer["stop_sequence"],
            },
            "usage": {"output_tokens": usage["output_tokens"]},
        }
        frames += [
            (event("content_block_stop", {"type": "content_block_stop", "index": 0}), False),
            (event("message_delta", message_delta), False),
            (event("message_stop", {"type": "message_stop"}), False),
        ]
        return frames

    def stream_error_frame(self, status: int, message: str | None) -> bytes:
        return event("error", self.error(status, message=message))

    def error(
        self, status: int, *, message: str | None = None, error_type: str | None = None
    ) -> dict[str, Any]:
        default_type, default_message = ANTHROPIC_ERRORS.get(
            status, ("api_error" if status >= 500 else "invalid_request_error", "Error")
        )
        return {
            "type": "error",
            "error": {"type": error_type or default_type, "message": message or default_message},
        }

    def error_headers(self, fault: Fault) -> dict[str, str]:
        headers = {"request-id": f"req_mock{next(self._ids)}"}
        if fault.status == 429:
            reset = (datetime.now(UTC) + timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
            headers |= {
                "anthropic-ratelimit-requests-limit": "50",
                "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": reset,
                "anthropic-ratelimit-tokens-limit": "40000",
                "anthropic-ratelimit-tokens-remaining": "0",
                "anthropic-ratelimit-tokens-reset": reset,
            }
        return headers | super().error_headers(fault)

    def success_headers(self) -> dict[str, str]:
        return {"request-id": f"req_mock{next(self._ids)}"}

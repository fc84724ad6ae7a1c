"""A mock of OpenAI's Chat Completions API (`POST /v1/chat/completions`).

Speaks the real wire format: `choices` (one per `n`), `usage`, the `{"error": {message, type,
param, code}}` error body, `x-request-id` and the `x-ratelimit-*` headers; with `"stream":
true`, `chat.completion.chunk` events (the role first, then the content deltas, the
finish_reason, the usage chunk when `stream_options.include_usage` asks for it) and
`data: [DONE]`.
"""

from __future__ import annotations

import itertools
import time
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

# The (type, code, message) OpenAI sends for each status, from its documented error codes.
OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request: 'messages' is a required property."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `gpt-nonexistent` does not exist or you do not have access to it.",
    ),
    408: ("timeout", None, "Request timed out."),
    409: ("conflict", None, "Lock timeout, please retry."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for gpt-4o-mini in organization org-mock on requests per min (RPM): "
        "Limit 3, Used 3, Requested 1. Please try again in 20s.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    529: ("server_error", None, "Overloaded."),
}


def mask_key(key: str) -> str:
    """How OpenAI quotes a wrong key back: the first and last few characters."""
    return f"{key[:3]}***{key[-4:]}" if len(key) > 8 else "***"


class OpenAIMock(MockUpstream):
    PATH = "/chat/completions"
    BASE_PATH = "/v1"
    DEFAULT_MODEL = "gpt-4.1-mini"
    SNAPSHOT = "-2024-07-18"  # OpenAI reports the dated snapshot that served a model alias

    _ids: ClassVar[itertools.count[int]] = itertools.count(1)

    # How OpenAI-compatible servers that are not OpenAI treat `n`: None honours it; a number
    # caps the choices returned (1: `n` ignored, as many proxies do).
    max_choices: int | None = None
    # Refuse any `n` above 1 with a 400, in this wording (None: accept `n`).
    refuse_n: str | None = None
    REFUSE_N_OPENAI = (
        "Unsupported value: 'n' does not support {n} with this model. Only the default (1) "
        "value is supported."
    )

    # Stream without the usage chunk whatever `stream_options` asks, as some compatible
    # servers do.
    ignores_stream_options: bool = False

    def reset(self) -> None:
        super().reset()
        self.max_choices = None
        self.refuse_n = None
        self.ignores_stream_options = False

    def check_request(self, request: web.Request, body: Any) -> web.Response | None:
        if self.api_key is not None:
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Bearer "):
                return self._json(
                    401,
                    self.error(
                        401,
                        message="You didn't provide an API key. You need to provide your API key "
                        "in an Authorization header using Bearer auth.",
                    ),
                )
            given = auth.removeprefix("Bearer ")
            if given != self.api_key:
                return self._json(
                    401,
                    self.error(
                        401,
                        message=f"Incorrect API key provided: {mask_key(given)}. You can find "
                        "your API key at https://platform.openai.com/account/api-keys.",
                    ),
                )
        if not isinstance(body, dict):
            return self._json(
                400,
                self.error(
                    400,
                    message="We could not parse the JSON body of your request.",
                ),
            )
        for required in ("model", "messages"):
            if required not in body:
                return self._json(
                    400,
                    self.error(400, message=f"Missing required parameter: '{required}'."),
                )
        n = body.get("n", 1)
        if not isinstance(n, int) or n < 1 or n > 128:
            return self._json(400, self.error(400, message=f"Invalid 'n': {n!r}."))
        if self.refuse_n is not None and n > 1:
            error = self.error(400, message=self.refuse_n.format(n=n))
            error["error"] |= {"param": "n", "code": "unsupported_value"}
            return self._json(400, error)
        return None

    def answer(self, body: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
        messages = body.get("messages") or []
        text = fault.text if fault is not None and fault.text is not None else self.responder(body)
        stop = body.get("stop") or []
        if isinstance(stop, str):
            stop = [stop]
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        text, ended = apply_limits(text, max_tokens, stop)
        finish = "length" if ended == "length" else "stop"
        if fault is not None and fault.finish_reason is not None:
            finish = fault.finish_reason
        n = int(body.get("n", 1))
        if self.max_choices is not None:
            n = min(n, self.max_choices)
        prompt_tokens = sum(count_tokens(content_text(m.get("content"))) + 4 for m in messages)
        completion_tokens = count_tokens(text) * n
        if fault is not None and fault.usage is not None:
            prompt_tokens, completion_tokens = fault.usage
        model = (fault.model if fault is not None else None) or (
            str(body.get("model", self.DEFAULT_MODEL)) + self.SNAPSHOT
        )
        return {
            "id": f"chatcmpl-mock{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish,
                }
                for i in range(n)
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": "fp_mock",
        }

    def missing_fields_body(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"id": "chatcmpl-mock", "object": "chat.completion", "created": int(time.time())}

    def stream_frames(self, body: dict[str, Any], fault: Fault | None) -> list[tuple[bytes, bool]]:
        answer = self.answer(body, fault)  # the same text, finish reason and usage as a plain one
        options = body.get("stream_options")
        usage_chunk = (
            not self.ignores_stream_options
            and isinstance(options, dict)
            and options.get("include_usage") is True
        )
        head = {
            "id": answer["id"],
            "object": "chat.completion.chunk",
            "created": answer["created"],
            "model": answer["model"],
            "system_fingerprint": answer["system_fingerprint"],
        }

        def chunk(choices: list[dict[str, Any]], usage: Any = None) -> bytes:
            payload = {**head, "choices": choices}
            if usage_chunk:  # then every chunk has `usage`, null but in the last
                payload["usage"] = usage
            return b"data: " + orjson.dumps(payload) + b"\n\n"

        def choice(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}

        choices = answer["choices"]
        frames = [
            (
                chunk([choice(c["index"], {"role": "assistant", "content": "", "refusal": None})]),
                False,
            )
            for c in choices
        ]
        for piece in split_deltas(choices[0]["message"]["content"]):
            frames += [(chunk([choice(c["index"], {"content": piece})]), True) for c in choices]
        frames += [(chunk([choice(c["index"], {}, c["finish_reason"])]), False) for c in choices]
        if usage_chunk:
            frames.append((chunk([], answer["usage"]), False))
        frames.append((b"data: [DONE]\n\n", False))
        return frames

    def stream_error_frame(self, status: int, message: str | None) -> bytes:
        return b"data: " + orjson.dumps(self.error(status, message=message)) + b"\n\n"

    def error(
        self, status: int, *, message: str | None = None, error_type: str | None = None
    ) -> dict[str, Any]:
        default_type, code, default_message = OPENAI_ERRORS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error.")
        )
        return {
            "error": {
                "message": message or default_message,
                "type": error_type or default_type,
                "param": "messages" if status == 400 else None,
                "code": code,
            }
        }

    def error_headers(self, fault: Fault) -> dict[str, str]:
        headers = {"x-request-id": f"req_mock{next(self._ids)}"}
        if fault.status == 429:
            headers |= {
                "x-ratelimit-limit-requests": "3",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "20s",
                "x-ratelimit-limit-tokens": "40000",
                "x-ratelimit-remaining-tokens": "39000",
                "x-ratelimit-reset-tokens": "1.5s",
            }
        return headers | super().error_headers(fault)

    def success_headers(self) -> dict[str, str]:
        return {"x-request-id": f"req_mock{next(self._ids)}", "openai-processing-ms": "1"}

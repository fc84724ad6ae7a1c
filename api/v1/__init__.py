"""The OpenAI-compatible face: `POST /v1/chat/completions` and `GET /v1/models`.

A thin adapter of the task pipeline, like `POST /task`: an OpenAI chat request becomes a
`TaskSpec` (`translate.py`), the pipeline runs and records it (as `source="v1"`), and the
outcome becomes a `chat.completion` or a stream of `chat.completion.chunk`s (`stream.py`).
What only this service knows (the task id, strategy, votes, budget) travels in one namespaced
extension field, `reasoning_agent`, which standard clients ignore. The contract, with
examples, is in docs/api.md ("OpenAI-compatible API").
"""

from __future__ import annotations

EXTENSION = "reasoning_agent"
"""The one extension field of requests, responses and chunks."""

__all__ = ["EXTENSION"]

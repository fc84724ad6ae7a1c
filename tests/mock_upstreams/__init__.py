"""Local mock upstreams speaking the real OpenAI and Anthropic wire formats, with faults.

    with OpenAIMock(api_key="sk-test") as upstream:
        upstream.fail_next(2, Fault.rate_limited(retry_after=0.05))
        ...  # point a client at upstream.base_url; upstream.requests records what arrived

Usable from sync and async tests (the server runs in its own thread and loop), from
subprocess tests (only `base_url` is needed) and, as `MockProcess`, from benchmarks.
"""

from tests.mock_upstreams.anthropic_mock import AnthropicMock
from tests.mock_upstreams.faults import Fault
from tests.mock_upstreams.openai_mock import OpenAIMock
from tests.mock_upstreams.process import MockProcess
from tests.mock_upstreams.server import MockUpstream, RecordedRequest
from tests.mock_upstreams.silent import SilentListener

__all__ = [
    "AnthropicMock",
    "Fault",
    "MockProcess",
    "MockUpstream",
    "OpenAIMock",
    "RecordedRequest",
    "SilentListener",
]

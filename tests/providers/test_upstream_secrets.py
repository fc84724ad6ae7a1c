"""API keys never appear in an error message, a repr or a log line, whatever the upstream
does, on either transport, and upstream messages that quote a key are redacted."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from agent_core import AgentError, ReasoningAgent
from tests.mock_upstreams import Fault
from tests.providers.upstream_helpers import KEYS, PROVIDER_KINDS, TRANSPORTS, ask

FAULTS = [
    Fault.error(400),
    Fault.error(401),
    Fault.error(403),
    Fault.rate_limited(0.01),
    Fault.error(500),
    Fault.error(529),
    Fault.html(502),
    Fault.drop(),
    Fault.drop_mid_body(),
    Fault.truncated(),
    Fault.non_json(),
    Fault.missing_fields(),
    Fault.slow(1.0),
]


def leaked(text: str) -> list[str]:
    # Any 12-character stretch of a key counts: masked forms quote parts of it.
    return [key for key in KEYS for i in range(len(key) - 11) if key[i : i + 12] in text]


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_no_fault_puts_the_key_in_an_error_a_repr_or_the_logs(
    make_provider: Any,
    upstreams: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    kind: str,
    transport: str,
) -> None:
    caplog.set_level(logging.DEBUG)  # the SDKs and aiohttp log requests at DEBUG
    provider = make_provider(kind, transport, timeout=0.3, max_retries=1)
    upstreams[kind].enqueue(*FAULTS)
    texts = [repr(provider)]
    for _ in FAULTS:
        try:
            await provider.complete(ask())
        except AgentError as error:
            texts += [str(error), repr(error), error.message]
    assert leaked("\n".join(texts)) == []
    assert leaked(caplog.text) == []


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_upstream_message_quoting_the_key_is_redacted(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    key = KEYS[PROVIDER_KINDS.index(kind)]
    upstreams[kind].enqueue(Fault.error(401, message=f"Incorrect API key provided: {key}."))
    with pytest.raises(AgentError) as caught:
        await make_provider(kind, transport).complete(ask())
    assert key not in str(caught.value)
    assert "[redacted]" in str(caught.value)


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
async def test_a_failing_task_reports_no_key_through_the_agent(
    make_provider: Any, upstreams: dict[str, Any], kind: str
) -> None:
    key = KEYS[PROVIDER_KINDS.index(kind)]
    upstreams[kind].always = Fault.error(401, message=f"bad key {key}")
    with pytest.raises(AgentError) as caught:
        await ReasoningAgent(make_provider(kind)).ask("hi")
    assert key not in str(caught.value)

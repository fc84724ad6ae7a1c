"""A vote's samples through OpenAI-compatible upstreams that do not honour `n`.

Some servers and proxies ignore `n` and answer one choice, some answer fewer than asked, some
refuse `n > 1` with a 400. A vote must still get all its samples: the missing ones go out as
single calls, concurrently, and `multiple_samples = "auto"` remembers for the provider
instance that this upstream wants one call per sample. Both transports, through the engine.
"""

from __future__ import annotations

from typing import Any

import pytest

from agent_core import InvalidRequestError, ReasoningAgent
from tests.mock_upstreams import Fault, OpenAIMock
from tests.providers.upstream_helpers import TRANSPORTS

both = pytest.mark.parametrize("transport", TRANSPORTS)


def _n_of_each_call(upstream: OpenAIMock) -> list[int]:
    return [int((r.json or {}).get("n", 1)) for r in upstream.requests]


async def _vote(provider: Any, samples: int = 8) -> Any:
    return await ReasoningAgent(provider).ask(
        "Final answer: 4", strategy="self_consistency", samples=samples
    )


@both
async def test_an_upstream_that_ignores_n_still_gets_every_vote(
    make_provider: Any, openai_upstream: OpenAIMock, transport: str
) -> None:
    openai_upstream.max_choices = 1
    provider = make_provider("openai", transport)
    answer = await _vote(provider)
    assert answer.votes == {"4": 8} and answer.calls == 8
    # One call with n=8 answered one choice; the seven missing samples were single calls.
    assert sorted(_n_of_each_call(openai_upstream)) == [1] * 7 + [8]
    notes = [step.note for step in answer.steps]
    assert notes[0] == "the call with n=8 returned 1"
    assert notes[1:] == ["single call: the call with n=8 returned 1"] * 7
    # "auto" learnt it: the next vote asks one sample per call from the start.
    assert not provider.capabilities.multiple_samples
    openai_upstream.requests.clear()
    answer = await _vote(provider)
    assert answer.votes == {"4": 8}
    assert _n_of_each_call(openai_upstream) == [1] * 8


@both
async def test_fewer_choices_than_asked_are_kept_and_the_rest_topped_up(
    make_provider: Any, openai_upstream: OpenAIMock, transport: str
) -> None:
    openai_upstream.max_choices = 3
    provider = make_provider("openai", transport)
    answer = await _vote(provider)
    assert answer.votes == {"4": 8}
    assert sorted(_n_of_each_call(openai_upstream)) == [1] * 5 + [8]
    # The upstream does honour `n`, partly: later votes still batch.
    assert provider.capabilities.multiple_samples
    assert [s.note for s in answer.steps].count("single call: the call with n=8 returned 3") == 5


@both
async def test_an_upstream_that_refuses_n_is_asked_once_per_sample_and_remembered(
    make_provider: Any, openai_upstream: OpenAIMock, transport: str
) -> None:
    openai_upstream.refuse_n = OpenAIMock.REFUSE_N_OPENAI
    provider = make_provider("openai", transport)
    answer = await _vote(provider)
    assert answer.votes == {"4": 8} and answer.calls == 8
    # The refused n=8, one single call that settled it, then seven concurrent single calls.
    assert _n_of_each_call(openai_upstream)[:2] == [8, 1]
    assert sorted(_n_of_each_call(openai_upstream)[2:]) == [1] * 7
    assert [s.note for s in answer.steps] == ["single call: the upstream refused n=8"] * 8
    openai_upstream.requests.clear()
    answer = await _vote(provider)
    assert answer.votes == {"4": 8}
    assert _n_of_each_call(openai_upstream) == [1] * 8  # no second failed attempt


@both
@pytest.mark.parametrize(
    "wording",
    [
        "'n' : number must be at most 1",
        "Only one completion choice is allowed",
        "n > 1 is not supported",
    ],
)
async def test_any_wording_of_the_refusal_is_recognised(
    make_provider: Any, openai_upstream: OpenAIMock, transport: str, wording: str
) -> None:
    openai_upstream.refuse_n = wording
    answer = await _vote(make_provider("openai", transport), samples=4)
    assert answer.votes == {"4": 4}


@both
async def test_a_request_that_is_wrong_anyway_fails_after_one_single_call(
    make_provider: Any, openai_upstream: OpenAIMock, transport: str
) -> None:
    # Both the n=8 call and the single call that checks it get the same 400: the request is
    # at fault, not `n`. The task fails with it, and `n` is not given up on.
    openai_upstream.enqueue(Fault.error(400), Fault.error(400))
    provider = make_provider("openai", transport)
    with pytest.raises(InvalidRequestError):
        await _vote(provider)
    assert _n_of_each_call(openai_upstream) == [8, 1]
    assert provider.capabilities.multiple_samples


@both
async def test_multiple_samples_true_never_falls_back(
    make_provider: Any, openai_upstream: OpenAIMock, transport: str
) -> None:
    openai_upstream.refuse_n = OpenAIMock.REFUSE_N_OPENAI
    provider = make_provider("openai", transport, multiple_samples=True)
    with pytest.raises(InvalidRequestError, match="HTTP 400"):
        await _vote(provider)
    assert _n_of_each_call(openai_upstream) == [8]


@both
async def test_multiple_samples_false_asks_one_sample_per_call(
    make_provider: Any, openai_upstream: OpenAIMock, transport: str
) -> None:
    provider = make_provider("openai", transport, multiple_samples=False)
    assert not provider.capabilities.multiple_samples
    answer = await _vote(provider)
    assert answer.votes == {"4": 8}
    assert _n_of_each_call(openai_upstream) == [1] * 8
    assert all(step.note is None for step in answer.steps)


@both
async def test_openai_compatible_asks_one_sample_per_call_unless_told(
    make_provider: Any, compatible_upstream: OpenAIMock, transport: str
) -> None:
    default = make_provider("openai_compatible", transport)
    assert not default.capabilities.multiple_samples
    assert (await _vote(default, samples=4)).votes == {"4": 4}
    assert _n_of_each_call(compatible_upstream) == [1] * 4
    compatible_upstream.requests.clear()
    batching = make_provider("openai_compatible", transport, name="vllm", multiple_samples="auto")
    assert (await _vote(batching, samples=4)).votes == {"4": 4}
    assert _n_of_each_call(compatible_upstream) == [4]


async def test_a_failed_top_up_call_is_one_missing_vote(
    make_provider: Any, openai_upstream: OpenAIMock
) -> None:
    openai_upstream.max_choices = 1
    # The batch call answers one choice; the first top-up call fails (no retries here).
    openai_upstream.enqueue(Fault.reply("Final answer: 4"), Fault.error(500))
    answer = await _vote(make_provider("openai", "lean"), samples=4)
    assert answer.votes == {"4": 3}
    assert [s.error for s in answer.steps].count("unavailable") == 1


def test_openai_batches_by_default() -> None:
    from providers.builtin.openai import OpenAIProvider

    assert OpenAIProvider.DEFAULT_MULTIPLE_SAMPLES == "auto"

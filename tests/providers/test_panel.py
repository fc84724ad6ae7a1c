"""The panel of a vote across providers: members interleaved by their counts, each call
through its member with its member's model, a member that cannot serve costing its calls."""

from __future__ import annotations

import asyncio

import pytest

from agent_core import (
    CompletionRequest,
    EchoProvider,
    Message,
    NotConfiguredError,
    ReasoningAgent,
    Task,
)
from providers.panel import Panel, PanelMember, Unavailable, _interleave


def _names(members: list[PanelMember]) -> str:
    return "".join(str(m.provider.name) for m in _interleave(members))


def test_members_are_interleaved_by_their_counts() -> None:
    a, b = EchoProvider(name="a"), EchoProvider(name="b")
    assert _names([PanelMember(a, None, 4), PanelMember(b, None, 4)]) == "abababab"
    assert _names([PanelMember(a, None, 3), PanelMember(b, None, 1)]) == "aaba"
    assert sorted(_names([PanelMember(a, None, 5), PanelMember(b, None, 2)])) == list("aaaaabb")


async def test_each_call_goes_to_its_member_with_its_model() -> None:
    panel = Panel(
        [
            PanelMember(EchoProvider(name="a"), "m-a", 1),
            PanelMember(EchoProvider(name="b"), None, 1),
        ]
    )
    request = CompletionRequest([Message("user", "hi")], model="asked")
    first, second = await asyncio.gather(panel.complete(request), panel.complete(request))
    assert (first.provider, first.model) == ("a", "m-a")
    assert (second.provider, second.model) == ("b", "echo-1")  # its own default model


async def test_a_member_that_cannot_serve_is_missing_votes() -> None:
    down = Unavailable("down", NotConfiguredError("DOWN_API_KEY is not set"))
    panel = Panel([PanelMember(EchoProvider(), None, 2), PanelMember(down, None, 2)])
    answer = await ReasoningAgent(panel).run(
        Task("Final answer: 3", strategy="self_consistency", samples=4)
    )
    assert answer.votes == {"3": 2}
    assert [s.error for s in answer.steps].count("not_configured") == 2


def test_a_panel_needs_members() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        Panel([])

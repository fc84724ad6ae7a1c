"""Votes across providers: one self_consistency task whose samples several providers answer.

A `Panel` is a provider made of members, each a configured provider (with its own client,
retries and fallback chain), an optional model and a number of samples. The driver sends a
vote's samples as single calls (a panel does not batch), and each call goes to the next member
of a fixed schedule that interleaves the members by their counts (4 openai + 4 anthropic:
openai, anthropic, openai, ...), so the calls go out concurrently, each through its member's
client. A member that fails costs its own samples (missing votes), not the task; only when
every sample fails does the task fail, as with one provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent_core import AgentError, Capabilities, Completion, CompletionRequest, Provider

__all__ = ["Panel", "PanelMember", "Unavailable"]


@dataclass(frozen=True)
class PanelMember:
    provider: Provider
    model: str | None  # None: the member's default model
    samples: int


class Panel(Provider):
    """A provider whose calls are shared out among its members (one instance per task)."""

    capabilities = Capabilities(streaming=False, multiple_samples=False)

    def __init__(self, members: Sequence[PanelMember]) -> None:
        if not members:
            raise ValueError("a panel needs at least one member")
        self.members = tuple(members)
        self.name = "+".join(str(m.provider.name) for m in self.members)
        self.schedule = _interleave(self.members)
        self._next = 0

    def __repr__(self) -> str:
        return f"<Panel {self.name}>"

    def _member(self) -> PanelMember:
        member = self.schedule[self._next % len(self.schedule)]
        self._next += 1
        return member

    async def complete(self, request: CompletionRequest) -> Completion:
        member = self._member()
        asked = request.with_model(member.model)  # None: the member's default model
        completion = await member.provider.complete(asked)
        if completion.provider is not None:
            return completion
        return Completion(
            completion.text,
            completion.model,
            finish_reason=completion.finish_reason,
            usage=completion.usage,
            provider=str(member.provider.name),
            note=completion.note,
        )

    async def aclose(self) -> None:
        """Nothing to close: the members belong to the registry."""


def _interleave(members: Sequence[PanelMember]) -> list[PanelMember]:
    """Each member `samples` times, spread evenly (a smooth weighted round-robin)."""
    total = sum(m.samples for m in members)
    credit = [0] * len(members)
    schedule: list[PanelMember] = []
    for _ in range(total):
        for i, member in enumerate(members):
            credit[i] += member.samples
        best = max(range(len(members)), key=lambda i: credit[i])
        credit[best] -= total
        schedule.append(members[best])
    return schedule


class Unavailable(Provider):
    """A panel member that cannot serve (not configured here): each of its calls fails with
    the error it was refused with, so its samples are missing votes."""

    capabilities = Capabilities()

    def __init__(self, name: str, error: AgentError) -> None:
        self.name = name
        self.error = error

    async def complete(self, request: CompletionRequest) -> Completion:
        raise type(self.error)(self.error.message, self.error.retry_after)

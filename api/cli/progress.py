"""`reasoning-agent ask`'s progress on stderr: a live line on a terminal (rich), plain lines
otherwise (logs, pipes, CI), from the task pipeline's events.

The live line shows calls done of planned, the running vote with the leader's share, and the
time spent; the plain form prints one line per finished call and per vote change (for tasks of
more than one call). stdout
keeps only the answer, so `ask ... > answer.txt` and `--json` are unchanged.
"""

from __future__ import annotations

import sys
import time
from typing import IO, TYPE_CHECKING, Protocol

from agent_core import AgentEvent, AnswerDelta, CallFinished, CallStarted, VoteTally

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["LiveProgress", "PlainProgress", "ProgressView", "progress_view"]


class ProgressView(Protocol):
    def show(self, event: AgentEvent) -> None: ...
    def close(self) -> None: ...


class _State:
    """What both views show, updated from the events."""

    def __init__(self, strategy: str) -> None:
        self.strategy = strategy
        self.started = time.monotonic()
        self.done = 0
        self.planned = 0
        self.failed = 0
        self.votes: dict[str, int] = {}

    def update(self, event: AgentEvent) -> None:
        if isinstance(event, CallStarted):
            self.planned = event.planned
        elif isinstance(event, CallFinished):
            self.done, self.planned = event.done, event.planned
            self.failed += event.step.error is not None
        elif isinstance(event, VoteTally):
            self.votes = dict(event.votes)

    def vote_text(self) -> str:
        if not self.votes:
            return ""
        ranked = sorted(self.votes.items(), key=lambda item: -item[1])
        cast = sum(self.votes.values())
        leader, count = ranked[0]
        shown = ", ".join(f"{_short(answer)}: {n}" for answer, n in ranked[:4])
        more = f", +{len(ranked) - 4} more" if len(ranked) > 4 else ""
        return f"vote {shown}{more} (leader {_short(leader)} {count / cast:.0%})"

    def line(self) -> str:
        parts = [self.strategy, f"{self.done}/{self.planned} calls"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.votes:
            parts.append(self.vote_text())
        parts.append(f"{time.monotonic() - self.started:.1f} s")
        return " · ".join(parts)


def _short(text: str, width: int = 24) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class PlainProgress:
    """One line per finished call and per new vote, for logs and pipes."""

    def __init__(self, strategy: str, stream: IO[str]) -> None:
        self.state = _State(strategy)
        self.stream = stream

    def show(self, event: AgentEvent) -> None:
        self.state.update(event)
        if self.state.planned <= 1:
            return  # one call: its answer is the output, a progress line would only repeat it
        if isinstance(event, CallFinished):
            step = event.step
            if step.error:
                outcome = f"error {step.error}"
            elif step.candidate is not None:
                outcome = f"-> {_short(step.candidate)}"
            else:
                outcome = "done"
            self._print(f"{step.purpose} {outcome}")
        elif isinstance(event, VoteTally):
            self._print(self.state.vote_text())

    def _print(self, what: str) -> None:
        state = self.state
        elapsed = time.monotonic() - state.started
        print(f"[{elapsed:5.1f}s] {state.done}/{state.planned} {what}", file=self.stream)

    def close(self) -> None:
        self.stream.flush()


class LiveProgress:
    """A single live line on a terminal, redrawn as events arrive and as time passes."""

    def __init__(self, strategy: str, stream: IO[str]) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text

        self.state = _State(strategy)
        self._text = Text
        self._live = Live(
            self._render(),
            console=Console(file=stream),
            refresh_per_second=8,
            transient=True,  # the line goes when the answer comes
            get_renderable=self._render,
        )
        self._live.start()

    def _render(self) -> Text:
        return self._text(self.state.line(), style="dim")

    def show(self, event: AgentEvent) -> None:
        if not isinstance(event, AnswerDelta):
            self.state.update(event)

    def close(self) -> None:
        self._live.stop()


def progress_view(strategy: str, stream: IO[str] | None = None) -> ProgressView:
    """The live line on a terminal, plain lines otherwise."""
    stream = stream if stream is not None else sys.stderr
    if stream.isatty():
        return LiveProgress(strategy, stream)
    return PlainProgress(strategy, stream)

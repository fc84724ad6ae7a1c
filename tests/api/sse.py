"""A small Server-Sent Events reader for the tests (what a browser's EventSource does)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    event: str
    data: Any
    id: str | None


def events(lines: Iterable[str]) -> Iterator[Event]:
    """Events from the lines of an SSE body (comments such as `: ping` are skipped)."""
    name, event_id = "message", None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield Event(name, json.loads("\n".join(data)), event_id)
            name, data, event_id = "message", [], None
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                event_id = value


def parse(body: str) -> list[Event]:
    return list(events(body.replace("\r\n", "\n").split("\n")))

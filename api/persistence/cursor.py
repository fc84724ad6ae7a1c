"""Opaque keyset-pagination cursors.

A cursor is the (created_at, id) of the last row of a page, as base64url JSON without padding.
Clients must treat it as opaque; we only promise that passing it back continues the listing.
Keyset (rather than OFFSET) pagination keeps every page as cheap as the first and does not skip
or repeat rows when new tasks arrive while a client pages through history.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

_MAX_CURSOR_CHARS = 512


def encode_cursor(created_at: datetime, task_id: str) -> str:
    payload = json.dumps(
        {"t": created_at.astimezone(UTC).isoformat(), "i": task_id}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of `encode_cursor`; any malformed input is a ValueError with a clean message."""
    if not cursor or len(cursor) > _MAX_CURSOR_CHARS:
        raise ValueError("invalid cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        created_at = datetime.fromisoformat(data["t"])
        task_id = data["i"]
        if not isinstance(task_id, str) or not task_id or created_at.tzinfo is None:
            raise ValueError("invalid cursor")
        # OverflowError: a time that leaves the calendar in UTC (0001-01-01T00:00+05:00).
        return created_at.astimezone(UTC), task_id
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError, OverflowError):
        raise ValueError("invalid cursor") from None

"""Task ids: UUIDv7 (RFC 9562) in hex, so ids sort by creation time.

Hand-written because the standard library gains `uuid.uuid7` only in Python 3.14; the layout is
48 bits of Unix milliseconds, the version and variant bits, and 74 random bits.
"""

from __future__ import annotations

import secrets
import time
import uuid

__all__ = ["new_task_id"]


def new_task_id(now_ms: int | None = None) -> str:
    """A fresh UUIDv7 as 32 lowercase hex characters."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    rand = secrets.randbits(74)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= (rand >> 62) << 64  # 12 random bits (rand_a)
    value |= 0b10 << 62  # RFC 4122 variant
    value |= rand & ((1 << 62) - 1)  # 62 random bits (rand_b)
    return uuid.UUID(int=value).hex

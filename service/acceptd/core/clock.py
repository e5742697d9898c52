"""Wall-clock helpers: milliseconds internally, RFC 3339 (UTC, `Z`) on the wire."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_rfc3339(ms: int | None) -> str | None:
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(value: str) -> int:
    """ms since the epoch of an RFC 3339 time with an offset; ValueError otherwise."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("an RFC 3339 time needs an offset (Z or +hh:mm)")
    return int(moment.timestamp() * 1000)

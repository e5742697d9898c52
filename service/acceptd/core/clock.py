"""Wall-clock helpers: milliseconds internally, RFC 3339 (UTC, `Z`) on the wire."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# The last second written, and its text up to the seconds: the times of one answer (and of
# the answers around it) mostly fall in the same second. Formatting each anew was 2 % of a
# submit (bench/README.md).
_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def to_rfc3339(ms: int | None) -> str | None:
    global _last_second
    if ms is None:
        return None
    second, millis = divmod(ms, 1000)
    last = _last_second
    if last[0] != second:
        text = datetime.fromtimestamp(second, tz=UTC).isoformat(timespec="seconds")[:-6]
        last = _last_second = (second, text)
    return f"{last[1]}.{millis:03d}Z"


def parse_rfc3339(value: str) -> int:
    """ms since the epoch of an RFC 3339 time with an offset; ValueError otherwise."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("an RFC 3339 time needs an offset (Z or +hh:mm)")
    # In whole numbers: a float of seconds loses the last millisecond of far dates.
    return (moment - _EPOCH) // timedelta(milliseconds=1)

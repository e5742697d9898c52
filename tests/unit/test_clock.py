"""Times on the wire (core/clock.py): RFC 3339 in UTC with milliseconds, exact to the
millisecond whatever the date, and read back to the same millisecond."""

from __future__ import annotations

import random

import pytest

from acceptd.core.clock import parse_rfc3339, to_rfc3339


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1_765_000_000_123, "2025-12-06T05:46:40.123Z"),
        (1_765_000_000_999, "2025-12-06T05:46:40.999Z"),
        (1_765_000_001_000, "2025-12-06T05:46:41.000Z"),  # the next second after a cached one
        (-1, "1969-12-31T23:59:59.999Z"),
        # Far ahead, where ms / 1000 as a float lost the last millisecond.
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ],
)
def test_written_exactly(ms: int, text: str) -> None:
    assert to_rfc3339(ms) == text


def test_none_stays_none() -> None:
    assert to_rfc3339(None) is None


def test_read_back_to_the_same_millisecond() -> None:
    rng = random.Random(11)
    for ms in (rng.randrange(0, 253_402_300_800_000) for _ in range(5_000)):
        text = to_rfc3339(ms)
        assert text is not None
        assert parse_rfc3339(text) == ms

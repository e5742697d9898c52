from __future__ import annotations

import email.utils
import random
import time

import pytest

from acceptd.core.caps import ConcurrencyCaps
from acceptd.dispatcher.retry_policy import next_delay, parse_retry_after

SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 36000]


def test_schedule_with_twenty_percent_jitter() -> None:
    rng = random.Random(7)
    delays = [next_delay(SCHEDULE, 1, rng=rng) for _ in range(500)]
    assert all(d is not None and 4.0 <= d <= 6.0 for d in delays)
    assert len({round(d or 0, 3) for d in delays}) > 100  # really spread out
    late = next_delay(SCHEDULE, 7, rng=rng)
    assert late is not None
    assert 28800 <= late <= 43200


def test_no_attempt_after_the_schedule_ends() -> None:
    assert next_delay(SCHEDULE, 8) is None  # 1 first attempt + 7 retries


def test_retry_after_is_honoured_but_clamped_to_twice_the_schedule() -> None:
    assert next_delay(SCHEDULE, 1, retry_after=3) == 3
    assert next_delay(SCHEDULE, 1, retry_after=3600) == 10
    assert next_delay(SCHEDULE, 2, retry_after=120) == 120


def test_retry_after_parsing() -> None:
    assert parse_retry_after("120") == 120
    future = email.utils.formatdate(time.time() + 60, usegmt=True)
    parsed = parse_retry_after(future)
    assert parsed is not None
    assert 55 <= parsed <= 61
    assert parse_retry_after(email.utils.formatdate(time.time() - 60, usegmt=True)) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-5") is None


@pytest.mark.parametrize("limit", [1, 3])
def test_concurrency_caps(limit: int) -> None:
    caps = ConcurrencyCaps(limit)
    assert all(caps.try_acquire("a") for _ in range(limit))
    assert not caps.try_acquire("a")
    assert caps.try_acquire("b")
    caps.release("a")
    assert caps.try_acquire("a")
    for _ in range(limit):
        caps.release("a")
    assert "a" not in caps.in_flight

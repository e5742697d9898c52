"""When to try a failed delivery again: the schedule, ±20 % jitter, and Retry-After (clamped)."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Sequence

JITTER = 0.2
RETRY_AFTER_STATUSES = frozenset({429, 503})


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def next_delay(
    schedule: Sequence[float],
    failed_attempt: int,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the attempt after `failed_attempt` (1-based), or None when none is left.

    The receiver's Retry-After is honoured, but never beyond twice the scheduled delay, so
    a receiver cannot park its deliveries for days.
    """
    if failed_attempt > len(schedule):
        return None
    scheduled = schedule[failed_attempt - 1]
    if retry_after is not None:
        return min(retry_after, 2 * scheduled)
    return scheduled * (rng or random).uniform(1 - JITTER, 1 + JITTER)

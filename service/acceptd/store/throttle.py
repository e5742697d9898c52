"""Enforced per-endpoint rate limits (`rate_limit_per_second`), one window per endpoint in
Redis shared by every dispatcher. A throttled attempt is not made and not counted: it waits."""

from __future__ import annotations

import random
from dataclasses import dataclass

from acceptd.store import keys
from acceptd.store.scriptcalls import Throttle
from acceptd.store.scripts import Scripts

# The window is a second plus a margin for network jitter: measured at the receiver, sends
# spaced by the limit still land at most N in any second.
WINDOW_MS = 1050


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    wait_seconds: float  # when not allowed: how long to put the attempt back
    waited_seconds: float  # when allowed: how long this delivery was held back in all


class EndpointThrottle:
    def __init__(self, scripts: Scripts) -> None:
        self._scripts = scripts

    async def take(self, endpoint_id: str, per_second: int, delivery_id: str) -> Verdict:
        first, second = await self._scripts.throttle(
            Throttle(
                window=keys.endpoint_window(endpoint_id),
                waiting=keys.endpoint_waiting(endpoint_id),
                limit=per_second,
                window_ms=WINDOW_MS,
                delivery_id=delivery_id,
            )
        )
        if int(first) == 0:
            return Verdict(True, 0.0, int(second) / 1000)
        # Those already waiting go first, in no set order: spread the retries over the time
        # their turns take, instead of every one of them asking again when the next slot frees.
        turns = int(second) / per_second
        wait = int(first) / 1000 + random.uniform(0, turns)  # noqa: S311 - spreading, not security
        return Verdict(False, wait, 0.0)

"""Per-tenant request rate limits, shared by every API process through Redis."""

from __future__ import annotations

import math

from acceptd.store import keys
from acceptd.store.scripts import Scripts


class RateLimiter:
    def __init__(self, scripts: Scripts, per_second: float, burst: int) -> None:
        self._scripts = scripts
        self._per_second = per_second
        self._burst = burst

    @property
    def enabled(self) -> bool:
        return self._per_second > 0

    async def take(self, tenant: str) -> int:
        """0 when the request may go ahead, else whole seconds until it may (Retry-After)."""
        allowed, wait_ms = await self._scripts.rate_limit(
            keys=[keys.rate_limit(tenant)], args=[self._per_second, self._burst]
        )
        return 0 if allowed else max(1, math.ceil(int(wait_ms) / 1000))

"""Request rate limits per tenant, and per client address on the routes that need no API
key, shared by every API process through Redis."""

from __future__ import annotations

import math

from acceptd.store import keys
from acceptd.store.scriptcalls import RateLimit
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
        return await self._take(keys.rate_limit(tenant))

    async def take_for_address(self, address: str) -> int:
        """The same, for a caller without an API key, by its network address."""
        return await self._take(keys.address_rate_limit(address))

    async def take_test_event(self, sender: str, share: int | None = None) -> int:
        """The same, for the test events a tenant (or one of its portal sessions,
        `tenant:session`) sends its endpoints; `share`: a smaller bucket than the limiter's."""
        if share is None:
            return await self._take(keys.test_event_limit(sender))
        return await self._take(keys.test_event_limit(sender), share)

    async def _take(self, bucket: str, burst: int | None = None) -> int:
        # A smaller bucket refills in proportion: it empties and fills like the whole one.
        burst = burst or self._burst
        per_second = self._per_second * burst / self._burst
        call = RateLimit(bucket=bucket, tokens_per_second=per_second, burst=burst)
        allowed, wait_ms = await self._scripts.rate_limit(call)
        return 0 if allowed else max(1, math.ceil(int(wait_ms) / 1000))

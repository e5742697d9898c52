"""Failed API-key attempts per client address, shared by every API process: past a few a
minute, that address's further attempts are answered 429 without the key being looked up,
so a scanner can neither confirm a guess nor make us look up keys as fast as it can send."""

from __future__ import annotations

from redis.asyncio import Redis

from acceptd.store import keys

WINDOW_SECONDS = 60


class AuthFailures:
    def __init__(self, redis: Redis, per_minute: int) -> None:
        self._redis = redis
        self._per_minute = per_minute

    @property
    def enabled(self) -> bool:
        return self._per_minute > 0

    async def blocked_for(self, address: str) -> int:
        """0 when `address` may present a key, else whole seconds until it may again."""
        key = keys.auth_failures(address)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.pttl(key)
            count, ttl_ms = await pipe.execute()
        if count is None or int(count) < self._per_minute:
            return 0
        return max(1, -(-int(ttl_ms) // 1000)) if ttl_ms > 0 else WINDOW_SECONDS

    async def record(self, address: str) -> None:
        """One more failure; the window starts at the first failure and lasts a minute."""
        key = keys.auth_failures(address)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS, nx=True)
            await pipe.execute()

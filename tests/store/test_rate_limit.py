"""The per-tenant token bucket every API process shares."""

from __future__ import annotations

from redis.asyncio import Redis

from acceptd.store import keys
from acceptd.store.ratelimit import RateLimiter
from acceptd.store.scripts import Scripts


async def test_a_burst_is_allowed_then_refused_with_a_wait(scripts: Scripts) -> None:
    limiter = RateLimiter(scripts, per_second=1, burst=5)
    assert [await limiter.take("t1") for _ in range(5)] == [0] * 5
    assert await limiter.take("t1") == 1  # whole seconds until a token is back
    assert await limiter.take("t2") == 0  # each tenant has its own bucket


async def test_tokens_come_back_at_the_rate(scripts: Scripts, redis: Redis) -> None:
    limiter = RateLimiter(scripts, per_second=10, burst=1)
    assert await limiter.take("t1") == 0
    assert await limiter.take("t1") == 1
    # Age the bucket by a second instead of sleeping: ten tokens' worth, capped at the burst.
    at = int(await redis.hget(keys.rate_limit("t1"), "at"))  # type: ignore[misc]
    await redis.hset(keys.rate_limit("t1"), "at", str(at - 1000))  # type: ignore[misc]
    assert await limiter.take("t1") == 0
    assert await limiter.take("t1") == 1
    assert 0 < await redis.pttl(keys.rate_limit("t1")) <= 1100

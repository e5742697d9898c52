"""Reads shared by the stores whose records are hashes listed in a lexically ordered index
(jobs, batches): pages of ids newest first, and many records in one round trip."""

from __future__ import annotations

from redis.asyncio import Redis


async def newest_ids(redis: Redis, index: str, before: str | None, count: int) -> list[str]:
    """Ids in `index` (sorted set, all scores 0, ids sort by time), newest first, strictly
    older than `before`."""
    upper = f"({before}" if before else "+"
    found: list[str] = await redis.zrevrangebylex(index, upper, "-", start=0, num=count)
    return found


async def hashes(redis: Redis, record_keys: list[str]) -> list[dict[str, str]]:
    """HGETALL of each key, pipelined; {} for a key that does not exist."""
    async with redis.pipeline(transaction=False) as pipe:
        for key in record_keys:
            pipe.hgetall(key)
        found: list[dict[str, str]] = await pipe.execute()
    return found

"""The store's scripts called directly against the session's real Valkey: no API, no worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from acceptd.store.scripts import Scripts

RETENTION_SECONDS = 3600


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    conn: Redis = Redis.from_url(redis_url, decode_responses=True)
    yield conn
    await conn.aclose()


@pytest.fixture
def scripts(redis: Redis) -> Scripts:
    return Scripts(redis)

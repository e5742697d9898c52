"""The store's scripts called directly against the session's real Valkey (or, with
ACCEPTD_TEST_TOPOLOGY=cluster, a real Valkey Cluster): no API, no worker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import cast

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from acceptd.core.settings import Settings
from acceptd.store.cluster import connect_shards
from acceptd.store.scripts import Scripts
from acceptd.store.shards import OneServer, Shards
from tests.support.constants import TEST_SHARDS, TEST_TOPOLOGY

RETENTION_SECONDS = 3600


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client for the tests' own reads: on a cluster, redis-py's cluster client, which
    sends each key's command to the node holding it."""
    if TEST_TOPOLOGY == "cluster":
        cluster = RedisCluster.from_url(redis_url, decode_responses=True)
        yield cast(Redis, cluster)
        await cluster.aclose()
        return
    conn: Redis = Redis.from_url(redis_url, decode_responses=True)
    yield conn
    await conn.aclose()


@pytest.fixture
async def shards(redis: Redis, redis_url: str) -> AsyncIterator[Shards]:
    """The store's clients, as the roles open them."""
    if TEST_TOPOLOGY != "cluster":
        yield OneServer(redis, TEST_SHARDS)
        return
    opened = await connect_shards(Settings(redis_url=redis_url, shards=TEST_SHARDS))
    yield opened
    await opened.aclose()


@contextlib.asynccontextmanager
async def sharded(redis: Redis, redis_url: str, count: int) -> AsyncIterator[Shards]:
    """`count` shards, whatever ACCEPTD_TEST_SHARDS says: on the one server, or the cluster."""
    if TEST_TOPOLOGY != "cluster":
        yield OneServer(redis, count)
        return
    opened = await connect_shards(Settings(redis_url=redis_url, shards=count))
    yield opened
    await opened.aclose()


@pytest.fixture
async def three(redis: Redis, redis_url: str) -> AsyncIterator[Shards]:
    async with sharded(redis, redis_url, 3) as shards:
        yield shards


@pytest.fixture
def scripts(shards: Shards) -> Scripts:
    return Scripts(shards)

"""A tenant's event -> endpoint count, which decides whether a status change writes an event."""

from __future__ import annotations

from redis.asyncio import Redis

from acceptd.core.credentials import generate_master_key
from acceptd.core.secretbox import SecretBox
from acceptd.store import keys
from acceptd.store.endpoints import EndpointStore
from acceptd.store.scripts import Scripts


async def subs(redis: Redis) -> dict[str, str]:
    found: dict[str, str] = await redis.hgetall(keys.tenant_event_subscriptions("t1"))  # type: ignore[misc]
    return found


async def test_counts_follow_create_disable_and_delete(scripts: Scripts, redis: Redis) -> None:
    store = EndpointStore(redis, scripts, SecretBox(generate_master_key()))
    one, _ = await store.create("t1", "https://a.example/", ["job.succeeded"], "")
    two, _ = await store.create("t1", "https://b.example/", ["job.succeeded", "job.failed"], "")
    assert await subs(redis) == {"job.succeeded": "2", "job.failed": "1"}
    await store.update(two.id, "t1", disabled=True)
    assert await subs(redis) == {"job.succeeded": "1"}
    await store.delete(one.id, "t1")
    assert await subs(redis) == {}


async def test_a_recount_from_a_stale_read_writes_nothing(scripts: Scripts, redis: Redis) -> None:
    store = EndpointStore(redis, scripts, SecretBox(generate_master_key()))
    await store.create("t1", "https://a.example/", ["job.succeeded"], "")
    stale = await scripts.recount_subs(
        keys=[keys.tenant_endpoints("t1"), keys.tenant_event_subscriptions("t1")], args=[]
    )
    assert stale == 0
    assert await subs(redis) == {"job.succeeded": "1"}

"""Idempotency-Key records: claim, release, and what a finished create leaves behind."""

from __future__ import annotations

from redis.asyncio import Redis

from acceptd.core import ids
from acceptd.store import keys
from acceptd.store.idempotency import HeldKey, IdempotencyStore
from acceptd.store.jobs import JobStore, NewJob
from acceptd.store.placement import job_shard
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from tests.support.constants import TEST_SHARDS

# The key record lives on the key's shard (store/placement.py), where its create lands too:
# a key whose shard is the last, so a create that ignored it would land elsewhere (shard 0).
SHARD = TEST_SHARDS - 1
IDEMPOTENCY_KEY = next(
    key
    for key in (f"k{n}" for n in range(1000))
    if job_shard("t1", TEST_SHARDS, idempotency=key) == SHARD
)
KEY = keys.idempotency("t1", IDEMPOTENCY_KEY, SHARD)


async def test_a_claim_is_held_until_released(scripts: Scripts) -> None:
    store = IdempotencyStore(scripts)
    assert await store.claim(KEY, "aa", 60) == ("claimed", None)
    assert await store.claim(KEY, "aa", 60) == ("busy", None)
    assert await store.claim(KEY, "bb", 60) == ("mismatch", None)
    await store.release(KEY, "bb")  # not the holder's fingerprint: no effect
    assert await store.claim(KEY, "aa", 60) == ("busy", None)
    await store.release(KEY, "aa")
    assert await store.claim(KEY, "aa", 60) == ("claimed", None)


async def test_a_claim_lapses_with_its_lock(scripts: Scripts, redis: Redis) -> None:
    store = IdempotencyStore(scripts)
    await store.claim(KEY, "aa", 60)
    assert 0 < await redis.pttl(KEY) <= 60_000


async def test_the_create_marks_the_key_done_with_what_it_made(
    shards: Shards, scripts: Scripts, redis: Redis
) -> None:
    store = IdempotencyStore(scripts)
    await store.claim(KEY, "aa", 60)
    held = HeldKey(KEY, "aa", 86_400, SHARD)
    job = await JobStore(shards, scripts, 60).create(
        NewJob("t1", "demo.echo", {}, {}, None), idempotency=held
    )
    assert ids.shard_of(job.id) == SHARD  # one script wrote both: they share a slot
    assert await store.claim(KEY, "aa", 60) == ("done", job.id)
    assert await store.claim(KEY, "bb", 60) == ("mismatch", None)
    assert 86_000_000 < await redis.pttl(KEY) <= 86_400_000
    await store.release(KEY, "aa")  # a done key is never released
    assert await store.claim(KEY, "aa", 60) == ("done", job.id)

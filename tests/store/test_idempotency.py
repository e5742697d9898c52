"""Idempotency-Key records: claim, release, and what a finished create leaves behind."""

from __future__ import annotations

from redis.asyncio import Redis

from acceptd.store import keys
from acceptd.store.idempotency import HeldKey, IdempotencyStore
from acceptd.store.jobs import JobStore, NewJob
from acceptd.store.scripts import Scripts

KEY = keys.idempotency("t1", "k")


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
    scripts: Scripts, redis: Redis
) -> None:
    store = IdempotencyStore(scripts)
    await store.claim(KEY, "aa", 60)
    held = HeldKey(KEY, "aa", 86_400)
    job = await JobStore(redis, scripts, 60).create(
        NewJob("t1", "demo.echo", {}, {}, None), idempotency=held
    )
    assert await store.claim(KEY, "aa", 60) == ("done", job.id)
    assert await store.claim(KEY, "bb", 60) == ("mismatch", None)
    assert 86_000_000 < await redis.pttl(KEY) <= 86_400_000
    await store.release(KEY, "aa")  # a done key is never released
    assert await store.claim(KEY, "aa", 60) == ("done", job.id)

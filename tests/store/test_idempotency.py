"""Idempotency-Key records: claim, release, and what a finished create leaves behind."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from acceptd.core import ids
from acceptd.store import keys
from acceptd.store.batches import BatchStore, NewBatch, NewItem
from acceptd.store.idempotency import ClaimLapsedError, HeldKey, IdempotencyStore
from acceptd.store.job_record import NewJob
from acceptd.store.jobs import JobStore
from acceptd.store.outages import is_outage
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
    outcome, claim = await store.claim(KEY, "aa", 60)
    assert outcome == "claimed"
    assert claim is not None
    assert claim.startswith("P aa ")
    assert await store.claim(KEY, "aa", 60) == ("busy", None)
    assert await store.claim(KEY, "bb", 60) == ("mismatch", None)
    await store.release(KEY, "P aa someone-else")  # not the holder's claim: no effect
    assert await store.claim(KEY, "aa", 60) == ("busy", None)
    await store.release(KEY, claim)
    assert (await store.claim(KEY, "aa", 60))[0] == "claimed"


async def test_a_claim_lapses_with_its_lock(scripts: Scripts, redis: Redis) -> None:
    store = IdempotencyStore(scripts)
    await store.claim(KEY, "aa", 60)
    assert 0 < await redis.pttl(KEY) <= 60_000


async def held(store: IdempotencyStore) -> HeldKey:
    outcome, claim = await store.claim(KEY, "aa", 60)
    assert outcome == "claimed"
    assert claim is not None
    return HeldKey(KEY, "aa", 86_400, SHARD, claim)


async def test_the_create_marks_the_key_done_with_what_it_made(
    shards: Shards, scripts: Scripts, redis: Redis
) -> None:
    store = IdempotencyStore(scripts)
    job = await JobStore(shards, scripts, 60).create(
        NewJob("t1", "demo.echo", {}, {}, None), idempotency=await held(store)
    )
    assert ids.shard_of(job.id) == SHARD  # one script wrote both: they share a slot
    assert await store.claim(KEY, "aa", 60) == ("done", job.id)
    assert await store.claim(KEY, "bb", 60) == ("mismatch", None)
    assert 86_000_000 < await redis.pttl(KEY) <= 86_400_000
    await store.release(KEY, "P aa x")  # a done key is never released
    assert await store.claim(KEY, "aa", 60) == ("done", job.id)


async def test_a_request_whose_claim_lapsed_creates_nothing_and_its_retry_creates_once(
    shards: Shards, scripts: Scripts, redis: Redis
) -> None:
    """The first request stalled past its lock (a failover, a slow store); its client's
    retry claimed the key meanwhile. The first one's create is refused, so the job is made
    once, by the retry; the same for a batch."""
    store, jobs = IdempotencyStore(scripts), JobStore(shards, scripts, 60)
    batches = BatchStore(shards, scripts, jobs)
    first = await held(store)
    await redis.delete(KEY)  # its lock lapsed
    retry = await held(store)
    with pytest.raises(ClaimLapsedError):
        await jobs.create(NewJob("t1", "demo.echo", {}, {}, None), idempotency=first)
    with pytest.raises(ClaimLapsedError):
        await batches.create(
            NewBatch("t1", [NewItem("demo.echo", {}, None)], None, False, {}), idempotency=first
        )
    assert await jobs.page_ids("t1", None, 10) == []
    assert await batches.page_ids("t1", None, 10) == []
    made = await jobs.create(NewJob("t1", "demo.echo", {}, {}, None), idempotency=retry)
    assert await jobs.page_ids("t1", None, 10) == [made.id]
    assert await store.claim(KEY, "aa", 60) == ("done", made.id)
    assert is_outage(ClaimLapsedError())  # the API answers 503 with Retry-After

"""Index entries whose records expired are dropped as writes happen, window by window."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from acceptd.core import ids
from acceptd.store import keys, records
from acceptd.store.job_record import NewJob
from acceptd.store.jobs import JobStore
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from tests.support.constants import TEST_SHARDS

# The shard these tests file their index entries on: the last, so a key built for shard 0
# by mistake would not find them.
SHARD = TEST_SHARDS - 1


async def test_a_trim_walks_the_whole_index_past_records_that_stay(
    redis: Redis, shards: Shards, scripts: Scripts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "TRIM_BATCH", 4)
    index = keys.tenant_jobs("t1", SHARD)
    # Ids of the index's shard (its last two characters), oldest first.
    suffix = ids.new_id("job", SHARD)[-2:]
    job_ids = [f"job_{i:024d}{suffix}" for i in range(10)]
    assert {ids.shard_of(job_id) for job_id in job_ids} == {SHARD}
    await redis.zadd(index, dict.fromkeys(job_ids, 0))
    for kept in job_ids[:4] + job_ids[8:]:  # the oldest window never expires (unfinished jobs)
        await redis.hset(keys.job(kept), "status", "running")  # type: ignore[misc]
    trimmer = records.IndexTrimmer(shards, 60_000, scripts)
    dropped = [await trimmer.trim(index, keys.job, "job") for _ in range(4)]
    assert sum(dropped) == 4  # job_ids[4:8], although the first window held none to drop
    assert await redis.zrange(index, 0, -1) == job_ids[:4] + job_ids[8:]


async def test_submits_trim_their_tenants_index(
    redis: Redis, shards: Shards, scripts: Scripts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "TRIM_EVERY", 1)
    jobs = JobStore(shards, scripts, 0)  # every record is past its retention at once
    # A submit trims its own shard's index: one ordering key files every job on one shard.
    new = NewJob("t1", "demo.echo", {}, {}, None, ordering_key="one-shard")
    first = [await jobs.create(new) for _ in range(3)]
    for job in first:
        await redis.delete(keys.job(job.id))  # as if their retention ran out
    await asyncio.sleep(0.01)  # older than the retention (0) by at least a millisecond
    latest = await jobs.create(new)
    await jobs.trimmer.idle()  # it trims in the background, off the submit's latency
    shard = ids.shard_of(latest.id)
    assert {ids.shard_of(job.id) for job in first} == {shard}
    assert await redis.zrange(keys.tenant_jobs("t1", shard), 0, -1) == [latest.id]


async def test_a_trim_never_looks_at_entries_younger_than_the_retention(
    redis: Redis, shards: Shards, scripts: Scripts
) -> None:
    """No record can expire before its retention: those entries cost no EXISTS."""
    index = keys.tenant_jobs("t1", SHARD)
    young = ids.new_id("job", SHARD)  # its record "expired" (deleted), yet it is younger
    await redis.zadd(index, {young: 0})
    trimmer = records.IndexTrimmer(shards, 60_000, scripts)
    assert await trimmer.trim(index, keys.job, "job") == 0
    assert await redis.zrange(index, 0, -1) == [young]

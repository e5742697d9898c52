"""Index entries whose records expired are dropped as writes happen, window by window."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from acceptd.core import ids
from acceptd.store import keys, records
from acceptd.store.jobs import JobStore, NewJob
from acceptd.store.scripts import Scripts


async def test_a_trim_walks_the_whole_index_past_records_that_stay(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "TRIM_BATCH", 4)
    index = keys.tenant_jobs("t1")
    ids = [f"job_{i:026d}" for i in range(10)]
    await redis.zadd(index, dict.fromkeys(ids, 0))
    for kept in ids[:4] + ids[8:]:  # the oldest window never expires (unfinished jobs)
        await redis.hset(keys.job(kept), "status", "running")  # type: ignore[misc]
    trimmer = records.IndexTrimmer(redis, retention_ms=60_000)
    dropped = [await trimmer.trim(index, keys.job, "job") for _ in range(4)]
    assert sum(dropped) == 4  # ids[4:8], although the first window held none to drop
    assert await redis.zrange(index, 0, -1) == ids[:4] + ids[8:]


async def test_submits_trim_their_tenants_index(
    redis: Redis, scripts: Scripts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "TRIM_EVERY", 1)
    jobs = JobStore(redis, scripts, 0)  # every record is past its retention at once
    first = [await jobs.create(NewJob("t1", "demo.echo", {}, {}, None)) for _ in range(3)]
    for job in first:
        await redis.delete(keys.job(job.id))  # as if their retention ran out
    await asyncio.sleep(0.01)  # older than the retention (0) by at least a millisecond
    latest = await jobs.create(NewJob("t1", "demo.echo", {}, {}, None))
    await jobs.trimmer.idle()  # it trims in the background, off the submit's latency
    assert await redis.zrange(keys.tenant_jobs("t1"), 0, -1) == [latest.id]


async def test_a_trim_never_looks_at_entries_younger_than_the_retention(redis: Redis) -> None:
    """No record can expire before its retention: those entries cost no EXISTS."""
    index = keys.tenant_jobs("t1")
    young = ids.new_id("job")  # its record "expired" (deleted), yet it is younger
    await redis.zadd(index, {young: 0})
    trimmer = records.IndexTrimmer(redis, retention_ms=60_000)
    assert await trimmer.trim(index, keys.job, "job") == 0
    assert await redis.zrange(index, 0, -1) == [young]

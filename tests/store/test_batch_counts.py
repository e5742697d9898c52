"""A batch's counts per status follow its items through every transition, and the last
terminal item completes the batch exactly once."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from acceptd.core import ids
from acceptd.core.statuses import JobStatus
from acceptd.store import keys
from acceptd.store.batches import BatchRecord, BatchStore, NewBatch, NewItem
from acceptd.store.job_record import JobRef
from acceptd.store.jobs import JobStore
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from tests.store.conftest import RETENTION_SECONDS

TENANT = "t1"


@pytest.fixture
def jobs(shards: Shards, scripts: Scripts) -> JobStore:
    return JobStore(shards, scripts, RETENTION_SECONDS)


@pytest.fixture
def batches(shards: Shards, scripts: Scripts, jobs: JobStore) -> BatchStore:
    return BatchStore(shards, scripts, jobs)


async def new_batch(batches: BatchStore, size: int, callback: str | None = None) -> BatchRecord:
    items = [NewItem("demo.echo", {"value": i}, None) for i in range(size)]
    return await batches.create(NewBatch(TENANT, items, callback, False, {}))


async def refs(redis: Redis, batch: BatchRecord) -> list[JobRef]:
    """The batch's items (a small batch has them all on its home shard)."""
    job_ids = await redis.zrange(keys.batch_jobs(batch.id, ids.shard_of(batch.id)), 0, -1)
    return [JobRef(job_id, TENANT, batch.id) for job_id in job_ids]


async def counts(batches: BatchStore, batch: BatchRecord) -> dict[str, int]:
    found = await batches.get(batch.id)
    assert found is not None
    return {status: n for status, n in found.counts.items() if n}


async def test_counts_move_with_each_transition(
    batches: BatchStore, jobs: JobStore, redis: Redis
) -> None:
    batch = await new_batch(batches, 3)
    assert await counts(batches, batch) == {"queued": 3}
    one, two, three = await refs(redis, batch)
    queued = await redis.get(keys.arq_job(one.id))
    assert queued is not None
    assert batch.id in queued

    await jobs.start(one, max_attempts=3)
    await jobs.start(two, max_attempts=3)
    assert await counts(batches, batch) == {"queued": 1, "running": 2}
    await jobs.requeue(two, refund_attempt=True)
    assert await counts(batches, batch) == {"queued": 2, "running": 1}
    await jobs.finish(one, JobStatus.SUCCEEDED, result=1)
    await jobs.cancel(two)
    assert await counts(batches, batch) == {"queued": 1, "succeeded": 1, "canceled": 1}
    assert (await batches.get(batch.id)).completed_ms is None  # type: ignore[union-attr]

    await jobs.start(three, max_attempts=3)
    await jobs.finish(three, JobStatus.FAILED, error={"title": "x"})
    done = await batches.get(batch.id)
    assert done is not None
    assert done.completed_ms is not None
    assert await counts(batches, batch) == {"succeeded": 1, "failed": 1, "canceled": 1}
    # A late verdict for a finished item moves nothing.
    await jobs.finish(one, JobStatus.FAILED, error={"title": "late"})
    assert await counts(batches, batch) == {"succeeded": 1, "failed": 1, "canceled": 1}


async def test_the_last_item_emits_batch_completed_once(
    batches: BatchStore, jobs: JobStore, redis: Redis
) -> None:
    batch = await new_batch(batches, 2, callback="https://example.com/hook")
    for ref in await refs(redis, batch):
        await jobs.start(ref, max_attempts=3)
        await jobs.finish(ref, JobStatus.SUCCEEDED, result=None)
    # A batch and its items live on the batch's shard: so do their events.
    shard = ids.shard_of(batch.id)
    events = [f for _id, f in await redis.xrange(keys.events_stream(shard))]
    assert [f["event"] for f in events if "batch" in f] == ["batch.completed"]
    assert await redis.pttl(keys.batch(batch.id)) > 0
    assert await redis.pttl(keys.batch_jobs(batch.id, shard)) > 0


async def test_canceling_a_batch_cancels_every_open_item(
    batches: BatchStore, jobs: JobStore, redis: Redis
) -> None:
    batch = await new_batch(batches, 4)
    first, *rest = await refs(redis, batch)
    await jobs.start(first, max_attempts=3)
    await jobs.finish(first, JobStatus.SUCCEEDED, result=None)
    queue = keys.job_queue(ids.shard_of(batch.id))  # a batch's items live on its shard
    for ref in rest:
        assert ids.shard_of(ref.id) == ids.shard_of(batch.id)
        assert await redis.zscore(queue, ref.id) is not None
    await batches.cancel(batch)
    assert await counts(batches, batch) == {"succeeded": 1, "canceled": 3}
    for ref in rest:  # no worker will pick the canceled ones up
        assert await redis.zscore(queue, ref.id) is None

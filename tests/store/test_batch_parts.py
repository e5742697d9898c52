"""A batch over many shards: its items spread over every shard, counts summed over its
parts stay exact, the home completes it once when every part has finished, and it is
written all or nothing: a part refused on one shard, or an API that stops between the
parts and the batch, leaves no item behind, or every item queued. Three shards, on the one
server or the cluster."""

from __future__ import annotations

import pytest

from acceptd.core import ids
from acceptd.core.statuses import JobStatus
from acceptd.store import keys
from acceptd.store.batches import (
    PART_DONE_EVENT,
    BatchRecord,
    BatchStore,
    NewBatch,
    NewItem,
)
from acceptd.store.job_record import JobRef, NewJob
from acceptd.store.jobs import QUOTA_FLOOR_JOBS, JobStore, QuotaExceededError
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from tests.store.conftest import RETENTION_SECONDS
from tests.store.test_shards import ordering_key_on
from tests.support.sharded import merged, summed

TENANT = "t1"
# Enough items without an ordering key to fill every one of three shards.
SIZE = 300


@pytest.fixture
def jobs(three: Shards) -> JobStore:
    return JobStore(three, Scripts(three), RETENTION_SECONDS)


@pytest.fixture
def batches(three: Shards, jobs: JobStore) -> BatchStore:
    return BatchStore(three, Scripts(three), jobs)


def new_batch(size: int = SIZE, callback: str | None = "https://example.com/hook") -> NewBatch:
    items = [NewItem("demo.echo", {"value": i}, None) for i in range(size)]
    return NewBatch(TENANT, items, callback, False, {})


async def item_ids(three: Shards, batch_id: str) -> list[str]:
    return await merged(
        three, lambda pipe, shard: pipe.zrange(keys.batch_jobs(batch_id, shard), 0, -1)
    )


async def queued(three: Shards) -> int:
    return await summed(three, lambda pipe, shard: pipe.zcard(keys.job_queue(shard)))


async def pending(three: Shards) -> int:
    return await summed(three, lambda pipe, shard: pipe.zcard(keys.batch_parts_pending(shard)))


async def tenant_jobs(three: Shards) -> int:
    return await summed(three, lambda pipe, shard: pipe.zcard(keys.tenant_jobs(TENANT, shard)))


async def stored_bytes(three: Shards) -> int:
    return await summed(
        three, lambda pipe, shard: pipe.hget(keys.tenant_usage(TENANT, shard), "bytes")
    )


async def events(three: Shards, shard: int) -> list[dict[str, str]]:
    return [fields for _id, fields in await three.of(shard).xrange(keys.events_stream(shard))]


async def test_a_big_batch_spreads_over_every_shard_and_lists_each_item_once(
    batches: BatchStore, jobs: JobStore, three: Shards
) -> None:
    batch = await batches.create(new_batch())
    home = ids.shard_of(batch.id)
    assert sorted([home, *batch.part_shards]) == [0, 1, 2]
    made = await item_ids(three, batch.id)
    assert len(made) == len(set(made)) == SIZE
    on_shard = [sum(ids.shard_of(i) == shard for i in made) for shard in range(3)]
    assert on_shard == [100, 100, 100]
    assert batch.counts["queued"] == SIZE
    assert batch.total == SIZE
    assert await queued(three) == SIZE
    assert await pending(three) == 0
    listed = await jobs.page_ids(TENANT, None, SIZE + 1, batch_id=batch.id)
    assert listed == sorted(made, reverse=True)
    # Paged: every item once, newest first, whatever shard it is on.
    paged: list[str] = []
    cursor = None
    while page := await jobs.page_ids(TENANT, cursor, 64, batch_id=batch.id):
        paged += page
        cursor = page[-1]
    assert paged == listed
    [again] = await batches.get_many([batch.id])
    assert again == batch


async def test_counts_sum_the_parts_and_the_home_completes_the_batch_once(
    batches: BatchStore, jobs: JobStore, three: Shards
) -> None:
    batch = await batches.create(new_batch())
    home = ids.shard_of(batch.id)
    refs = [JobRef(i, TENANT, batch.id) for i in await item_ids(three, batch.id)]
    for n, ref in enumerate(refs):
        await jobs.start(ref, max_attempts=3)
        status = JobStatus.SUCCEEDED if n % 3 else JobStatus.FAILED
        await jobs.finish(ref, status, result=None if status == JobStatus.FAILED else n)
        if n == 149:
            middle = await batches.get(batch.id)
            assert middle is not None
            assert middle.completed_ms is None
            assert middle.counts["queued"] == 150
            assert middle.terminal_count == 150
    done = await batches.get(batch.id)
    assert done is not None
    assert done.counts["succeeded"] == 200
    assert done.counts["failed"] == 100
    # Every item ended: complete to a reader at once, at the time the last part finished.
    assert done.completed_ms is not None
    # Each part told its shard's stream, and nobody has told the home yet: no event.
    told = {
        shard: [f for f in await events(three, shard) if f["event"] == PART_DONE_EVENT]
        for shard in range(3)
    }
    assert all(len(found) == 1 and found[0]["batch"] == batch.id for found in told.values())
    # No part expires before the batch completes: its counts are the batch's until then
    # (a part that finished early, expiring while another runs, would drop out of them).
    for shard in range(3):
        assert await three.of(shard).pttl(keys.batch_part(batch.id, shard)) == -1
    assert not [f for f in await events(three, home) if f["event"] == "batch.completed"]
    # What the dispatcher does with each (dispatcher/fanout.py), twice: a replayed event
    # counts nothing twice, and the batch completes once.
    for _ in range(2):
        for shard in range(3):
            await batches.part_done(batch.id, TENANT, shard)
    completed = [f for f in await events(three, home) if f["event"] == "batch.completed"]
    assert [f["batch"] for f in completed] == [batch.id]
    for shard in range(3):
        assert await three.of(shard).pttl(keys.batch_part(batch.id, shard)) > 0
        assert await three.of(shard).pttl(keys.batch_jobs(batch.id, shard)) > 0


async def test_canceling_a_batch_over_many_shards_cancels_every_item(
    batches: BatchStore, three: Shards
) -> None:
    batch = await batches.create(new_batch())
    await batches.cancel(batch)
    canceled = await batches.get(batch.id)
    assert canceled is not None
    assert canceled.counts["canceled"] == SIZE
    assert canceled.completed_ms is not None
    assert await queued(three) == 0


async def test_a_part_refused_on_one_shard_leaves_nothing_anywhere(three: Shards) -> None:
    jobs = JobStore(three, Scripts(three), RETENTION_SECONDS, quota=3 * QUOTA_FLOOR_JOBS)
    batches = BatchStore(three, Scripts(three), jobs)
    # Shard 2 holds the tenant's share already: the batch's part there is refused.
    for _ in range(QUOTA_FLOOR_JOBS):
        key = ordering_key_on(2)
        await jobs.create(NewJob(TENANT, "demo.echo", {}, {}, None, ordering_key=key))
    before = (await queued(three), await tenant_jobs(three), await stored_bytes(three))
    with pytest.raises(QuotaExceededError):
        await batches.create(new_batch(3 * 64))  # enough to spread over all three shards
    assert (await queued(three), await tenant_jobs(three), await stored_bytes(three)) == before
    assert await pending(three) == 0
    assert await batches.page_ids(TENANT, None, 10) == []
    left = await merged(three, lambda pipe, shard: pipe.keys("*batch:bat_*"))
    assert left == []


async def until_recovered(batches: BatchStore, three: Shards) -> None:
    """Makes every held part due now (as if its time had come) and lets a worker look."""
    for shard in range(3):
        client = three.of(shard)
        for batch_id in await client.zrange(keys.batch_parts_pending(shard), 0, -1):
            part = keys.batch_part(batch_id, shard)
            await client.hset(part, "opens_by", "0")  # type: ignore[misc]  # can no longer open
            await client.zadd(keys.batch_parts_pending(shard), {batch_id: 0})
        await batches.recover_parts(shard)


async def test_parts_whose_batch_never_opened_are_rolled_back(
    batches: BatchStore, three: Shards, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = (await queued(three), await tenant_jobs(three), await stored_bytes(three))

    async def stops(*_args: object) -> int:
        raise ConnectionError("the API lost its connection, then stopped")

    monkeypatch.setattr(batches, "_open_home", stops)
    with pytest.raises(ConnectionError):
        await batches.create(new_batch())
    assert await pending(three) == 2  # the other two parts, held
    assert await queued(three) == before[0]  # nothing of the batch runs
    # Not yet due: a worker leaves them, and says when to look again.
    for shard in range(3):
        due = await batches.recover_parts(shard)
        assert due is None or due > 0
    assert await pending(three) == 2
    await until_recovered(batches, three)
    assert await pending(three) == 0
    assert (await queued(three), await tenant_jobs(three), await stored_bytes(three)) == before
    left = await merged(three, lambda pipe, shard: pipe.keys("*batch:bat_*"))
    assert left == []


async def test_parts_of_a_batch_that_opened_are_queued_by_a_worker(
    batches: BatchStore, three: Shards, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def stops(*_args: object) -> int:
        raise ConnectionError("the API stopped after the batch opened")

    monkeypatch.setattr(batches, "_release", stops)
    with pytest.raises(ConnectionError):
        await batches.create(new_batch())
    assert await pending(three) == 2
    [batch_id] = await batches.page_ids(TENANT, None, 10)
    home = ids.shard_of(batch_id)
    assert await queued(three) == 100  # the home's part only
    monkeypatch.undo()
    await until_recovered(batches, three)
    assert await pending(three) == 0
    assert await queued(three) == SIZE
    batch = await batches.get(batch_id)
    assert isinstance(batch, BatchRecord)
    assert batch.counts["queued"] == SIZE
    assert sorted([home, *batch.part_shards]) == [0, 1, 2]


async def test_an_item_of_a_held_part_cannot_end_before_its_batch_exists(
    batches: BatchStore, jobs: JobStore, three: Shards, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held items are in the tenant's index (they count against its quota), so a tenant can
    find one before its batch opens. Canceling it then would finish the part unheard (the
    home does not exist yet), and the batch would never complete: refused until released."""

    async def stops(*_args: object) -> int:
        raise ConnectionError("the API stopped after the batch opened")

    monkeypatch.setattr(batches, "_release", stops)
    with pytest.raises(ConnectionError):
        await batches.create(new_batch())
    [batch_id] = await batches.page_ids(TENANT, None, 10)
    home = ids.shard_of(batch_id)
    held = [i for i in await item_ids(three, batch_id) if ids.shard_of(i) != home]
    outcome, _ = await jobs.cancel(JobRef(held[0], TENANT, batch_id))
    assert outcome == "held"
    monkeypatch.undo()
    await until_recovered(batches, three)
    outcome, record = await jobs.cancel(JobRef(held[0], TENANT, batch_id))
    assert outcome == "canceled"
    assert record is not None

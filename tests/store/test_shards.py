"""A tenant's jobs spread over the shards: its lists read every shard and merge them, and
its job quota and byte budget are checked on the shard a submit lands on (each shard admits
its share, with a floor). Three shards on the one server, whatever ACCEPTD_TEST_SHARDS says."""

from __future__ import annotations

import itertools

import pytest

from acceptd.core import ids
from acceptd.store import keys
from acceptd.store.batches import BatchStore, NewBatch, NewItem
from acceptd.store.job_record import NewJob
from acceptd.store.jobs import QUOTA_FLOOR_JOBS, JobStore, QuotaExceededError
from acceptd.store.placement import job_shard
from acceptd.store.scripts import Scripts
from acceptd.store.shards import OneServer, Shards
from acceptd.store.usage import ByteBudgetExceededError, stored_by
from tests.store.conftest import RETENTION_SECONDS

SHARDS = 3


@pytest.fixture
def jobs(three: Shards) -> JobStore:
    return JobStore(three, Scripts(three), RETENTION_SECONDS)


def ordering_key_on(shard: int, tenant: str = "t1") -> str:
    """An ordering key whose jobs land on `shard` (store/placement.py)."""
    return next(
        key
        for key in (f"key-{n}" for n in itertools.count())
        if job_shard(tenant, SHARDS, ordering_key=key) == shard
    )


def new_job(shard: int | None = None, tenant: str = "t1", size: int = 0) -> NewJob:
    """A job for `shard` (None: wherever placement draws it)."""
    key = None if shard is None else ordering_key_on(shard, tenant)
    return NewJob(tenant, "demo.echo", {"v": "x" * size}, {}, None, ordering_key=key)


async def submit_spread(jobs: JobStore) -> list[str]:
    """Jobs of t1 on every shard, unevenly (a run of them on one), in creation order, with
    another tenant's between them; their ids."""
    plan = [0, 1, 2, 1, 1, 1, 1, 1, None, 2, 0, None, 0, 2, 1, None, 2, 2, 2, 0]
    made = []
    for shard in plan:
        made.append((await jobs.create(new_job(shard))).id)
        await jobs.create(new_job(shard, tenant="t2"))
    assert {ids.shard_of(job_id) for job_id in made} == set(range(SHARDS))
    assert made == sorted(made)  # ids sort by creation, whatever their shard
    return made


async def test_a_tenants_jobs_are_listed_newest_first_each_once(jobs: JobStore) -> None:
    made = await submit_spread(jobs)
    listed = await jobs.page_ids("t1", None, 100)
    assert listed == made[::-1]
    assert len(set(listed)) == len(listed)
    assert await jobs.page_ids("t1", None, 5) == made[::-1][:5]
    assert await jobs.page_ids("nobody", None, 100) == []


async def test_paging_with_a_cursor_walks_every_shard_to_the_end(jobs: JobStore) -> None:
    made = await submit_spread(jobs)
    for size in (1, 3, 4, 7, len(made)):
        pages: list[list[str]] = []
        cursor: str | None = None
        while page := await jobs.page_ids("t1", cursor, size):
            pages.append(page)
            cursor = page[-1]  # an id of whichever shard: the next page is older than it
        assert [job_id for page in pages for job_id in page] == made[::-1]
        assert all(len(page) == size for page in pages[:-1])


async def test_a_page_can_stop_at_a_lower_bound(jobs: JobStore) -> None:
    made = await submit_spread(jobs)
    newest_first = made[::-1]
    assert await jobs.page_ids("t1", None, 100, at_least=made[5]) == newest_first[:-5]
    before = newest_first[3]
    assert await jobs.page_ids("t1", before, 100, at_least=made[5]) == newest_first[4:-5]


async def test_a_tenants_batches_are_listed_across_shards(three: Shards, jobs: JobStore) -> None:
    batches = BatchStore(three, Scripts(three), jobs)
    made = []
    for shard in (2, 0, 1, 1, 0, 2):
        item = NewItem("demo.echo", {}, None, ordering_key_on(shard))
        made.append((await batches.create(NewBatch("t1", [item], None, False, {}))).id)
    assert [ids.shard_of(batch_id) for batch_id in made] == [2, 0, 1, 1, 0, 2]
    assert await batches.page_ids("t1", None, 100) == made[::-1]
    assert await batches.page_ids("t1", made[3], 2) == [made[2], made[1]]


async def test_each_shard_admits_its_share_of_the_job_quota(three: Shards) -> None:
    scripts = Scripts(three)
    # An even share of a big quota; a small one is admitted whole on each shard (the floor).
    big = JobStore(three, scripts, RETENTION_SECONDS, quota=30 * QUOTA_FLOOR_JOBS)
    assert big.job_share == 10 * QUOTA_FLOOR_JOBS
    small = JobStore(three, scripts, RETENTION_SECONDS, quota=3)
    assert small.job_share == 3
    assert JobStore(three, scripts, RETENTION_SECONDS).job_share == 0  # no quota
    assert JobStore(OneServer(three.control, 1), scripts, 0, quota=3 * 30).job_share == 90

    for _ in range(3):
        await small.create(new_job(1))
    with pytest.raises(QuotaExceededError):
        await small.create(new_job(1))
    assert await three.control.zcard(keys.tenant_jobs("t1", 1)) == 3  # nothing was written
    # Another shard holds its own share; another tenant its own quota.
    assert ids.shard_of((await small.create(new_job(0))).id) == 0
    await small.create(new_job(1, tenant="t2"))


async def test_each_shard_admits_its_share_of_the_byte_budget(three: Shards) -> None:
    jobs = JobStore(three, Scripts(three), RETENTION_SECONDS, byte_budget=5_000)
    assert jobs.byte_share == 5_000  # under the floor: the whole budget on each shard
    admitted = [await jobs.create(new_job(2, size=1_000)) for _ in range(3)]
    on_shard = await stored_by(three, "t1")
    assert 3_000 < on_shard <= 5_000
    with pytest.raises(ByteBudgetExceededError):
        await jobs.create(new_job(2, size=1_000))
    assert await stored_by(three, "t1") == on_shard  # the refused one was given back
    assert await jobs.page_ids("t1", None, 10) == [job.id for job in admitted][::-1]
    await jobs.create(new_job(0, size=1_000))  # another shard's share
    assert await stored_by(three, "t1") > on_shard

"""The fair-share queue's scripts (store/fairshare.py, store/lua/_fair.lua, the fair_* scripts
of queue/lua) called directly, on one shard: tags interleave tenants, weights and lanes
order them, limits park and wake jobs, and no way out of the queue leaks a slot or
strands a parked job. The end-to-end behaviour, with real workers, is
tests/e2e/test_fair_share.py's."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from acceptd.core.clock import now_ms
from acceptd.core.statuses import JobStatus
from acceptd.queue.runscripts import (
    FairFinish,
    FairHandback,
    FairPickup,
    FairRetry,
    FairRun,
    RunScripts,
    fair_run,
)
from acceptd.store import keys
from acceptd.store.fairshare import TenantLimits, apply_limits, shares
from acceptd.store.job_record import JobRecord, NewJob
from acceptd.store.jobs import JobStore
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from tests.store.conftest import RETENTION_SECONDS, sharded

SHARD = 0


@pytest.fixture
async def one(redis: Redis, redis_url: str) -> AsyncIterator[Shards]:
    """One shard: every job of every tenant in one queue."""
    async with sharded(redis, redis_url, 1) as shards:
        yield shards


class Runs:
    """A worker's steps on the fair-share queue, with the calls queue/leanworker.py makes
    (queue/runscripts.py)."""

    def __init__(self, shards: Shards) -> None:
        self.client = shards.of(SHARD)
        self._scripts = RunScripts(shards)
        self.tokens: dict[str, str] = {}

    @staticmethod
    def _run(job_id: str) -> FairRun:
        return fair_run(job_id, keys.job_queue(SHARD))

    async def pickup(self, job_id: str, lease_ms: int = 60_000) -> Any:
        token = self.tokens[job_id] = secrets.token_hex(8)
        call = FairPickup(run=self._run(job_id), lease_ms=lease_ms, token=token)
        return await self._scripts.fair_pickup(call, client=self.client)

    async def finish(self, job_id: str, token: str | None = None, only_if_ended: int = 0) -> Any:
        call = FairFinish(
            run=self._run(job_id),
            wakeup=keys.wakeup(keys.JOBS_WAKEUP, SHARD),
            token=token or self.tokens[job_id],
            only_if_ended=only_if_ended,
        )
        return await self._scripts.fair_finish(call, client=self.client)

    async def hand_back(self, job_id: str) -> None:
        call = FairHandback(
            run=self._run(job_id),
            wakeup=keys.wakeup(keys.JOBS_WAKEUP, SHARD),
            token=self.tokens[job_id],
        )
        await self._scripts.fair_handback(call, client=self.client)

    async def again(self, job_id: str, delay_ms: int) -> None:
        now = now_ms()
        call = FairRetry(
            run=self._run(job_id),
            retrying=keys.retrying_jobs(SHARD),
            due_ms=now + delay_ms,
            payload=b"{}",
            now_ms=now,
            jobs_wakeup=keys.wakeup(keys.JOBS_WAKEUP, SHARD),
            scheduler_wakeup=keys.wakeup(keys.SCHEDULED_WAKEUP, SHARD),
            token=self.tokens[job_id],
        )
        await self._scripts.fair_retry(call, client=self.client)

    async def running(self) -> list[str]:
        found: list[str] = await self.client.zrange(keys.running_jobs(SHARD), 0, -1)
        return found

    async def queue(self) -> list[str]:
        found: list[str] = await self.client.zrange(keys.job_queue(SHARD), 0, -1)
        return found

    async def parked(self) -> list[str]:
        found: list[str] = await self.client.zrange(keys.parked_jobs(SHARD), 0, -1)
        return found

    async def state(self) -> dict[str, str]:
        found: dict[str, str] = await self.client.hgetall(keys.fair_share(SHARD))  # type: ignore[misc]
        return found


@pytest.fixture
async def store(one: Shards) -> AsyncIterator[JobStore]:
    await _clear(one)
    yield JobStore(one, Scripts(one), RETENTION_SECONDS)
    await _clear(one)


async def _clear(shards: Shards) -> None:
    client = shards.of(SHARD)
    for key in (
        keys.job_queue(SHARD),
        keys.fair_share(SHARD),
        keys.parked_jobs(SHARD),
        keys.running_jobs(SHARD),
        keys.retrying_jobs(SHARD),
    ):
        await client.delete(key)


@pytest.fixture
def runs(one: Shards) -> Runs:
    return Runs(one)


async def submit(store: JobStore, tenant: str, count: int = 1, **given: Any) -> list[JobRecord]:
    return [
        await store.create(NewJob(tenant, "demo.echo", {"value": i}, {}, None, **given))
        for i in range(count)
    ]


async def test_a_tenant_with_nothing_queued_goes_before_anothers_backlog(
    store: JobStore, runs: Runs
) -> None:
    backlog = await submit(store, "a", 50)
    assert await runs.pickup(backlog[0].id)  # a worker is at a's first job
    (late,) = await submit(store, "b")
    order = await runs.queue()
    assert order.index(late.id) <= 2  # behind a's job running and, at most, a's next one
    assert order[-1] == backlog[-1].id  # a's own jobs keep their order


async def test_weights_three_to_one_interleave_three_to_one(
    store: JobStore, runs: Runs, one: Shards
) -> None:
    await apply_limits(one, "heavy", TenantLimits(weight=3))
    heavy = {job.id for job in await submit(store, "heavy", 40)}
    await submit(store, "light", 40)
    first = (await runs.queue())[:40]
    assert sum(job_id in heavy for job_id in first) == 30
    await apply_limits(one, "heavy", TenantLimits())


async def test_the_high_lane_goes_first_and_is_shared_too(store: JobStore, runs: Runs) -> None:
    normal = await submit(store, "a", 5)
    high_a = await submit(store, "a", 3, priority="high")
    high_b = await submit(store, "b", 3, priority="high")
    order = await runs.queue()
    assert set(order[:6]) == {job.id for job in high_a + high_b}
    assert order[:2] in ([high_a[0].id, high_b[0].id], [high_b[0].id, high_a[0].id])
    assert order[6:] == [job.id for job in normal]


async def test_a_capped_tenants_job_parks_and_goes_back_when_a_slot_frees(
    store: JobStore, runs: Runs, one: Shards
) -> None:
    await apply_limits(one, "a", TenantLimits(max_running=1))
    first, second = await submit(store, "a", 2)
    assert (await runs.pickup(first.id))[0]
    assert await runs.pickup(second.id) == "parked"
    assert (await runs.queue(), await runs.running()) == ([], [first.id])
    (other,) = await submit(store, "b")  # another tenant is not held back
    assert (await runs.pickup(other.id))[0]
    await runs.finish(first.id)
    assert await runs.queue() == [second.id]
    assert (await runs.pickup(second.id))[0]
    assert (await runs.state())["r:a"] == "1"
    await apply_limits(one, "a", TenantLimits())


async def test_raising_a_cap_wakes_as_many_as_now_fit(
    store: JobStore, runs: Runs, one: Shards
) -> None:
    await apply_limits(one, "a", TenantLimits(max_running=1))
    jobs = await submit(store, "a", 150)
    for job in jobs:
        await runs.pickup(job.id)
    assert len(await runs.parked()) == 149
    await apply_limits(one, "a", TenantLimits(max_running=121))
    assert len(await runs.queue()) == 120
    await apply_limits(one, "a", TenantLimits())
    assert len(await runs.queue()) == 149


async def test_canceling_a_job_handed_back_at_shutdown_frees_its_slot(
    store: JobStore, runs: Runs, one: Shards
) -> None:
    """A stopping worker hands its job back (queued, holding its slot); a cancel then must
    free the slot, or the key would run nothing ever again."""
    first, second = await submit(store, "a", 2, concurrency_key="k", concurrency_limit=1)
    assert (await runs.pickup(first.id))[0]
    await store.start(first.ref, 5)
    assert await runs.pickup(second.id) == "parked"
    await store.requeue(first.ref, refund_attempt=True)
    await runs.hand_back(first.id)
    assert await runs.queue() == [first.id]
    outcome, _ = await store.cancel(first.ref)
    assert outcome == "canceled"
    assert await runs.queue() == [second.id]
    assert (await runs.pickup(second.id))[0]
    state = await runs.state()
    assert state["k:a\nk"] == "1"
    assert f"s:{first.id}" not in state


async def test_a_run_whose_lease_lapsed_runs_again_in_its_slot(store: JobStore, runs: Runs) -> None:
    """Its worker died: the scheduler's sweep puts it back with its tag, still holding the
    key's slot, so the job parked behind it stays parked and the key never runs two."""
    first, second = await submit(store, "a", 2, concurrency_key="k", concurrency_limit=1)
    assert (await runs.pickup(first.id, lease_ms=50))[0]
    assert await runs.pickup(second.id) == "parked"
    back, next_ms = await store.recover_lapsed(SHARD)  # not yet: it says when to look
    assert back == 0
    assert next_ms is not None
    assert next_ms <= now_ms() + 50
    stale = runs.tokens[first.id]
    await asyncio.sleep(0.1)  # the 50 ms lease runs out
    back, next_ms = await store.recover_lapsed(SHARD)
    assert (back, next_ms) == (1, None)
    assert await runs.queue() == [first.id]
    assert (await runs.pickup(first.id))[0]
    assert (await runs.state())["k:a\nk"] == "1"
    assert await runs.parked() != []
    # The first run, alive after all, ends: it must not end the run that replaced it.
    assert await runs.finish(first.id, token=stale) == "lost"
    assert await runs.running() == [first.id]
    assert (await runs.state())["k:a\nk"] == "1"
    await runs.finish(first.id)
    assert await runs.queue() == [second.id]


async def test_canceling_parked_and_woken_jobs_strands_nothing(store: JobStore, runs: Runs) -> None:
    running, woken, parked, last = await submit(
        store, "a", 4, concurrency_key="k", concurrency_limit=1
    )
    assert (await runs.pickup(running.id))[0]
    for job in (woken, parked, last):
        assert await runs.pickup(job.id) == "parked"
    assert (await store.cancel(parked.ref))[0] == "canceled"  # out of the parked set
    await runs.finish(running.id)  # wakes `woken`
    assert await runs.queue() == [woken.id]
    assert (await store.cancel(woken.ref))[0] == "canceled"  # before a worker took it
    assert await runs.queue() == [last.id]  # its turn went to the next
    assert await runs.parked() == []
    assert (await runs.state())["q:a"] == "1"


async def test_a_tenant_that_canceled_its_backlog_starts_at_the_front(
    store: JobStore, runs: Runs
) -> None:
    others = await submit(store, "b", 20)
    assert (await runs.pickup(others[0].id))[0]
    for job in await submit(store, "a", 30):
        await store.cancel(job.ref)
    (fresh,) = await submit(store, "a")
    assert (await runs.queue()).index(fresh.id) <= 2


async def test_a_release_wakes_one_job_per_limit_whatever_the_finishing_jobs_limit(
    store: JobStore, runs: Runs
) -> None:
    wide = (await submit(store, "a", 1, concurrency_key="k", concurrency_limit=1000))[0]
    narrow = await submit(store, "a", 1, concurrency_key="k", concurrency_limit=1)
    assert (await runs.pickup(wide.id))[0]
    for job in await submit(store, "a", 20, concurrency_key="k", concurrency_limit=1):
        assert await runs.pickup(job.id) == "parked"
    assert await runs.pickup(narrow[0].id) == "parked"
    await runs.finish(wide.id)
    assert len(await runs.queue()) == 1


async def test_shares_count_each_tenants_queued_and_running(
    store: JobStore, runs: Runs, one: Shards
) -> None:
    jobs = await submit(store, "a", 3)
    await submit(store, "b", 2)
    assert (await runs.pickup(jobs[0].id))[0]
    found = {share.tenant: share for share in await shares(one)}
    assert (found["a"].queued, found["a"].running) == (2, 1)
    assert (found["b"].queued, found["b"].running) == (2, 0)
    await runs.finish(jobs[0].id)
    found = {share.tenant: share for share in await shares(one)}
    assert (found["a"].queued, found["a"].running) == (2, 0)


async def test_canceling_a_handed_back_job_passes_its_slot_to_one_job(
    store: JobStore, runs: Runs, one: Shards
) -> None:
    await apply_limits(one, "a", TenantLimits(max_running=1))
    first, *others = await submit(store, "a", 4)
    assert (await runs.pickup(first.id))[0]
    for job in others:
        assert await runs.pickup(job.id) == "parked"
    await runs.hand_back(first.id)
    assert (await store.cancel(first.ref))[0] == "canceled"
    assert await runs.queue() == [others[0].id]  # one slot freed: one job woken
    await apply_limits(one, "a", TenantLimits())


async def test_a_job_canceled_while_its_run_asks_to_retry_leaves_nothing_behind(
    store: JobStore, runs: Runs, one: Shards
) -> None:
    (job,) = await submit(store, "a")
    assert (await runs.pickup(job.id))[0]
    await store.start(job.ref, 5)
    await store.requeue(job.ref, refund_attempt=False)  # the handler asked to retry...
    assert (await store.cancel(job.ref))[0] == "canceled"  # ...and a cancel came first
    await runs.again(job.id, delay_ms=1000)
    client = one.of(SHARD)
    assert await client.exists(keys.arq_job(job.id)) == 0
    assert await client.zcard(keys.retrying_jobs(SHARD)) == 0
    assert await runs.running() == []
    assert "q:a" not in await runs.state()


async def test_a_run_ended_with_its_outcome_ends_only_once_the_record_has_ended(
    store: JobStore, runs: Runs, one: Shards
) -> None:
    """The worker sends the end of a run with the job's outcome, in one round trip
    (queue/leanworker.py _run_ender): if the outcome was not written, the record is still
    running and the run stays as it was (its marker, its running entry, its tenant's slot),
    for the worker to end or run again as before; once the record has ended, it ends."""
    await apply_limits(one, "a", TenantLimits(max_running=1))
    job, behind = await submit(store, "a", 2)
    assert (await runs.pickup(job.id))[0]
    assert await runs.pickup(behind.id) == "parked"
    started = await store.start(job.ref, max_attempts=3)
    assert started.outcome == "running"
    assert await runs.finish(job.id, only_if_ended=1) == "unfinished"
    assert await runs.running() == [job.id]
    assert await runs.client.exists(keys.arq_in_progress(job.id)) == 1
    assert (await runs.state())["r:a"] == "1"
    assert await store.finish(job.ref, JobStatus.SUCCEEDED, result={"ok": True}) == "ok"
    assert await runs.finish(job.id, only_if_ended=1) == 0
    assert await runs.running() == []
    assert await runs.client.exists(keys.arq_in_progress(job.id), keys.arq_job(job.id)) == 0
    assert await runs.queue() == [behind.id]  # its slot freed: the parked job went back
    await apply_limits(one, "a", TenantLimits())


async def test_a_hand_back_that_lands_before_the_runs_outcome_leaves_nothing_queued(
    store: JobStore, runs: Runs, one: Shards
) -> None:
    """A stopping worker hands a run back while the job's outcome and the end of the run
    are on their way (queue/leanworker.py: they leave in one batch, the hand-back in
    another): once they land, the job has ended, and the entry the hand-back queued goes
    with the run. Left behind, the next pickup would find its arq job gone ("expired", a
    job counted failed) or park a finished job."""
    await apply_limits(one, "a", TenantLimits(max_running=1))
    job, behind = await submit(store, "a", 2)
    assert (await runs.pickup(job.id))[0]
    assert await runs.pickup(behind.id) == "parked"
    assert (await store.start(job.ref, max_attempts=3)).outcome == "running"
    await runs.hand_back(job.id)
    assert await runs.queue() == [job.id]
    assert await store.finish(job.ref, JobStatus.SUCCEEDED, result={"ok": True}) == "ok"
    assert await runs.finish(job.id, only_if_ended=1) == 0
    assert await runs.queue() == [behind.id]  # its slot freed: the parked job went back
    assert await runs.running() == []
    assert await runs.client.exists(keys.arq_in_progress(job.id), keys.arq_job(job.id)) == 0
    found = {share.tenant: share for share in await shares(one)}
    assert (found["a"].queued, found["a"].running) == (1, 0)
    await apply_limits(one, "a", TenantLimits())


async def _lapsed_then_retried_elsewhere(
    store: JobStore, runs: Runs, one: Shards
) -> tuple[JobRecord, JobRecord, JobRecord, str]:
    """Tenant a, capped at 1. Worker A runs J; its lease lapses while A lives on (stalled
    or cut off) and the sweep puts J back in its slot; worker B takes J, whose handler asks
    for a retry now (J queued afresh without a slot, Q woken); a third worker takes Q, so
    J parks, and T parks behind it. Returns J, Q, T and A's token: A's outcome is still on
    its way, and no marker of another run fences it."""
    await apply_limits(one, "a", TenantLimits(max_running=1))
    j, q = await submit(store, "a", 2)
    assert (await runs.pickup(j.id, lease_ms=50))[0]
    stale = runs.tokens[j.id]
    assert (await store.start(j.ref, max_attempts=5)).outcome == "running"
    assert await runs.pickup(q.id) == "parked"
    await asyncio.sleep(0.1)
    assert (await store.recover_lapsed(SHARD))[0] == 1
    assert (await runs.pickup(j.id))[0]
    assert (await store.start(j.ref, max_attempts=5)).outcome == "running"
    await store.requeue(j.ref, refund_attempt=False)
    await runs.again(j.id, delay_ms=0)
    assert set(await runs.queue()) == {j.id, q.id}
    assert (await runs.pickup(q.id))[0]
    assert await runs.pickup(j.id) == "parked"
    (t,) = await submit(store, "a")
    assert await runs.pickup(t.id) == "parked"
    return j, q, t, stale


async def test_a_late_runs_end_passes_on_the_turn_of_the_woken_entry_it_removes(
    store: JobStore, runs: Runs, one: Shards
) -> None:
    """J, woken from the parked set without a slot, holds the tenant's next turn when A's
    outcome lands: its entry goes as a cancel's does, and the turn passes to T (removed
    with nothing passed on, T would stay parked with nothing of its tenant running)."""
    j, q, t, stale = await _lapsed_then_retried_elsewhere(store, runs, one)
    await runs.finish(q.id)
    assert await runs.queue() == [j.id]
    assert await store.finish(j.ref, JobStatus.SUCCEEDED, result={"by": "A"}) == "ok"
    assert await runs.finish(j.id, token=stale, only_if_ended=1) == 0
    assert await runs.queue() == [t.id]
    assert await runs.parked() == []
    found = {share.tenant: share for share in await shares(one)}
    assert (found["a"].queued, found["a"].running) == (1, 0)
    await apply_limits(one, "a", TenantLimits())


async def test_a_late_runs_end_takes_a_parked_finished_job_out_of_the_parked_set(
    store: JobStore, runs: Runs, one: Shards
) -> None:
    """A's outcome lands while J is parked: J leaves the parked set with its run, so it is
    never woken to a pickup that finds its arq job gone."""
    j, q, t, stale = await _lapsed_then_retried_elsewhere(store, runs, one)
    assert await store.finish(j.ref, JobStatus.SUCCEEDED, result={"by": "A"}) == "ok"
    assert await runs.finish(j.id, token=stale, only_if_ended=1) == 0
    assert len(await runs.parked()) == 1  # T's
    await runs.finish(q.id)
    assert await runs.queue() == [t.id]
    await apply_limits(one, "a", TenantLimits())


async def test_a_pickup_sent_again_by_the_run_that_took_the_job_gets_the_same_reply(
    store: JobStore, runs: Runs, one: Shards
) -> None:
    """A dropped connection has store/batching.py send an unanswered pickup again: the run
    whose token the marker holds gets its payload again (and runs the job at once, not one
    lease later); any other run still gets nothing."""
    (job,) = await submit(store, "a")
    first = await runs.pickup(job.id)
    assert first
    assert first[1] is not None
    token = runs.tokens[job.id]
    call = FairPickup(run=Runs._run(job.id), lease_ms=60_000, token=token)
    scripts = RunScripts(one)
    again = await scripts.fair_pickup(call, client=runs.client)
    assert again[1] == first[1]
    assert await runs.running() == [job.id]
    other = FairPickup(run=Runs._run(job.id), lease_ms=60_000, token="another run")
    assert await scripts.fair_pickup(other, client=runs.client) is None

"""A tenant's stored bytes go up with every write that stores them, and back down to zero
once its records and webhook bodies are gone: a count that only grows would lock a tenant
out for good.

The count is kept per shard (keys.tenant_usage), where the job it is charged to lives; what
the tenant stores is every shard's summed (usage.stored_by)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from acceptd.core import ids
from acceptd.core.statuses import DeliveryStatus, JobStatus
from acceptd.store import keys, records
from acceptd.store.deliveries import KEPT_ATTEMPTS, DeliveryRecord, DeliveryStore, NewDelivery
from acceptd.store.job_record import NewJob
from acceptd.store.jobs import JobStore
from acceptd.store.layouts import DeliveryField
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from acceptd.store.usage import ByteBudgetExceededError, stored_by


@pytest.fixture(autouse=True)
def no_sampled_trims(monkeypatch: pytest.MonkeyPatch) -> None:
    """A submit starts a background trim of its tenant's index one time in TRIM_EVERY. With
    retention 0 such a trim, landing after a finish, would forget a job the test still
    counts; here each trim is the test's own."""
    monkeypatch.setattr(records, "TRIM_EVERY", float("inf"))


ATTEMPT = {"at": "2026-01-01T00:00:00Z", "status_code": 200, "error": None, "latency_ms": 1.0}


def delivery_of(job_id: str, endpoint: str) -> NewDelivery:
    msg = "msg_" + job_id[4:]
    return NewDelivery(
        id=ids.derived_id("dlv", msg, endpoint),
        tenant="t1",
        job_id=job_id,
        event="job.succeeded",
        webhook_id=msg,
        url=f"http://example.com/{endpoint}",
        endpoint_id=endpoint,
        body="b" * 50_000,
        body_field=f"{msg}:full",
    )


def usage_of(record_id: str) -> str:
    """t1's usage hash on the shard of a job, or of a delivery (it lives on its job's)."""
    return keys.tenant_usage("t1", ids.shard_of(record_id))


def index_of(job_id: str) -> str:
    """t1's job index on the shard of a job."""
    return keys.tenant_jobs("t1", ids.shard_of(job_id))


async def usage_hashes(shards: Shards) -> list[dict[str, str]]:
    """t1's usage hash on every shard, in shard order."""
    found = await shards.across(lambda pipe, shard: pipe.hgetall(keys.tenant_usage("t1", shard)))
    return [usage for (usage,) in found]


async def trim_every_shard(jobs: JobStore, shards: Shards) -> int:
    """A window of t1's job index trimmed on every shard: how many entries were dropped."""
    dropped = 0
    for shard in range(shards.count):
        usage = keys.tenant_usage("t1", shard)
        dropped += await jobs.trimmer.trim(keys.tenant_jobs("t1", shard), keys.job, "job", usage)
    return dropped


async def test_the_count_returns_to_zero_once_records_and_bodies_are_gone(
    redis: Redis, shards: Shards, scripts: Scripts
) -> None:
    # Retention 0: a finished job or delivery is gone at once (as if its retention ran out).
    jobs = JobStore(shards, scripts, 0)
    deliveries = DeliveryStore(shards, scripts, 0)
    made = [await jobs.create(NewJob("t1", "demo.echo", {"v": "x" * 10_000}, {}, None))]
    made.append(await jobs.create(NewJob("t1", "demo.echo", {}, {}, None)))
    after_submits = await stored_by(shards, "t1")
    assert after_submits > 10_000
    for job in made:
        await jobs.start(job.ref, max_attempts=3)
        await jobs.finish(job.ref, JobStatus.SUCCEEDED, result={"r": "y" * 20_000})
    with_results = await stored_by(shards, "t1")
    assert with_results >= after_submits + 40_000
    # Two endpoints get the first job's event: one body between them, counted once.
    sent = [await deliveries.create(delivery_of(made[0].id, ep)) for ep in ("ep_a", "ep_b")]
    with_webhooks = await stored_by(shards, "t1")
    assert 50_000 < with_webhooks - with_results < 60_000
    await asyncio.sleep(0.002)  # ids older than the retention (0) by a millisecond

    # The jobs are gone, but one delivery is still owed: the first job's bytes stay.
    first = sent[0]
    assert first is not None
    await deliveries.record_attempt(first, 1, ATTEMPT, DeliveryStatus.SUCCEEDED)
    assert await trim_every_shard(jobs, shards) == 1
    assert await redis.hexists(usage_of(made[0].id), made[0].id)  # type: ignore[misc]
    assert not await redis.hexists(usage_of(made[1].id), made[1].id)  # type: ignore[misc]
    assert await jobs.page_ids("t1", None, 10) == [made[0].id]

    second = sent[1]
    assert second is not None
    await deliveries.record_attempt(second, 1, ATTEMPT, DeliveryStatus.FAILED)
    assert not await redis.exists(keys.webhook_bodies(made[0].id))  # the last one ended
    assert await trim_every_shard(jobs, shards) == 1
    for job in made:
        assert await redis.hgetall(usage_of(job.id)) == {"bytes": "0"}  # type: ignore[misc]
    assert all(usage in ({}, {"bytes": "0"}) for usage in await usage_hashes(shards))
    assert await stored_by(shards, "t1") == 0
    assert await jobs.page_ids("t1", None, 10) == []


async def test_a_page_read_that_drops_expired_entries_subtracts_their_bytes(
    redis: Redis, shards: Shards, scripts: Scripts
) -> None:
    jobs = JobStore(shards, scripts, 0)
    job = await jobs.create(NewJob("t1", "demo.echo", {"v": "x" * 1000}, {}, None))
    assert await stored_by(shards, "t1") > 1000
    await redis.delete(keys.job(job.id))  # its retention ran out
    await jobs.forget_ids("t1", [job.id])
    assert await redis.hgetall(usage_of(job.id)) == {"bytes": "0"}  # type: ignore[misc]
    assert await redis.zcard(index_of(job.id)) == 0


async def test_forgetting_an_entry_whose_record_lives_changes_nothing(
    redis: Redis, shards: Shards, scripts: Scripts
) -> None:
    """A stale read (the record was there after all) never drops a live job's bytes."""
    jobs = JobStore(shards, scripts, 3600)
    job = await jobs.create(NewJob("t1", "demo.echo", {"v": "x" * 1000}, {}, None))
    before = await redis.hgetall(usage_of(job.id))  # type: ignore[misc]
    assert job.id in before
    await jobs.forget_ids("t1", [job.id])
    assert await redis.hgetall(usage_of(job.id)) == before  # type: ignore[misc]
    assert await redis.zrange(index_of(job.id), 0, -1) == [job.id]


async def test_an_uncounted_delivery_with_a_shared_body_charges_no_attempt(
    redis: Redis, shards: Shards, scripts: Scripts
) -> None:
    """An operational event to two endpoints shares its body (a bodies-hash field): its
    attempts were charged to the tenant under the subject, and nothing ever gave them
    back (only job and batch indexes are trimmed), so the tenant's count crept upward."""
    deliveries = DeliveryStore(shards, scripts, 0)
    subject = ids.new_id("dlv", 0)  # the delivery that failed for good: its event's subject
    usage = usage_of(subject)
    before = await redis.hgetall(usage)  # type: ignore[misc]
    sent = [
        await deliveries.create(replace(delivery_of(subject, ep), counted=False))
        for ep in ("ep_a", "ep_b")
    ]
    for delivery in sent:
        assert delivery is not None
        await deliveries.record_attempt(delivery, 1, ATTEMPT, DeliveryStatus.SUCCEEDED)
    assert await redis.hgetall(usage) == before  # type: ignore[misc]


async def test_a_body_kept_in_its_one_delivery_counts_until_it_is_gone(
    redis: Redis, shards: Shards, scripts: Scripts
) -> None:
    jobs = JobStore(shards, scripts, 0)
    deliveries = DeliveryStore(shards, scripts, 0)
    job = await jobs.create(NewJob("t1", "demo.echo", {}, {}, None))
    usage = usage_of(job.id)
    before = int(await redis.hget(usage, "bytes"))  # type: ignore[misc]
    alone = replace(delivery_of(job.id, "ep_a"), body_field="")  # its only destination
    sent = await deliveries.create(alone)
    assert sent is not None
    assert int(await redis.hget(usage, "bytes")) - before > 50_000  # type: ignore[misc]
    # Nothing shared to keep: the subject's bodies hash holds only what is owed.
    assert await redis.hgetall(keys.webhook_bodies(job.id)) == {"p": "1"}  # type: ignore[misc]
    found = await deliveries.get(sent.id)
    assert found is not None
    assert found.body == alone.body
    await deliveries.record_attempt(sent, 1, ATTEMPT, DeliveryStatus.SUCCEEDED)
    await jobs.start(job.ref, max_attempts=3)
    await jobs.finish(job.ref, JobStatus.SUCCEEDED, result=None)
    await asyncio.sleep(0.002)  # older than the retention (0) by a millisecond
    await jobs.trimmer.trim(index_of(job.id), keys.job, "job", usage)
    assert await redis.hgetall(usage) == {"bytes": "0"}  # type: ignore[misc]


async def test_a_pending_delivery_keeps_its_jobs_charge_after_the_job_expired(
    redis: Redis, shards: Shards, scripts: Scripts
) -> None:
    """Red team: the job's charge (its deliveries' bodies among it) was subtracted once the
    job record expired, while a delivery kept pending (retried by hand) still held its body:
    every week a budget's worth more. Now the charge stays while any delivery is owed."""
    jobs, deliveries, sent = await _job_with_one_delivery(shards, scripts, 0)
    job, usage = sent.job_id, usage_of(sent.job_id)
    charged = int(await redis.hget(usage, "bytes"))  # type: ignore[misc]
    await redis.delete(keys.job(job))  # the job's retention is over
    await asyncio.sleep(0.002)  # older than the retention (0) by a millisecond
    await jobs.trimmer.trim(index_of(job), keys.job, "job", usage)
    assert int(await redis.hget(usage, "bytes")) >= charged  # type: ignore[misc]
    await deliveries.record_attempt(sent, 1, ATTEMPT, DeliveryStatus.FAILED)
    assert await redis.exists(keys.webhook_bodies(job)) == 0  # the last owed one ended
    await jobs.trimmer.trim(index_of(job), keys.job, "job", usage)
    assert await redis.hgetall(usage) == {"bytes": "0"}  # type: ignore[misc]


async def test_each_attempt_is_charged_and_a_manual_retry_past_the_budget_is_refused(
    redis: Redis, shards: Shards, scripts: Scripts
) -> None:
    """Red team: a receiver answering 4 KiB of 0xFF made each attempt 24 KB of escapes,
    charged nothing, and retried by hand without end."""
    _, deliveries, sent = await _job_with_one_delivery(shards, scripts, 3600)
    # The delivery is charged on its job's shard, which holds all the tenant stores here:
    # the budget a retry is checked against is that shard's count.
    usage = usage_of(sent.id)
    assert usage == usage_of(sent.job_id)
    before = int(await redis.hget(usage, "bytes"))  # type: ignore[misc]
    assert before == await stored_by(shards, "t1")
    answer = {**ATTEMPT, "response": "\ufffd" * 1024}
    await deliveries.record_attempt(sent, 1, answer, DeliveryStatus.FAILED)
    charged = int(await redis.hget(usage, "bytes")) - before  # type: ignore[misc]
    assert 3 * 1024 <= charged < 4 * 1024  # UTF-8, three bytes a character, not six
    view = await deliveries.view(sent.id, "t1")
    assert view is not None
    with pytest.raises(ByteBudgetExceededError):
        await deliveries.requeue(view, manual=True, byte_budget=before)
    assert await deliveries.requeue(view, manual=True, byte_budget=10 * before)


async def test_a_delivery_keeps_its_last_attempts_and_is_charged_for_those_only(
    redis: Redis, shards: Shards, scripts: Scripts
) -> None:
    """Red team, third round: 150 manual retries made one delivery 430 KB and each retry's
    answer 480 KB, growing without end."""
    _, deliveries, sent = await _job_with_one_delivery(shards, scripts, 3600)
    usage = usage_of(sent.id)
    before = int(await redis.hget(usage, "bytes"))  # type: ignore[misc]
    answer = {**ATTEMPT, "response": "x" * 1000}
    tries = KEPT_ATTEMPTS + 15
    for number in range(1, tries + 1):
        assert await deliveries.record_attempt(
            replace(sent, attempt_count=number - 1), number, answer, DeliveryStatus.PENDING, 0
        )
    [(_, attempts)] = await deliveries.views([sent.id])
    assert len(attempts) == KEPT_ATTEMPTS
    fields = await redis.hkeys(keys.delivery(sent.id))  # type: ignore[misc]
    assert sorted(f for f in fields if f.startswith(DeliveryField.ATTEMPT)) == sorted(
        f"{DeliveryField.ATTEMPT}{n}" for n in range(tries - KEPT_ATTEMPTS + 1, tries + 1)
    )
    charged = int(await redis.hget(usage, "bytes")) - before  # type: ignore[misc]
    assert charged == KEPT_ATTEMPTS * len(json.dumps(answer, separators=(",", ":")))


async def _job_with_one_delivery(
    shards: Shards, scripts: Scripts, retention_seconds: int
) -> tuple[JobStore, DeliveryStore, DeliveryRecord]:
    """Tenant t1's job and one delivery of it that holds its own body (its only
    destination), both kept `retention_seconds`."""
    jobs = JobStore(shards, scripts, retention_seconds)
    deliveries = DeliveryStore(shards, scripts, retention_seconds)
    job = await jobs.create(NewJob("t1", "demo.echo", {}, {}, None))
    sent = await deliveries.create(replace(delivery_of(job.id, "ep_a"), body_field=""))
    assert sent is not None
    assert ids.shard_of(sent.id) == ids.shard_of(job.id)  # a delivery lives by its job
    return jobs, deliveries, sent

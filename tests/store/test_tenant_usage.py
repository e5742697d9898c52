"""A tenant's stored bytes go up with every write that stores them, and back down to zero
once its records and webhook bodies are gone: a count that only grows would lock a tenant
out for good."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from acceptd.core import ids
from acceptd.core.statuses import DeliveryStatus, JobStatus
from acceptd.store import keys
from acceptd.store.deliveries import KEPT_ATTEMPTS, DeliveryRecord, DeliveryStore, NewDelivery
from acceptd.store.jobs import JobStore, NewJob
from acceptd.store.scripts import Scripts
from acceptd.store.usage import ByteBudgetExceededError

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


async def test_the_count_returns_to_zero_once_records_and_bodies_are_gone(
    redis: Redis, scripts: Scripts
) -> None:
    # Retention 0: a finished job or delivery is gone at once (as if its retention ran out).
    jobs = JobStore(redis, scripts, 0)
    deliveries = DeliveryStore(redis, scripts, 0)
    usage, index = keys.tenant_usage("t1"), keys.tenant_jobs("t1")
    made = [await jobs.create(NewJob("t1", "demo.echo", {"v": "x" * 10_000}, {}, None))]
    made.append(await jobs.create(NewJob("t1", "demo.echo", {}, {}, None)))
    after_submits = int(await redis.hget(usage, "bytes"))  # type: ignore[misc]
    assert after_submits > 10_000
    for job in made:
        await jobs.start(job.ref, max_attempts=3)
        await jobs.finish(job.ref, JobStatus.SUCCEEDED, result={"r": "y" * 20_000})
    with_results = int(await redis.hget(usage, "bytes"))  # type: ignore[misc]
    assert with_results >= after_submits + 40_000
    # Two endpoints get the first job's event: one body between them, counted once.
    sent = [await deliveries.create(delivery_of(made[0].id, ep)) for ep in ("ep_a", "ep_b")]
    with_webhooks = int(await redis.hget(usage, "bytes"))  # type: ignore[misc]
    assert 50_000 < with_webhooks - with_results < 60_000
    await asyncio.sleep(0.002)  # ids older than the retention (0) by a millisecond

    # The jobs are gone, but one delivery is still owed: the first job's bytes stay.
    first = sent[0]
    assert first is not None
    await deliveries.record_attempt(first, 1, ATTEMPT, DeliveryStatus.SUCCEEDED)
    assert await jobs.trimmer.trim(index, keys.job, "job", usage) == 1
    assert await redis.hexists(usage, made[0].id)  # type: ignore[misc]
    assert await redis.zrange(index, 0, -1) == [made[0].id]

    second = sent[1]
    assert second is not None
    await deliveries.record_attempt(second, 1, ATTEMPT, DeliveryStatus.FAILED)
    assert not await redis.exists(keys.webhook_bodies(made[0].id))  # the last one ended
    assert await jobs.trimmer.trim(index, keys.job, "job", usage) == 1
    assert await redis.hgetall(usage) == {"bytes": "0"}  # type: ignore[misc]
    assert await redis.zcard(index) == 0


async def test_a_page_read_that_drops_expired_entries_subtracts_their_bytes(
    redis: Redis, scripts: Scripts
) -> None:
    jobs = JobStore(redis, scripts, 0)
    job = await jobs.create(NewJob("t1", "demo.echo", {"v": "x" * 1000}, {}, None))
    await redis.delete(keys.job(job.id))  # its retention ran out
    await jobs.forget_ids("t1", [job.id])
    assert await redis.hgetall(keys.tenant_usage("t1")) == {"bytes": "0"}  # type: ignore[misc]


async def test_forgetting_an_entry_whose_record_lives_changes_nothing(
    redis: Redis, scripts: Scripts
) -> None:
    """A stale read (the record was there after all) never drops a live job's bytes."""
    jobs = JobStore(redis, scripts, 3600)
    job = await jobs.create(NewJob("t1", "demo.echo", {"v": "x" * 1000}, {}, None))
    before = await redis.hgetall(keys.tenant_usage("t1"))  # type: ignore[misc]
    await jobs.forget_ids("t1", [job.id])
    assert await redis.hgetall(keys.tenant_usage("t1")) == before  # type: ignore[misc]
    assert await redis.zrange(keys.tenant_jobs("t1"), 0, -1) == [job.id]


async def test_a_body_kept_in_its_one_delivery_counts_until_it_is_gone(
    redis: Redis, scripts: Scripts
) -> None:
    jobs = JobStore(redis, scripts, 0)
    deliveries = DeliveryStore(redis, scripts, 0)
    usage = keys.tenant_usage("t1")
    job = await jobs.create(NewJob("t1", "demo.echo", {}, {}, None))
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
    await asyncio.sleep(0.002)
    await jobs.trimmer.trim(keys.tenant_jobs("t1"), keys.job, "job", usage)
    assert await redis.hgetall(usage) == {"bytes": "0"}  # type: ignore[misc]


async def test_a_pending_delivery_keeps_its_jobs_charge_after_the_job_expired(
    redis: Redis, scripts: Scripts
) -> None:
    """Red team: the job's charge (its deliveries' bodies among it) was subtracted once the
    job record expired, while a delivery kept pending (retried by hand) still held its body:
    every week a budget's worth more. Now the charge stays while any delivery is owed."""
    jobs, deliveries, sent = await _job_with_one_delivery(redis, scripts, 0)
    job, usage = sent.job_id, keys.tenant_usage("t1")
    charged = int(await redis.hget(usage, "bytes"))  # type: ignore[misc]
    await redis.delete(keys.job(job))  # the job's retention is over
    await asyncio.sleep(0.002)
    await jobs.trimmer.trim(keys.tenant_jobs("t1"), keys.job, "job", usage)
    assert int(await redis.hget(usage, "bytes")) >= charged  # type: ignore[misc]
    await deliveries.record_attempt(sent, 1, ATTEMPT, DeliveryStatus.FAILED)
    assert await redis.exists(keys.webhook_bodies(job)) == 0  # the last owed one ended
    await jobs.trimmer.trim(keys.tenant_jobs("t1"), keys.job, "job", usage)
    assert await redis.hgetall(usage) == {"bytes": "0"}  # type: ignore[misc]


async def test_each_attempt_is_charged_and_a_manual_retry_past_the_budget_is_refused(
    redis: Redis, scripts: Scripts
) -> None:
    """Red team: a receiver answering 4 KiB of 0xFF made each attempt 24 KB of escapes,
    charged nothing, and retried by hand without end."""
    _, deliveries, sent = await _job_with_one_delivery(redis, scripts, 3600)
    usage = keys.tenant_usage("t1")
    before = int(await redis.hget(usage, "bytes"))  # type: ignore[misc]
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
    redis: Redis, scripts: Scripts
) -> None:
    """Red team, third round: 150 manual retries made one delivery 430 KB and each retry's
    answer 480 KB, growing without end."""
    _, deliveries, sent = await _job_with_one_delivery(redis, scripts, 3600)
    usage = keys.tenant_usage("t1")
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
    assert sorted(f for f in fields if f.startswith("a:")) == sorted(
        f"a:{n}" for n in range(tries - KEPT_ATTEMPTS + 1, tries + 1)
    )
    charged = int(await redis.hget(usage, "bytes")) - before  # type: ignore[misc]
    assert charged == KEPT_ATTEMPTS * len(json.dumps(answer, separators=(",", ":")))


async def _job_with_one_delivery(
    redis: Redis, scripts: Scripts, retention_seconds: int
) -> tuple[JobStore, DeliveryStore, DeliveryRecord]:
    """Tenant t1's job and one delivery of it that holds its own body (its only
    destination), both kept `retention_seconds`."""
    jobs = JobStore(redis, scripts, retention_seconds)
    deliveries = DeliveryStore(redis, scripts, retention_seconds)
    job = await jobs.create(NewJob("t1", "demo.echo", {}, {}, None))
    sent = await deliveries.create(replace(delivery_of(job.id, "ep_a"), body_field=""))
    assert sent is not None
    return jobs, deliveries, sent

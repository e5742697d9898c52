"""Every status transition of a job, through the Lua scripts the roles call."""

from __future__ import annotations

import json

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from acceptd.core import ids
from acceptd.core.clock import now_ms
from acceptd.core.credentials import generate_master_key
from acceptd.core.secretbox import SecretBox
from acceptd.core.statuses import TERMINAL_STATUSES, JobStatus
from acceptd.store import keys
from acceptd.store.job_record import JobRecord, JobRef, NewJob
from acceptd.store.jobs import JobStore
from acceptd.store.scriptcalls import MarkWatched
from acceptd.store.scripts import Scripts
from acceptd.store.shardchannels import open_pubsub
from acceptd.store.shards import Shards
from tests.store.conftest import RETENTION_SECONDS
from tests.support.constants import TEST_SHARDS

TENANT = "t1"


@pytest.fixture
def jobs(shards: Shards, scripts: Scripts) -> JobStore:
    return JobStore(shards, scripts, RETENTION_SECONDS, SecretBox(generate_master_key()))


async def create(jobs: JobStore, **extra: object) -> JobRecord:
    values: dict[str, object] = {
        "tenant": TENANT,
        "type": "demo.echo",
        "input": {"value": 1},
        "metadata": {},
        "callback_url": None,
    }
    values.update(extra)
    return await jobs.create(NewJob(**values))  # type: ignore[arg-type]


async def status_of(jobs: JobStore, job_id: str) -> JobStatus:
    record = await jobs.get(job_id)
    assert record is not None
    return record.status


async def subscribe(redis: Redis, *events: str) -> None:
    """As if an endpoint of the tenant subscribed to these events: every shard's copy."""
    for shard in range(TEST_SHARDS):
        for event in events:
            await redis.hset(keys.tenant_event_subscriptions(TENANT, shard), event, "1")  # type: ignore[misc]


async def entries(redis: Redis) -> list[dict[str, str]]:
    """The events written on every shard, all their fields (the tests' jobs each write on
    their own)."""
    return [
        fields
        for shard in range(TEST_SHARDS)
        for _id, fields in await redis.xrange(keys.events_stream(shard))
    ]


async def events(redis: Redis) -> list[str]:
    """The names of the events written on every shard."""
    return [fields["event"] for fields in await entries(redis)]


def queue_of(job_id: str) -> str:
    """The queue of the job's shard, where its entry waits for a worker."""
    return keys.job_queue(ids.shard_of(job_id))


async def test_submit_writes_the_record_the_index_and_the_queue_entry_together(
    jobs: JobStore, redis: Redis
) -> None:
    job = await create(jobs)
    assert await status_of(jobs, job.id) is JobStatus.QUEUED
    assert await redis.zscore(queue_of(job.id), job.id) is not None
    payload = json.loads(await redis.get(keys.arq_job(job.id)))
    assert payload["f"] == "run_job"
    assert payload["a"] == [job.id, TENANT, "demo.echo"]
    shard = ids.shard_of(job.id)
    assert await redis.zrange(keys.tenant_jobs(TENANT, shard), 0, -1) == [job.id]
    assert await jobs.page_ids(TENANT, None, 10) == [job.id]


async def test_a_scheduled_job_waits_outside_the_queue_until_promoted(
    jobs: JobStore, redis: Redis
) -> None:
    due = now_ms() + 60_000
    job = await create(jobs, run_at_ms=due)
    shard = ids.shard_of(job.id)
    assert await status_of(jobs, job.id) is JobStatus.SCHEDULED
    assert await redis.get(keys.arq_job(job.id)) is None
    assert await redis.zscore(queue_of(job.id), job.id) is None
    assert await jobs.promote_due(shard) == (0, due)  # not due yet: when it will be
    for other in set(range(TEST_SHARDS)) - {shard}:  # other shards have nothing scheduled
        assert await jobs.promote_due(other) == (0, None)
    await redis.zadd(keys.scheduled_jobs(shard), {job.id: 1})  # make it due
    assert (await jobs.promote_due(shard))[0] == 1
    assert await status_of(jobs, job.id) is JobStatus.QUEUED
    assert await redis.get(keys.arq_job(job.id)) is not None
    assert await redis.zscore(queue_of(job.id), job.id) is not None
    assert await jobs.promote_due(shard) == (0, None)  # promoted once only, none left


async def test_start_takes_a_queued_job_and_counts_the_attempt(
    jobs: JobStore, redis: Redis
) -> None:
    job = await create(jobs, metadata={"k": "v"})
    await subscribe(redis, "job.started")
    started = await jobs.start(job.ref, max_attempts=3)
    assert (started.outcome, started.attempt, started.input) == ("running", 1, {"value": 1})
    assert started.metadata == {"k": "v"}
    record = await jobs.get(job.id)
    assert record is not None
    assert record.status is JobStatus.RUNNING
    assert record.started_ms is not None
    assert await events(redis) == ["job.started"]


async def test_no_event_is_written_that_nobody_receives(jobs: JobStore, redis: Redis) -> None:
    job = await create(jobs)  # no callback, no subscribed endpoint
    await jobs.start(job.ref, max_attempts=3)
    assert await jobs.finish(job.ref, JobStatus.SUCCEEDED, result=1) == "ok"
    assert await events(redis) == []


async def test_start_stops_at_max_attempts_and_after_a_cancel(jobs: JobStore) -> None:
    job = await create(jobs)
    for attempt in (1, 2):
        assert (await jobs.start(job.ref, max_attempts=2)).attempt == attempt
    exhausted = await jobs.start(job.ref, max_attempts=2)
    assert (exhausted.outcome, exhausted.attempt) == ("exhausted", 2)

    other = await create(jobs)
    await jobs.start(other.ref, max_attempts=3)
    assert (await jobs.cancel(other.ref))[0] == "requested"
    await jobs.requeue(other.ref, refund_attempt=True)
    assert (await jobs.start(other.ref, max_attempts=3)).outcome == "canceled"
    assert await status_of(jobs, other.id) is JobStatus.CANCELED


async def test_finish_records_the_outcome_once(jobs: JobStore, redis: Redis) -> None:
    job = await create(jobs, callback_url="https://example.com/hook")
    await jobs.start(job.ref, max_attempts=3)
    assert await jobs.finish(job.ref, JobStatus.SUCCEEDED, result={"ok": True}) == "ok"
    record = await jobs.get(job.id)
    assert record is not None
    assert record.status is JobStatus.SUCCEEDED
    assert record.result == {"ok": True}
    assert record.finished_ms is not None
    assert 0 < await redis.pttl(keys.job(job.id)) <= RETENTION_SECONDS * 1000
    # The callback is owed the terminal event even with no endpoint subscribed.
    assert await events(redis) == ["job.succeeded"]
    # A late verdict (a worker that lost a race with a cancel) changes nothing.
    assert await jobs.finish(job.ref, JobStatus.FAILED, error={"title": "x"}) == "succeeded"
    assert await status_of(jobs, job.id) is JobStatus.SUCCEEDED


async def test_requeue_hands_a_running_job_back(jobs: JobStore) -> None:
    job = await create(jobs)
    await jobs.start(job.ref, max_attempts=3)
    await jobs.requeue(job.ref, refund_attempt=True)
    record = await jobs.get(job.id)
    assert record is not None
    assert (record.status, record.attempts) == (JobStatus.QUEUED, 0)
    await jobs.start(job.ref, max_attempts=3)
    await jobs.requeue(job.ref, refund_attempt=False)  # a retry the handler asked for
    record = await jobs.get(job.id)
    assert record is not None
    assert (record.status, record.attempts) == (JobStatus.QUEUED, 1)


async def test_progress_is_written_only_while_running_and_tells_waiters(
    jobs: JobStore, redis: Redis, scripts: Scripts, shards: Shards
) -> None:
    job = await create(jobs)
    await jobs.set_progress(job.ref, {"fraction": 0.5, "message": None}, emit_event=False)
    assert (await jobs.get(job.id)).progress["fraction"] == 0.0  # type: ignore[union-attr]
    await jobs.start(job.ref, max_attempts=3)
    # The job's changes go out on its sharded channel, heard on the node holding its slot.
    channel = keys.job_changes(job.id)
    async with open_pubsub(shards, channel) as pubsub:
        await pubsub.ssubscribe(channel)
        await subscribe(redis, "job.progress")
        # Nobody marked the job watched: no SPUBLISH is spent on it.
        await jobs.set_progress(job.ref, {"fraction": 0.2, "message": None}, emit_event=False)
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
        await scripts.mark_watched(MarkWatched(job=keys.job(job.id), until_ms=now_ms() + 60_000))
        await jobs.set_progress(job.ref, {"fraction": 0.5, "message": "half"}, emit_event=True)
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
    assert message is not None
    assert message["data"] == "progress"
    record = await jobs.get(job.id)
    assert record is not None
    assert record.progress == {"fraction": 0.5, "message": "half"}
    assert await events(redis) == ["job.progress"]


async def test_a_watch_mark_never_revives_an_expired_record(redis: Redis, scripts: Scripts) -> None:
    await scripts.mark_watched(MarkWatched(job=keys.job("job_gone"), until_ms=now_ms() + 60_000))
    assert await redis.exists(keys.job("job_gone")) == 0


async def test_cancel_of_a_queued_job_removes_its_way_to_a_worker(
    jobs: JobStore, redis: Redis
) -> None:
    job = await create(jobs)
    assert await redis.zscore(queue_of(job.id), job.id) is not None
    outcome, record = await jobs.cancel(job.ref)
    assert outcome == "canceled"
    assert record is not None
    assert record.status is JobStatus.CANCELED
    assert await redis.zscore(queue_of(job.id), job.id) is None
    assert await redis.get(keys.arq_job(job.id)) is None
    assert (await jobs.cancel(job.ref))[0] == "terminal"


async def test_cancel_of_another_tenants_job_finds_nothing(jobs: JobStore) -> None:
    job = await create(jobs)
    outcome, record = await jobs.cancel(JobRef(job.id, "intruder"))
    assert (outcome, record) == ("missing", None)
    assert await status_of(jobs, job.id) is JobStatus.QUEUED


async def test_awaiting_input_is_completed_once_with_its_token(
    jobs: JobStore, redis: Redis
) -> None:
    job = await create(jobs)
    await jobs.start(job.ref, max_attempts=3)
    deadline = now_ms() + 60_000
    assert await jobs.await_input(job.ref, request={"q": 1}, deadline_ms=deadline, progress=None)
    record = await jobs.get(job.id)
    assert record is not None
    assert record.awaiting is not None
    assert record.status is JobStatus.AWAITING_INPUT
    token = record.awaiting.token
    awaiting = keys.awaiting_input(ids.shard_of(job.id))
    assert await redis.zscore(awaiting, job.id) == deadline

    wrong = await jobs.complete(job.ref, "ctk_wrong", JobStatus.SUCCEEDED, result=1)
    assert wrong == ("missing", None)
    outcome, done = await jobs.complete(job.ref, token, JobStatus.SUCCEEDED, result={"a": 1})
    assert outcome == "ok"
    assert done is not None
    assert done.result == {"a": 1}
    assert await redis.zscore(awaiting, job.id) is None
    again, _ = await jobs.complete(job.ref, token, JobStatus.FAILED, error={"title": "late"})
    assert again == "used"
    assert await status_of(jobs, job.id) is JobStatus.SUCCEEDED


async def test_an_input_deadline_fails_the_job_only_once_due(jobs: JobStore, redis: Redis) -> None:
    job = await create(jobs)
    await jobs.start(job.ref, max_attempts=3)
    await jobs.await_input(job.ref, request=None, deadline_ms=now_ms() + 60_000, progress=None)
    shard, timed_out = ids.shard_of(job.id), {"title": "input timed out"}
    assert (await jobs.expire_awaiting(shard, timed_out))[0] == []
    await redis.zadd(keys.awaiting_input(shard), {job.id: 1})
    await redis.hset(keys.job(job.id), "await_deadline", "1")  # type: ignore[misc]
    for other in set(range(TEST_SHARDS)) - {shard}:  # each shard expires its own jobs only
        assert await jobs.expire_awaiting(other, timed_out) == ([], None)
    assert await jobs.expire_awaiting(shard, timed_out) == (["demo.echo"], None)
    record = await jobs.get(job.id)
    assert record is not None
    assert record.status is JobStatus.FAILED
    assert record.error == {"title": "input timed out"}


async def test_the_scripts_know_the_terminal_statuses_python_knows(scripts: Scripts) -> None:
    source = scripts.finish.script
    assert isinstance(source, str)
    table = next(line for line in source.splitlines() if line.startswith("local TERMINAL ="))
    for status in JobStatus:
        assert (f"{status.value} = true" in table) == (status in TERMINAL_STATUSES)


async def test_a_batch_items_status_change_without_its_batch_keys_is_refused(
    jobs: JobStore, redis: Redis
) -> None:
    job = await create(jobs)
    await redis.hset(keys.job(job.id), "batch", "bat_x")  # type: ignore[misc]
    with pytest.raises(ResponseError, match="batch keys must be passed"):
        await jobs.start(job.ref, max_attempts=3)
    assert await status_of(jobs, job.id) is JobStatus.QUEUED  # nothing was written


async def test_the_completion_token_is_stored_sealed(jobs: JobStore, redis: Redis) -> None:
    job = await create(jobs)
    await jobs.start(job.ref, max_attempts=3)
    await jobs.await_input(job.ref, request=None, deadline_ms=now_ms() + 60_000, progress=None)
    record = await jobs.get(job.id)
    assert record is not None
    assert record.awaiting is not None
    token = record.awaiting.token
    assert token.startswith("ctk_")
    stored = await redis.hgetall(keys.job(job.id))  # type: ignore[misc]
    assert token not in " ".join(stored.values())  # only sealed, and its digest
    assert stored["token"].startswith("v1:")


async def test_a_start_sent_with_its_pickup_happens_only_if_that_pickup_took_the_job(
    jobs: JobStore, shards: Shards
) -> None:
    """A worker sends a job's start in its pickup's round trip (worker/pickupstart.py): the
    start takes the job only while the run's marker holds the run's token and arq's job key
    is there; otherwise it changes nothing (lua/status/start.lua)."""
    job = await create(jobs)
    client = shards.for_key(keys.job(job.id))
    marker, arq_job = keys.arq_in_progress(job.id), keys.arq_job(job.id)
    payload = await client.get(arq_job)
    assert payload is not None

    async def not_taken() -> None:
        started = await jobs.start(job.ref, max_attempts=3, taken_by="mine")
        assert started.outcome == "not-taken"
        record = await jobs.get(job.id)
        assert record is not None
        assert (record.status, record.attempts, record.started_ms) == (JobStatus.QUEUED, 0, None)

    await not_taken()  # no marker: the pickup took nothing (parked, or the job had left)
    await client.set(marker, "theirs")
    await not_taken()  # another run holds it
    await client.set(marker, "mine")
    await client.delete(arq_job)
    await not_taken()  # its arq job is gone: the pickup found nothing to run
    await client.set(arq_job, payload)

    started = await jobs.start(job.ref, max_attempts=3, taken_by="mine")
    assert (started.outcome, started.attempt, started.input) == ("running", 1, {"value": 1})
    assert await status_of(jobs, job.id) is JobStatus.RUNNING


async def test_a_start_sent_again_with_its_pickups_token_counts_no_second_attempt(
    jobs: JobStore, shards: Shards, redis: Redis
) -> None:
    """The same start sent again (its connection dropped after it ran) replies as the first
    did: one attempt, one job.started event. A start naming another tenant than the job's
    (an announcement not to be trusted) takes nothing."""
    await subscribe(redis, "job.started")
    job = await create(jobs)
    client = shards.for_key(keys.job(job.id))
    await client.set(keys.arq_in_progress(job.id), "mine")
    elsewhere = JobRef(job.id, "someone-else")
    assert (await jobs.start(elsewhere, max_attempts=3, taken_by="mine")).outcome == "not-taken"
    first = await jobs.start(job.ref, max_attempts=3, taken_by="mine")
    again = await jobs.start(job.ref, max_attempts=3, taken_by="mine")
    assert again == first
    assert (first.outcome, first.attempt) == ("running", 1)
    record = await jobs.get(job.id)
    assert record is not None
    assert record.attempts == 1
    assert await events(redis) == ["job.started"]


async def test_a_terminal_event_for_a_callback_carries_the_job_as_it_left_it(
    jobs: JobStore, redis: Redis
) -> None:
    """Its dispatcher sends the callback without reading the job (one round trip sooner):
    the event holds the job's fields as the finish wrote them, read as `get` reads them."""
    job = await create(jobs, callback_url="https://example.com/hook", metadata={"k": "v"})
    await subscribe(redis, "job.started")
    await jobs.start(job.ref, max_attempts=3)
    assert await jobs.finish(job.ref, JobStatus.SUCCEEDED, result={"ok": True}) == "ok"
    [started, finished] = await entries(redis)
    assert (started["event"], finished["event"]) == ("job.started", "job.succeeded")
    assert "record" not in started  # only the job's last change carries it
    carried = jobs.as_of_event(job.id, TENANT, finished["record"])
    assert carried == await jobs.get(job.id)
    assert carried is not None
    assert (carried.status, carried.result) == (JobStatus.SUCCEEDED, {"ok": True})
    assert jobs.as_of_event(job.id, "another-tenant", finished["record"]) is None


async def test_a_large_job_or_one_without_a_callback_is_read_not_carried(
    jobs: JobStore, redis: Redis
) -> None:
    """The record costs the stream, the AOF and replicas its bytes: a large job's terminal
    event does not carry it (its dispatcher reads the job), nor does one no callback
    takes (its endpoints are read in that round trip anyway)."""
    from acceptd.store.scripts import RECORD_IN_EVENT_MAX

    large = await create(jobs, callback_url="https://example.com/hook")
    await jobs.finish(large.ref, JobStatus.SUCCEEDED, result="x" * RECORD_IN_EVENT_MAX)
    # Under the cap as stored, over it as the event would hold it: JSON escapes each "/".
    escaped = await create(jobs, callback_url="https://example.com/hook")
    await jobs.finish(escaped.ref, JobStatus.SUCCEEDED, result="/" * 3000)
    raw = await redis.hgetall(keys.job(escaped.id))  # type: ignore[misc]
    assert sum(len(k) + len(v.encode()) for k, v in raw.items()) <= RECORD_IN_EVENT_MAX
    await subscribe(redis, "job.succeeded")
    endpoints_only = await create(jobs)
    await jobs.finish(endpoints_only.ref, JobStatus.SUCCEEDED, result=1)
    found = {fields["job"]: fields for fields in await entries(redis)}
    assert set(found) == {large.id, escaped.id, endpoints_only.id}
    assert all("record" not in fields for fields in found.values())

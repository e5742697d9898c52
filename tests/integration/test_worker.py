"""The worker: every outcome of a handler, progress, cancellation, timeouts, crashes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from acceptd.core.settings import Settings
from acceptd.store import keys
from acceptd.store.connection import open_shards
from acceptd.store.job_record import JobRef
from acceptd.store.jobs import JobStore
from acceptd.store.scripts import Scripts
from tests.support.constants import TEST_SHARDS
from tests.support.http import submit_job
from tests.support.waiting import wait_until

Client = TestClient[Any, Any]
Burst = Callable[..., Awaitable[None]]


async def submit(
    client: Client, auth: dict[str, str], job_type: str, data: dict[str, Any]
) -> dict[str, Any]:
    return await submit_job(client, auth, {"type": job_type, "input": data})


async def fetch(client: Client, auth: dict[str, str], job: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = await (await client.get(job["links"]["self"], headers=auth)).json()
    return body


def status_is(
    client: Client, auth: dict[str, str], job: dict[str, Any], *wanted: str
) -> Callable[[], Awaitable[Any]]:
    async def check() -> Any:
        body = await fetch(client, auth, job)
        return body if body["status"] in wanted else None

    return check


async def test_blocking_handler_runs_in_a_thread(
    client: Client, auth: dict[str, str], run_worker_burst: Burst
) -> None:
    job = await submit(client, auth, "test.blocking", {"seconds": 0.05})
    await run_worker_burst()
    body = await fetch(client, auth, job)
    assert body["status"] == "succeeded"
    assert body["result"]["thread"].startswith("acceptd-job")
    assert body["progress"] == {"fraction": 1.0, "message": "half way, from a thread"}


async def test_blocking_job_does_not_stall_other_jobs(
    client: Client, auth: dict[str, str], worker: None
) -> None:
    slow = await submit(client, auth, "test.blocking", {"seconds": 2.0})
    await wait_until(status_is(client, auth, slow, "running"))
    quick = await submit(client, auth, "demo.echo", {"value": "fast"})
    await wait_until(status_is(client, auth, quick, "succeeded"), timeout=1.5)
    assert (await fetch(client, auth, slow))["status"] == "running"


async def test_progress_is_visible_while_running(
    client: Client, auth: dict[str, str], worker: None
) -> None:
    job = await submit(
        client, auth, "demo.echo", {"value": 1, "delay_ms": 1500, "progress_steps": 3}
    )

    async def partial() -> Any:
        body = await fetch(client, auth, job)
        return body if 0 < body["progress"]["fraction"] < 1 else None

    body = await wait_until(partial)
    assert body["status"] == "running"
    assert body["progress"]["message"].startswith("step ")
    done = await wait_until(status_is(client, auth, job, "succeeded"))
    assert done["progress"] == {"fraction": 1.0, "message": "step 3 of 3"}


async def test_cancel_running_job_stops_it_cooperatively(
    client: Client, auth: dict[str, str], worker: None
) -> None:
    job = await submit(
        client, auth, "demo.echo", {"value": 1, "delay_ms": 20_000, "progress_steps": 2}
    )
    await wait_until(status_is(client, auth, job, "running"))
    response = await client.post(f"{job['links']['self']}/cancel", headers=auth)
    assert response.status == 202
    assert (await response.json())["status"] == "running"  # requested; the worker stops it
    body = await wait_until(status_is(client, auth, job, "canceled"), timeout=3)
    assert body["finished_at"]
    assert body["result"] is None


async def test_cancel_is_forced_after_the_grace_period(
    client: Client, auth: dict[str, str], worker: None, settings: Settings
) -> None:
    job = await submit(client, auth, "test.stubborn", {"seconds": 30})
    await wait_until(status_is(client, auth, job, "running"))
    await client.post(f"{job['links']['self']}/cancel", headers=auth)
    await wait_until(
        status_is(client, auth, job, "canceled"), timeout=settings.cancel_grace_seconds + 3
    )


async def test_handler_retry_runs_again(
    client: Client, auth: dict[str, str], run_worker_burst: Burst
) -> None:
    job = await submit(client, auth, "test.flaky", {"succeed_on": 2})
    await run_worker_burst()
    body = await fetch(client, auth, job)
    assert body["status"] == "succeeded"
    assert body["result"] == {"attempt": 2}
    assert body["attempts"] == 2


async def test_retries_stop_at_max_attempts(
    client: Client, auth: dict[str, str], run_worker_burst: Burst
) -> None:
    job = await submit(client, auth, "test.flaky", {"succeed_on": 99})
    await run_worker_burst()
    body = await fetch(client, auth, job)
    assert body["status"] == "failed"
    assert body["attempts"] == 3
    assert body["error"]["title"] == "retries exhausted"


async def test_exception_becomes_failed_without_traceback(
    client: Client, auth: dict[str, str], run_worker_burst: Burst
) -> None:
    job = await submit(client, auth, "test.crash", {})
    await run_worker_burst()
    body = await fetch(client, auth, job)
    assert body["status"] == "failed"
    assert body["error"]["detail"].startswith("ValueError ")
    assert "boom" not in body["error"]["detail"]  # its text is in the worker's log only
    assert "Traceback" not in str(body)


async def test_typed_job_error_keeps_its_type(
    client: Client, auth: dict[str, str], run_worker_burst: Burst
) -> None:
    job = await submit(client, auth, "test.typed_error", {})
    await run_worker_burst()
    error = (await fetch(client, auth, job))["error"]
    assert error == {
        "type": "urn:example:card-declined",
        "title": "card declined",
        "detail": "the issuer said no",
    }


async def test_job_over_its_timeout_fails_clearly(
    client: Client, auth: dict[str, str], run_worker_burst: Burst
) -> None:
    job = await submit(client, auth, "test.slow", {})
    await run_worker_burst()
    body = await fetch(client, auth, job)
    assert body["status"] == "failed"
    assert body["error"]["title"] == "job timed out"
    assert "0.3 s" in body["error"]["detail"]


async def test_oversized_result_fails_the_job(
    client: Client, auth: dict[str, str], run_worker_burst: Burst
) -> None:
    job = await submit(client, auth, "test.huge_result", {})
    await run_worker_burst()
    body = await fetch(client, auth, job)
    assert body["status"] == "failed"
    assert body["error"]["title"] == "result too large"


async def test_a_result_holding_a_nan_fails_the_job_as_not_json(
    client: Client, auth: dict[str, str], run_worker_burst: Burst
) -> None:
    """No strict JSON parser reads NaN: stored, it would reach every receiver of the job's
    webhooks as a body it refuses."""
    job = await submit(client, auth, "test.nan_result", {})
    await run_worker_burst()
    body = await fetch(client, auth, job)
    assert body["status"] == "failed"
    assert body["error"]["title"] == "result is not JSON"
    assert body["result"] is None


async def test_a_job_that_keeps_killing_its_worker_ends_failed(
    client: Client, auth: dict[str, str], settings: Settings, run_worker_burst: Burst
) -> None:
    """A crashed attempt leaves the record 'running' and arq's job queued: the next
    pickup counts it, and once max_attempts are used the job fails instead of looping."""
    job = await submit(client, auth, "demo.echo", {"value": 1})
    shards = await open_shards(settings)
    try:
        store = JobStore(shards, Scripts(shards), 60)
        for _ in range(3):  # three workers died mid-job
            started = await store.start(JobRef(job["id"], "default"), max_attempts=3)
            assert started.outcome == "running"
        await run_worker_burst()
    finally:
        await shards.aclose()
    body = await fetch(client, auth, job)
    assert body["status"] == "failed"
    assert body["error"]["title"] == "job attempts exhausted"


async def test_a_crashed_attempt_is_run_again(
    client: Client, auth: dict[str, str], settings: Settings, run_worker_burst: Burst
) -> None:
    job = await submit(client, auth, "demo.echo", {"value": "again"})
    shards = await open_shards(settings)
    try:
        await JobStore(shards, Scripts(shards), 60).start(
            JobRef(job["id"], "default"), max_attempts=3
        )
    finally:
        await shards.aclose()
    await run_worker_burst()
    body = await fetch(client, auth, job)
    assert body["status"] == "succeeded"
    assert body["attempts"] == 2


async def test_job_type_missing_on_worker_fails_clearly(
    client: Client,
    auth: dict[str, str],
    make_settings: Callable[..., Settings],
    run_worker_burst: Burst,
) -> None:
    job = await submit(client, auth, "test.crash", {})
    await run_worker_burst(make_settings(job_modules=["acceptd.jobs.demo"]))
    body = await fetch(client, auth, job)
    assert body["status"] == "failed"
    assert "ACCEPTD_JOB_MODULES" in body["error"]["detail"]


async def test_queue_carries_json_not_pickle(
    client: Client, auth: dict[str, str], settings: Settings
) -> None:
    import json

    job = await submit(client, auth, "demo.echo", {"value": 1})
    shards = await open_shards(settings)
    arq_job = keys.arq_job(job["id"])
    try:
        raw = await shards.for_key(arq_job).get(arq_job)
        assert raw is not None
        assert json.loads(raw)["a"] == [job["id"], "default", "demo.echo"]
        assert await shards.for_key(arq_job).ttl(arq_job) == -1  # never expires while queued
    finally:
        await shards.aclose()


async def test_cpu_bound_work_runs_in_another_process(
    client: Client, auth: dict[str, str], run_worker_burst: Burst
) -> None:
    job = await submit(client, auth, "test.crunch", {"limit": 1000})
    await run_worker_burst()
    body = await fetch(client, auth, job)
    assert body["status"] == "succeeded", body["error"]
    assert body["result"] == {"total": sum(n * n for n in range(1000)), "same_process": False}


async def test_arqs_marker_of_a_running_job_lives_one_lease_and_is_renewed(
    client: Client, auth: dict[str, str], make_settings: Callable[..., Settings]
) -> None:
    """A worker killed between picking a job up and taking its lease must free the job as
    fast as one killed later: arq's in-progress marker lasts one lease, renewed with it."""
    from acceptd.jobs.registry import JobRegistry
    from acceptd.store import keys
    from acceptd.worker.role import create_worker
    from tests.support.roles import stop_or_explain

    settings = make_settings(job_lease_seconds=1.5)
    running = create_worker(
        settings, JobRegistry.from_modules(settings.job_modules), handle_signals=False
    )
    assert running.in_progress_timeout_s == 1.5
    task = asyncio.create_task(running.async_run())
    job = await submit(client, auth, "demo.echo", {"value": 1, "delay_ms": 4000})
    shards = await open_shards(settings)
    marker = keys.arq_in_progress(job["id"])
    try:

        async def marked() -> int:
            ttl: int = await shards.for_key(marker).pttl(marker)
            return ttl if ttl > 0 else 0

        first = await wait_until(marked)
        assert first <= 1500
        await asyncio.sleep(2.0)  # longer than the marker's own life: only renewal keeps it
        assert await marked() > 0
    finally:
        await shards.aclose()
        await stop_or_explain(running, task)


async def test_a_worker_stopped_as_it_starts_stops_every_time(
    client: TestClient[Any, Any], auth: dict[str, str], settings: Settings
) -> None:
    """Closed at once (a burst with nothing to run: each job is canceled first), while its
    wake-up listener is still subscribing and the submit's wake-up arrives: a cancellation
    lost there once left the shutdown waiting forever (on a cluster, one run in three)."""
    from acceptd.jobs.registry import JobRegistry
    from acceptd.worker.role import create_worker

    registry = JobRegistry.from_modules(settings.job_modules)
    for _ in range(15):
        echo = {"type": "demo.echo", "input": {"value": 1}}
        job = await submit_job(client, auth, echo)
        assert (await client.post(f"{job['links']['self']}/cancel", headers=auth)).status == 202
        worker = create_worker(settings, registry, burst=True, handle_signals=False)
        started = time.monotonic()
        async with asyncio.timeout(10):
            await worker.main()
            await worker.close()
        # Well under a second (a timeout's own cancel can be lost the same way: timed too).
        assert time.monotonic() - started < 3


async def test_a_full_worker_takes_the_next_due_job_as_a_slot_frees(
    client: TestClient[Any, Any], auth: dict[str, str], make_settings: Callable[..., Settings]
) -> None:
    """One slot, six jobs queued before it starts, and its fallback poll at its longest
    (5 s): each run that ends wakes it for the next (queue/wakeable.py), or the five after
    the first would wait 25 s of fallback polls between them."""
    from acceptd.jobs.registry import JobRegistry
    from acceptd.worker.role import create_worker
    from tests.support.roles import stop_or_explain

    jobs = [await submit(client, auth, "demo.echo", {"value": n}) for n in range(6)]
    slow_poll = make_settings(worker_concurrency=1, worker_poll_delay_seconds=5)
    running = create_worker(
        slow_poll, JobRegistry.from_modules(slow_poll.job_modules), handle_signals=False
    )
    task = asyncio.create_task(running.async_run())
    try:
        for job in jobs:
            await wait_until(status_is(client, auth, job, "succeeded"), timeout=4)
    finally:
        await stop_or_explain(running, task)


async def test_a_job_queued_alone_is_taken_without_reading_the_queue(
    client: TestClient[Any, Any], auth: dict[str, str], make_settings: Callable[..., Settings]
) -> None:
    """The wake-up of a job queued alone names it (store/lua/_new_job.lua): an idle worker
    takes it at once, with no read of the queue on the way, and a run that ends does not
    read it again either. The worker's reads of its queue are counted where it makes them
    (the server's ZRANGE count would include its scheduler's); its fallback poll is at its
    longest (5 s), so none falls in the measured stretch."""
    from acceptd.jobs.registry import JobRegistry
    from acceptd.worker.role import create_worker
    from tests.support.roles import stop_or_explain

    slow_poll = make_settings(worker_poll_delay_seconds=5)
    running = create_worker(
        slow_poll, JobRegistry.from_modules(slow_poll.job_modules), handle_signals=False
    )
    reads = 0
    read_queue_heads = running._queue_heads

    async def counted(start: int, count: int) -> Any:
        nonlocal reads
        reads += 1
        return await read_queue_heads(start, count)

    running._queue_heads = counted  # type: ignore[method-assign]
    task = asyncio.create_task(running.async_run())
    try:
        warm = await submit(client, auth, "demo.echo", {"value": 0})  # it listens and polled
        await wait_until(status_is(client, auth, warm, "succeeded"), timeout=4)
        before = reads
        for n in range(1, 4):
            job = await submit(client, auth, "demo.echo", {"value": n})
            await wait_until(status_is(client, auth, job, "succeeded"), timeout=4)
        assert reads == before
    finally:
        await stop_or_explain(running, task)


async def test_a_finished_run_leaves_nothing_of_itself_in_the_queue(
    client: TestClient[Any, Any], auth: dict[str, str], worker: None
) -> None:
    """A run ends with its job's outcome, in the outcome's round trip (queue/leanworker.py
    _run_ender): once the job has succeeded, its marker, arq's job key and its entry in the
    running set are gone, and its tenant holds no slot."""
    from acceptd.api import state
    from tests.support.sharded import summed

    shards = client.app[state.SHARDS]
    jobs = [await submit(client, auth, "demo.echo", {"value": n}) for n in range(3)]
    for job in jobs:
        await wait_until(status_is(client, auth, job, "succeeded"), timeout=4)

    async def nothing_left() -> bool:
        running = await summed(shards, lambda pipe, shard: pipe.zcard(keys.running_jobs(shard)))
        held = [
            await shards.for_key(keys.arq_job(job["id"])).exists(
                keys.arq_in_progress(job["id"]), keys.arq_job(job["id"])
            )
            for job in jobs
        ]
        return running == 0 and not any(held)

    await wait_until(nothing_left, timeout=2)


@pytest.mark.skipif(TEST_SHARDS < 2, reason="two shards' queues, each with one job alone")
async def test_named_jobs_beyond_the_free_slots_are_left_to_a_read_of_the_queue(
    client: TestClient[Any, Any], auth: dict[str, str], make_settings: Callable[..., Settings]
) -> None:
    """Two wake-ups name a normal job alone on one shard and a high-priority job alone on
    another, and the worker has one slot free: it reads the queue, which takes the high lane
    of every shard first, rather than the names in the order they came."""
    from acceptd.core import ids
    from acceptd.jobs.registry import JobRegistry
    from acceptd.queue.leanworker import ArqStoreClient, LeanWorker
    from acceptd.worker.role import create_worker

    async def alone_on(shard: int, priority: str) -> str:
        for _ in range(200):  # each try lands on one of TEST_SHARDS shards at random
            body = {"type": "demo.echo", "input": {"value": 1}, "priority": priority}
            job = await submit_job(client, auth, body)
            if ids.shard_of(job["id"]) == shard:
                return str(job["id"])
            await client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth)
        raise AssertionError(f"no job landed on shard {shard}")

    settings = make_settings(worker_concurrency=2)
    registry = JobRegistry.from_modules(settings.job_modules)
    worker = create_worker(settings, registry, handle_signals=False)
    shards = await open_shards(settings)
    worker._shards = shards
    worker._pool = ArqStoreClient(connection_pool=shards.control.connection_pool)
    busy: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    await worker.sem.acquire()  # one of its two slots holds a run of its own
    worker.job_counter = 1
    worker.tasks["job_busy"] = busy  # type: ignore[assignment]
    try:
        normal = await alone_on(0, "normal")
        high = await alone_on(1, "high")
        for shard, job_id in ((0, normal), (1, high)):
            assert await shards.of(shard).zrange(keys.job_queue(shard), 0, -1) == [job_id]
        worker.wake(normal)  # as the listener hands the two wake-ups over
        worker.wake(high)
        await LeanWorker._poll_iteration(worker)
        assert set(worker.tasks) == {"job_busy", high}
    finally:
        for task in worker.tasks.values():
            task.cancel()
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        await shards.aclose()


def _spy_on_starts(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Every JobStore.start from now on, by its `taken_by` (None: sent after its pickup)."""
    starts: list[str | None] = []
    start = JobStore.start

    async def counted(
        self: JobStore, ref: JobRef, max_attempts: int, *, taken_by: str | None = None
    ) -> Any:
        starts.append(taken_by)
        return await start(self, ref, max_attempts, taken_by=taken_by)

    monkeypatch.setattr(JobStore, "start", counted)
    return starts


async def test_a_job_its_wakeup_announced_starts_in_its_pickups_round_trip(
    client: Client, auth: dict[str, str], worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job queued alone is announced by its wake-up with its payload, and the worker sends
    the job's start in the pickup's own batch (worker/pickupstart.py): one round trip less
    between a submit and the run, and the run does not start the job again."""
    from acceptd.store.batching import CommandBatches, Queued

    warm = await submit(client, auth, "demo.echo", {"value": 0})  # it listens and polled
    await wait_until(status_is(client, auth, warm, "succeeded"), timeout=4)
    batches: list[list[str]] = []  # per batch sent together: each script's first key
    together = CommandBatches._together

    async def recorded(self: CommandBatches, batch: list[Queued]) -> None:
        batches.append([str(args[3]) for args, _, _ in batch if args[0] == "EVALSHA"])
        await together(self, batch)

    monkeypatch.setattr(CommandBatches, "_together", recorded)
    starts = _spy_on_starts(monkeypatch)

    job = await submit(client, auth, "demo.echo", {"value": 1})
    body = await wait_until(status_is(client, auth, job, "succeeded"), timeout=4)
    assert body["attempts"] == 1
    assert len(starts) == 1  # one start,
    assert starts[0]  # sent with the pickup (the run's token)
    pickup_then_start = [keys.arq_in_progress(job["id"]), keys.job(job["id"])]
    assert any(
        sent[i : i + 2] == pickup_then_start for sent in batches for i in range(len(sent))
    ), batches


@pytest.mark.parametrize("reply", ["not taken", "lost"])
async def test_a_run_whose_start_did_not_come_with_its_pickup_starts_the_job_itself(
    client: Client,
    auth: dict[str, str],
    worker: None,
    monkeypatch: pytest.MonkeyPatch,
    reply: str,
) -> None:
    """The start sent with a pickup says it found the job not taken, or its reply is lost
    (an error): the run starts the job itself, once."""
    from acceptd.store.jobs import StartedJob
    from acceptd.worker.pickupstart import StartWithPickup

    warm = await submit(client, auth, "demo.echo", {"value": 0})
    await wait_until(status_is(client, auth, warm, "succeeded"), timeout=4)
    sent: list[str] = []

    async def answered(job_id: str) -> StartedJob:
        sent.append(job_id)
        if reply == "lost":
            raise ConnectionError("the reply was lost")
        return StartedJob("not-taken", 0)

    def send(self: StartWithPickup, job_id: str, *_: Any) -> Awaitable[StartedJob]:
        return answered(job_id)

    monkeypatch.setattr(StartWithPickup, "send", send)
    starts = _spy_on_starts(monkeypatch)

    job = await submit(client, auth, "demo.echo", {"value": 1})
    body = await wait_until(status_is(client, auth, job, "succeeded"), timeout=4)
    assert sent == [job["id"]]  # it went with the pickup
    assert starts == [None]  # and the run started the job itself, once
    assert body["attempts"] == 1

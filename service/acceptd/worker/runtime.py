"""The worker's state and loops: one attempt of a handler per "run job X" (its lease is
arq's marker, renewed by queue/leanworker.py), cancel watching, scheduled jobs and
input deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from arq import Retry
from pydantic import BaseModel, ValidationError

from acceptd.core import tracing
from acceptd.core.clock import now_ms
from acceptd.core.jsonenc import encoded_size
from acceptd.core.logs import log_context
from acceptd.core.settings import Settings
from acceptd.core.statuses import JobStatus
from acceptd.jobs.context import (
    JOB_FAILED_TYPE,
    AwaitInput,
    JobCanceled,
    JobContext,
    JobError,
    RetryJob,
)
from acceptd.jobs.registry import JobDefinition, JobRegistry
from acceptd.runtime.bootstrap import secret_box
from acceptd.runtime.metrics import JOB_QUEUE_WAIT_SECONDS, JOB_RUN_SECONDS, JOBS_FINISHED
from acceptd.store.batches import BatchStore
from acceptd.store.connection import open_shards
from acceptd.store.jobs import JobRef, JobStore
from acceptd.store.outages import (
    OUTAGE_ERRORS,
    describe,
    is_outage,
    outage_retry_delay,
    persist,
)
from acceptd.store.schedules import ScheduleStore
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from acceptd.worker.progress import ProgressReporter

log = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 0.2
MIN_PROMOTE_SECONDS = 0.05
SCHEDULER_MAX_SLEEP_SECONDS = 5.0
LOOP_STOP_SECONDS = 5.0


def _problem(title: str, detail: str | None, type_: str = JOB_FAILED_TYPE) -> dict[str, Any]:
    return {"type": type_, "title": title, "detail": detail}


INPUT_TIMED_OUT = _problem(
    "input timed out", "nobody completed the job with its completion token before the deadline"
)


def _handler_problem(exc: BaseException) -> dict[str, Any]:
    # An unexpected exception's text is not the job author's message to the tenant: a driver
    # error carries DSNs and hosts (`redis://:password@10.0.0.1`). Its type only; the text
    # and the traceback go to the worker's log. JobError is how a handler words a failure.
    return _problem(
        "job handler raised an exception",
        f"{type(exc).__name__} (its message and traceback are in the worker's log)",
    )


@dataclass
class RunningJob:
    context: JobContext
    task: asyncio.Task[Any]
    cancel_seen_at: float | None = None
    forced: bool = False


@dataclass
class WorkerRuntime:
    settings: Settings
    registry: JobRegistry
    shards: Shards
    store: JobStore
    threads: ThreadPoolExecutor
    batches: BatchStore
    schedules: ScheduleStore
    running: dict[str, RunningJob] = field(default_factory=dict)
    _processes: ProcessPoolExecutor | None = None
    _loops: list[asyncio.Task[None]] = field(default_factory=list)
    # The background loops stop between Redis calls, never in the middle of one: a command
    # cancelled mid-flight can leave a pooled connection out of step with its replies.
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when a job is scheduled or parked awaiting input: the scheduler looks again.
    _schedule_changed: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def open(cls, settings: Settings, registry: JobRegistry) -> WorkerRuntime:
        shards = await open_shards(settings)
        scripts = Scripts(shards)
        store = JobStore(
            shards, scripts, settings.job_retention_seconds, secret_box(settings),
            quota=settings.max_jobs_per_tenant, byte_budget=settings.max_bytes_per_tenant,
        )  # fmt: skip
        runtime = cls(
            settings=settings,
            registry=registry,
            shards=shards,
            store=store,
            threads=ThreadPoolExecutor(settings.worker_threads, thread_name_prefix="acceptd-job"),
            batches=BatchStore(shards, scripts, store),
            schedules=ScheduleStore(shards, scripts, store),
        )
        loop = asyncio.get_running_loop()
        runtime._loops = [
            loop.create_task(runtime._watch_cancels(), name="cancel-watch"),
            loop.create_task(runtime._promote_scheduled(), name="promote"),
        ]
        return runtime

    async def close(self) -> None:
        self._stopping.set()
        self._schedule_changed.set()  # the scheduler's sleep ends now, not when it is due
        loops = self._loops
        if loops:
            _, late = await asyncio.wait(loops, timeout=LOOP_STOP_SECONDS)
            for task in late:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.threads.shutdown(wait=False, cancel_futures=True)
        if self._processes is not None:
            self._processes.shutdown(wait=False, cancel_futures=True)
        await self.shards.aclose()

    def processes(self) -> Executor:
        if self._processes is None:
            # spawn, not fork: forking a process that runs an event loop and sockets is unsafe.
            self._processes = ProcessPoolExecutor(mp_context=multiprocessing.get_context("spawn"))
        return self._processes

    def timeout_for(self, definition: JobDefinition) -> float:
        return definition.timeout_seconds or self.settings.default_job_timeout_seconds

    async def _pause(self, seconds: float) -> bool:
        """Sleep between rounds of a background loop; False once the runtime is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return not self._stopping.is_set()

    def wake_scheduler(self) -> None:
        """A job was scheduled (somewhere) or parked awaiting input (here): look again now."""
        self._schedule_changed.set()

    async def _promote_scheduled(self) -> None:
        """Queue scheduled jobs as they fall due, runs whose retry delay ended and runs whose
        lease lapsed (their worker died), submit the jobs of recurring schedules' due ticks
        (store/schedules.py), and fail jobs whose input deadline passed;
        with many shards, also queue (or roll back) the parts of batches whose API stopped
        while writing them (BatchStore.recover_parts).
        Every worker does all (each step is one atomic script), sleeping until the earliest
        due time or deadline it read, or until woken: a job is scheduled (the submit
        publishes it, and so does a schedule's create or change) or parked here. Idle,
        that is five commands a shard per
        SCHEDULER_MAX_SLEEP, not four per poll; a lost wake-up costs at most that long."""
        while not self._stopping.is_set():
            next_ms: list[int] = []
            try:
                self._schedule_changed.clear()
                for shard in range(self.shards.count):
                    _, scheduled = await self.store.promote_due(shard)
                    _, lapses = await self.store.recover_lapsed(shard)
                    _, tick = await self.schedules.tick_due(shard)
                    expired, deadline = await self.store.expire_awaiting(shard, INPUT_TIMED_OUT)
                    for job_type in expired:
                        JOBS_FINISHED.labels(job_type, JobStatus.FAILED.value).inc()
                    held = None
                    if self.shards.count > 1:
                        held = await self.batches.recover_parts(shard)
                    due = (scheduled, lapses, tick, deadline, held)
                    next_ms += [at for at in due if at is not None]
            except Exception:
                log.warning("could not promote scheduled jobs or expire input", exc_info=True)
            if self._stopping.is_set():
                return  # close() set both events: checked after the clear above
            sleep = SCHEDULER_MAX_SLEEP_SECONDS
            if next_ms:
                sleep = min(sleep, max(0.0, (min(next_ms) - now_ms()) / 1000))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._schedule_changed.wait(), max(MIN_PROMOTE_SECONDS, sleep)
                )

    async def _watch_cancels(self) -> None:
        """One pipelined read per tick for all jobs running here; nothing when idle."""
        loop = asyncio.get_running_loop()
        while await self._pause(CANCEL_POLL_SECONDS):
            if not self.running:
                continue
            job_ids = list(self.running)
            try:
                flags = await self.store.cancel_flags(job_ids)
            except Exception:
                log.warning("could not read cancel flags", exc_info=True)
                continue
            now = loop.time()
            for job_id, wanted in zip(job_ids, flags, strict=True):
                running = self.running.get(job_id)
                if running is None or not wanted:
                    continue
                if running.cancel_seen_at is None:
                    running.cancel_seen_at = now
                    running.context._mark_canceled()
                elif now - running.cancel_seen_at >= self.settings.cancel_grace_seconds:
                    log.info("job %s ignored cancel for the grace period; forcing it", job_id)
                    running.forced = True
                    running.task.cancel()

    async def run(self, ref: JobRef, job_type: str, job_try: int) -> None:
        """One run of "run job X". A store outage anywhere in it becomes an arq retry with
        backoff, never arq's "failed, delete"; anything else unforeseen runs it again one
        lease later (queue/leanworker.py), the attempt counted."""
        with log_context(job_id=ref.id, tenant=ref.tenant):
            try:
                # Read only when spans are exported: without them the id alone flows on.
                parent = await self.store.traceparent(ref.id) if tracing.exporting() else None
                with tracing.span(f"run {job_type}", parent, kind="consumer",
                                  attributes={"acceptd.job_id": ref.id}):  # fmt: skip
                    await self._run(ref, job_type)
            except Retry:
                raise  # requeued by the handler's request; arq defers it
            except OUTAGE_ERRORS as exc:
                if not is_outage(exc):
                    raise
                delay = outage_retry_delay(job_try)
                log.warning("%s while running job %s; retrying in %.0f s", describe(exc), ref.id,
                            delay)  # fmt: skip
                raise Retry(defer=delay) from exc

    async def _run(self, ref: JobRef, job_type: str) -> None:
        definition = self.registry.get(job_type)
        if definition is None:
            await self.store.finish(
                ref, JobStatus.FAILED,
                error=_problem(
                    "job type not available",
                    f"no worker handler for {job_type!r}: check ACCEPTD_JOB_MODULES on the workers",
                ),
            )  # fmt: skip
            return
        started = await self.store.start(ref, definition.max_attempts)
        if started.outcome == "exhausted":
            await self.store.finish(
                ref, JobStatus.FAILED,
                error=_problem(
                    "job attempts exhausted",
                    f"started {started.attempt} times without finishing "
                    "(a worker stopped while running it each time)",
                ),
            )  # fmt: skip
            return
        if started.outcome != "running":
            return  # canceled before it started, or already terminal: nothing to do
        if started.attempt == 1:
            waited = max(0, now_ms() - started.created_ms) / 1000
            JOB_QUEUE_WAIT_SECONDS.labels(job_type).observe(waited)
        began = time.perf_counter()
        try:
            await self._attempt(definition, ref, started.attempt, started.input, started.metadata)
        finally:
            JOB_RUN_SECONDS.labels(job_type).observe(time.perf_counter() - began)

    async def _attempt(
        self,
        definition: JobDefinition,
        ref: JobRef,
        attempt: int,
        raw_input: Any,
        metadata: dict[str, Any],
    ) -> None:
        reporter = ProgressReporter(self.store, ref)
        context = JobContext(
            job_id=ref.id,
            tenant=ref.tenant,
            job_type=definition.name,
            attempt=attempt,
            max_attempts=definition.max_attempts,
            metadata=metadata,
            progress_sink=reporter.report,
            threads=self.threads,
            processes=self.processes,
        )
        try:
            data = definition.input_model.model_validate(raw_input)
        except ValidationError as exc:  # stored input no longer fits: the type changed since submit
            await self.store.finish(
                ref, JobStatus.FAILED,
                error=_problem("invalid input", f"input no longer matches the job type: {exc}"),
            )  # fmt: skip
            return
        task = asyncio.get_running_loop().create_task(self._invoke(definition, context, data))
        running = RunningJob(context, task)
        self.running[ref.id] = running
        status, result, error = JobStatus.FAILED, None, None
        retry_after: float | None = None
        deadline = asyncio.timeout(self.timeout_for(definition))
        try:
            async with deadline:
                value = await task
            status, result = JobStatus.SUCCEEDED, value
        except JobCanceled:
            status = JobStatus.CANCELED
        except RetryJob as exc:
            if attempt < definition.max_attempts:
                retry_after = exc.after_seconds
            else:
                error = _problem("retries exhausted", f"last attempt asked to retry: {exc}")
        except JobError as exc:
            error = exc.problem()
        except TimeoutError as exc:
            if deadline.expired():
                limit = self.timeout_for(definition)
                error = _problem("job timed out", f"ran longer than its {limit:g} s timeout")
            else:  # the handler's own TimeoutError (an HTTP call, say)
                log.exception("job %s (%s) raised", ref.id, definition.name)
                error = _handler_problem(exc)
        except asyncio.CancelledError:
            if running.forced:
                status = JobStatus.CANCELED
            else:
                # The worker is stopping: hand the job back without charging the attempt.
                await asyncio.shield(self.store.requeue(ref, refund_attempt=True))
                raise
        except Exception as exc:
            log.exception("job %s (%s) raised", ref.id, definition.name)
            error = _handler_problem(exc)
        finally:
            self.running.pop(ref.id, None)
            await reporter.close()

        if retry_after is not None:
            await persist("a retry", lambda: self.store.requeue(ref, refund_attempt=False))
            raise Retry(defer=retry_after)
        progress = reporter.latest
        input_timeout: float | None = None
        if status is JobStatus.SUCCEEDED:
            if definition.awaits_input is not None or isinstance(result, AwaitInput):
                result, input_timeout, error = self._input_request(definition, result)
            if error is None:
                result, error = self._encode_result(result)
            if error is not None:
                status = JobStatus.FAILED
            elif input_timeout is None:
                progress = {"fraction": 1.0, "message": (progress or {}).get("message")}
        if input_timeout is not None and status is JobStatus.SUCCEEDED:
            # The handler did its part; the result comes from outside (see @job awaits_input).
            deadline_ms = now_ms() + int(input_timeout * 1000)
            await persist("the input request", lambda: self.store.await_input(
                ref, request=result, deadline_ms=deadline_ms, progress=progress,
            ))  # fmt: skip
            self.wake_scheduler()  # its deadline may be the next one
            return
        outcome = await persist("the outcome", lambda: self.store.finish(
            ref, status, result=result, error=error, progress=progress
        ))  # fmt: skip
        if outcome == "ok":
            JOBS_FINISHED.labels(definition.name, status.value).inc()

    async def _invoke(self, definition: JobDefinition, context: JobContext, data: BaseModel) -> Any:
        if definition.is_async:
            return await definition.handler(context, data)
        return await context.run_in_thread(definition.handler, context, data)

    def _input_request(
        self, definition: JobDefinition, value: Any
    ) -> tuple[Any, float | None, dict[str, Any] | None]:
        """(what the completer sees, seconds to wait for input, or the problem that fails it)."""
        if definition.awaits_input is None:
            return (
                None,
                None,
                _problem(
                    "job type does not await input",
                    f"the handler returned AwaitInput; {definition.name} declares no awaits_input",
                ),
            )
        if isinstance(value, AwaitInput):
            return value.request, value.timeout_seconds or definition.input_timeout_seconds, None
        return value, definition.input_timeout_seconds, None

    def _encode_result(self, value: Any) -> tuple[Any, dict[str, Any] | None]:
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        try:
            size = encoded_size(value)
        except (TypeError, ValueError) as exc:
            return None, _problem("result is not JSON", f"the handler returned {exc}")
        if size > self.settings.max_result_bytes:
            return None, _problem(
                "result too large", f"{size} bytes; the limit is {self.settings.max_result_bytes}"
            )
        return value, None

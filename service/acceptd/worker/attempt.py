"""One run of "run job X" on a worker: its attempt of the handler (its lease is arq's
marker, renewed by queue/leanworker.py), judged by worker/verdict.py and written to the
job's record."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from collections.abc import Awaitable, Callable
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
from acceptd.jobs.context import AwaitInput, JobContext
from acceptd.jobs.registry import JobDefinition, JobRegistry
from acceptd.runtime.metrics import JOB_QUEUE_WAIT_SECONDS, JOB_RUN_SECONDS, JOBS_FINISHED
from acceptd.store.job_record import JobRef
from acceptd.store.jobs import JobStore, StartedJob
from acceptd.store.outages import StoreUnavailable, outage_retry_delay, persist
from acceptd.worker.progress import ProgressReporter
from acceptd.worker.verdict import judge, problem

log = logging.getLogger(__name__)

# Ends the run's queue entry once the job's record has ended, sent with the outcome in one
# round trip; True if it did (queue/leanworker.py LeanWorker._run_ender).
RunEnder = Callable[[], Awaitable[bool]]


@dataclass
class RunningJob:
    context: JobContext
    task: asyncio.Task[Any]
    cancel_seen_at: float | None = None
    forced: bool = False


@dataclass
class JobRunner:
    """Runs the attempts of this worker. `running`: the jobs running here (the cancel
    watcher reads it); `deadline_set`: called when a job parks awaiting input (the
    scheduler times its deadline)."""

    settings: Settings
    registry: JobRegistry
    store: JobStore
    deadline_set: Callable[[], None]
    running: dict[str, RunningJob] = field(default_factory=dict)
    threads: ThreadPoolExecutor = field(init=False)
    _processes: ProcessPoolExecutor | None = None

    def __post_init__(self) -> None:
        self.threads = ThreadPoolExecutor(
            self.settings.worker_threads, thread_name_prefix="acceptd-job"
        )

    def processes(self) -> Executor:
        """The process pool of handlers' CPU-bound work, made on first use."""
        if self._processes is None:
            # spawn, not fork: forking a process that runs an event loop and sockets is unsafe.
            self._processes = ProcessPoolExecutor(mp_context=multiprocessing.get_context("spawn"))
        return self._processes

    def close(self) -> None:
        self.threads.shutdown(wait=False, cancel_futures=True)
        if self._processes is not None:
            self._processes.shutdown(wait=False, cancel_futures=True)

    def timeout_for(self, definition: JobDefinition) -> float:
        return definition.timeout_seconds or self.settings.default_job_timeout_seconds

    async def run(
        self,
        ref: JobRef,
        job_type: str,
        job_try: int,
        end_run: RunEnder | None = None,
        started: StartedJob | None = None,
    ) -> None:
        """One run of "run job X". A store outage anywhere in it becomes an arq retry with
        backoff, never arq's "failed, delete"; anything else unforeseen runs it again one
        lease later (queue/leanworker.py), the attempt counted. `started`: the job's start,
        if it went out with the pickup (worker/pickupstart.py)."""
        with log_context(job_id=ref.id, tenant=ref.tenant):
            try:
                # Read only when spans are exported: without them the id alone flows on.
                parent = await self.store.traceparent(ref.id) if tracing.exporting() else None
                with tracing.span(
                    f"run {job_type}",
                    parent,
                    kind="consumer",
                    attributes={"acceptd.job_id": ref.id},
                ):
                    await self._run(ref, job_type, end_run, started)
            except Retry:
                raise  # requeued by the handler's request; arq defers it
            except StoreUnavailable as exc:
                delay = outage_retry_delay(job_try)
                log.warning(
                    "%s while running job %s; retrying in %.0f s", exc.reason, ref.id, delay
                )
                raise Retry(defer=delay) from exc

    async def _run(
        self,
        ref: JobRef,
        job_type: str,
        end_run: RunEnder | None,
        started: StartedJob | None,
    ) -> None:
        definition = self.registry.get(job_type)
        if definition is None:
            await self.store.finish(
                ref,
                JobStatus.FAILED,
                error=problem(
                    "job type not available",
                    f"no worker handler for {job_type!r}: check ACCEPTD_JOB_MODULES on the workers",
                ),
            )
            return
        if started is None or started.outcome == "not-taken":
            started = await self.store.start(ref, definition.max_attempts)
        if started.outcome == "exhausted":
            await self.store.finish(
                ref,
                JobStatus.FAILED,
                error=problem(
                    "job attempts exhausted",
                    f"started {started.attempt} times without finishing "
                    "(a worker stopped while running it each time)",
                ),
            )
            return
        if started.outcome != "running":
            return  # canceled before it started, or already terminal: nothing to do
        if started.attempt == 1:
            waited = max(0, now_ms() - started.created_ms) / 1000
            JOB_QUEUE_WAIT_SECONDS.labels(job_type).observe(waited)
        began = time.perf_counter()
        try:
            await self._attempt(
                definition, ref, started.attempt, started.input, started.metadata, end_run
            )
        finally:
            JOB_RUN_SECONDS.labels(job_type).observe(time.perf_counter() - began)

    async def _attempt(
        self,
        definition: JobDefinition,
        ref: JobRef,
        attempt: int,
        raw_input: Any,
        metadata: dict[str, Any],
        end_run: RunEnder | None = None,
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
                ref,
                JobStatus.FAILED,
                error=problem("invalid input", f"input no longer matches the job type: {exc}"),
            )
            return
        task = asyncio.get_running_loop().create_task(self._invoke(definition, context, data))
        running = RunningJob(context, task)
        self.running[ref.id] = running
        ended: BaseException | None = None
        value: Any = None
        timeout = self.timeout_for(definition)
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                value = await task
        except asyncio.CancelledError as exc:
            if not running.forced:
                # The worker is stopping: hand the job back without charging the attempt.
                await asyncio.shield(self.store.requeue(ref, refund_attempt=True))
                raise
            ended = exc  # stopped by force after ignoring a cancel
        except Exception as exc:
            ended = exc
        finally:
            self.running.pop(ref.id, None)
            await reporter.close()
        verdict = judge(
            ended,
            value,
            attempt=attempt,
            max_attempts=definition.max_attempts,
            timeout=timeout,
            timed_out=deadline.expired(),
        )
        if verdict.logged is not None:
            log.error("job %s (%s) raised", ref.id, definition.name, exc_info=verdict.logged)
        status, result, error, retry_after = (
            verdict.status,
            verdict.result,
            verdict.error,
            verdict.retry_after,
        )

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
            await persist(
                "the input request",
                lambda: self.store.await_input(
                    ref, request=result, deadline_ms=deadline_ms, progress=progress
                ),
            )
            self.deadline_set()  # its deadline may be the scheduler's next
            return

        async def write_outcome() -> str:
            finishing = self.store.finish(
                ref, status, result=result, error=error, progress=progress
            )
            if end_run is None:
                return await finishing
            # In one turn of the loop, so in one round trip (store/batching.py): the
            # outcome, then the end of the run, which happens only if the outcome did.
            outcome, _ended = await asyncio.gather(finishing, end_run(), return_exceptions=True)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

        outcome = await persist("the outcome", write_outcome)
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
                problem(
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
            return None, problem("result is not JSON", f"the handler returned {exc}")
        if size > self.settings.max_result_bytes:
            return None, problem(
                "result too large", f"{size} bytes; the limit is {self.settings.max_result_bytes}"
            )
        return value, None

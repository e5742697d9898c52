"""`acceptd worker`: the arq Worker for the job queue; arq runs "run job X", the runtime
turns that into one attempt of a handler."""

from __future__ import annotations

import functools
from typing import Any

from arq.worker import func

from acceptd.core.settings import Settings
from acceptd.jobs.registry import JobRegistry
from acceptd.queue.leanworker import END_RUN, WITH_PICKUP
from acceptd.queue.wakeable import WakeableWorker
from acceptd.runtime.roleworker import ARQ_MAX_TRIES, RUNTIME, build_role_worker
from acceptd.store import keys
from acceptd.store.arqjobs import RUN_JOB_FUNCTION
from acceptd.store.job_record import JobRef
from acceptd.store.jobs import StartedJob
from acceptd.worker.assembly import WorkerRuntime


async def run_job(
    ctx: dict[str, Any], job_id: str, tenant: str, job_type: str, batch_id: str | None = None
) -> None:
    """arq's job: the arguments name the job's keys (store.jobs.JobRef)."""
    runtime: WorkerRuntime = ctx[RUNTIME]
    # The slot this run frees wakes the loop only when the last poll left work for want of
    # one (queue/wakeable.py): waking after every run cost an empty poll per job.
    ref = JobRef(job_id, tenant, batch_id)
    ender = ctx.get(END_RUN)
    # On the runtime's clients, which the outcome goes out on: one round trip for both.
    end_run = functools.partial(ender, runtime.shards) if ender is not None else None
    # Its start, if it went out with the pickup (worker/pickupstart.py).
    started = ctx.get(WITH_PICKUP)
    if not isinstance(started, StartedJob):
        started = None
    await runtime.runner.run(ref, job_type, int(ctx.get("job_try", 1)), end_run, started)


def create_worker(
    settings: Settings, registry: JobRegistry, *, burst: bool = False, handle_signals: bool = True
) -> WakeableWorker:
    """The arq Worker for the job queue (see roleworker for the settings both roles share)."""
    longest = max(
        [settings.default_job_timeout_seconds]
        + [d.timeout_seconds for d in registry if d.timeout_seconds is not None]
    )

    async def open_runtime() -> WorkerRuntime:
        return await WorkerRuntime.open(settings, registry)

    worker = build_role_worker(
        settings,
        role="worker",
        function=func(
            run_job,
            name=RUN_JOB_FUNCTION,
            max_tries=ARQ_MAX_TRIES,
            # arq's timeout is only a backstop behind ours and the forced cancel. After a
            # crash the job's lease (arq's marker) lapses and any worker takes it again.
            timeout=longest + settings.cancel_grace_seconds + 5,
        ),
        queue_of=keys.job_queue,
        max_jobs=settings.worker_concurrency,
        wakeup_kind=keys.JOBS_WAKEUP,
        open_runtime=open_runtime,
        burst=burst,
        handle_signals=handle_signals,
        # arq's marker of a run is its lease: one lease long, renewed while it runs.
        lease_seconds=settings.job_lease_seconds,
        # Tenants share the workers (store/fairshare.py).
        fair_share=True,
        # A job scheduled anywhere: every worker's scheduler looks again.
        runtime_wakeups=lambda runtime: {keys.SCHEDULED_WAKEUP: runtime.wake_scheduler},
        pickup_companion=WorkerRuntime.start_with_pickup,
    )
    return worker

"""The worker's scheduler loop: what falls due with time, on every shard."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from acceptd.core.clock import now_ms
from acceptd.core.statuses import JobStatus
from acceptd.runtime.metrics import JOBS_FINISHED
from acceptd.store.batches import BatchStore
from acceptd.store.jobs import JobStore
from acceptd.store.schedules import ScheduleStore
from acceptd.store.shards import Shards
from acceptd.worker.verdict import INPUT_TIMED_OUT

log = logging.getLogger(__name__)

MIN_PROMOTE_SECONDS = 0.05
SCHEDULER_MAX_SLEEP_SECONDS = 5.0


@dataclass
class Scheduler:
    """Queues scheduled jobs as they fall due, runs whose retry delay ended and runs whose
    lease lapsed (their worker died), submits the jobs of recurring schedules' due ticks
    (store/schedules.py), and fails jobs whose input deadline passed; with many shards,
    also queues (or rolls back) the parts of batches whose API stopped while writing them
    (BatchStore.recover_parts).
    Every worker does all (each step is one atomic script), sleeping until the earliest due
    time or deadline it read, or until woken: a job is scheduled (the submit publishes it,
    and so does a schedule's create or change) or parked here. Idle, that is five commands
    a shard per SCHEDULER_MAX_SLEEP_SECONDS, not five per poll; a lost wake-up costs at
    most that long."""

    shards: Shards
    store: JobStore
    batches: BatchStore
    schedules: ScheduleStore
    # Stops between Redis calls, never in the middle of one: a command cancelled
    # mid-flight can leave a pooled connection out of step with its replies.
    stopping: asyncio.Event
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        """Something was scheduled (somewhere) or parked awaiting input (here)."""
        self.changed.set()

    async def run(self) -> None:
        while not self.stopping.is_set():
            self.changed.clear()
            next_ms = await self._pass()
            if self.stopping.is_set():
                return  # the runtime's close set both events: checked after the clear above
            sleep = SCHEDULER_MAX_SLEEP_SECONDS
            if next_ms:
                sleep = min(sleep, max(0.0, (min(next_ms) - now_ms()) / 1000))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), max(MIN_PROMOTE_SECONDS, sleep))

    async def _pass(self) -> list[int]:
        """One round over every shard: when each next thing falls due (ms)."""
        next_ms: list[int] = []
        try:
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
        return next_ms

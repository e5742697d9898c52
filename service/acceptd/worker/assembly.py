"""The worker's state, made at start and closed at stop: the job runner (worker/attempt.py),
the cancel watcher (worker/cancels.py) and the scheduler loop (worker/scheduler.py), on
the store's clients."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from acceptd.core.settings import Settings
from acceptd.jobs.registry import JobRegistry
from acceptd.runtime.metrics import SCHEDULE_TICKS
from acceptd.store.batches import BatchStore
from acceptd.store.bootstrap import secret_box
from acceptd.store.connection import open_shards
from acceptd.store.jobs import JobStore
from acceptd.store.schedules import ScheduleStore
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from acceptd.worker.attempt import JobRunner
from acceptd.worker.cancels import CancelWatcher
from acceptd.worker.pickupstart import StartWithPickup
from acceptd.worker.scheduler import Scheduler

LOOP_STOP_SECONDS = 5.0


def _count_tick(outcome: str) -> None:
    SCHEDULE_TICKS.labels(outcome).inc()


@dataclass
class WorkerRuntime:
    settings: Settings
    shards: Shards
    runner: JobRunner
    scheduler: Scheduler
    cancels: CancelWatcher
    stopping: asyncio.Event
    _loops: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def open(cls, settings: Settings, registry: JobRegistry) -> WorkerRuntime:
        shards = await open_shards(settings)
        scripts = Scripts(shards)
        store = JobStore(
            shards,
            scripts,
            settings.job_retention_seconds,
            secret_box(settings),
            quota=settings.max_jobs_per_tenant,
            byte_budget=settings.max_bytes_per_tenant,
        )
        stopping = asyncio.Event()
        scheduler = Scheduler(
            shards,
            store,
            BatchStore(shards, scripts, store),
            ScheduleStore(shards, scripts, store, on_tick=_count_tick),
            stopping,
        )
        runner = JobRunner(settings, registry, store, deadline_set=scheduler.wake)
        runtime = cls(
            settings=settings,
            shards=shards,
            runner=runner,
            scheduler=scheduler,
            cancels=CancelWatcher(settings, store, runner.running, stopping),
            stopping=stopping,
        )
        loop = asyncio.get_running_loop()
        runtime._loops = [
            loop.create_task(runtime.cancels.run(), name="cancel-watch"),
            loop.create_task(scheduler.run(), name="promote"),
        ]
        return runtime

    def start_with_pickup(self) -> StartWithPickup:
        """What the worker sends with the pickup of a job its wake-up announced."""
        return StartWithPickup(self.shards, self.runner.registry, self.runner.store)

    def wake_scheduler(self) -> None:
        """A job was scheduled somewhere, or a schedule made or changed: look again now."""
        self.scheduler.wake()

    async def close(self) -> None:
        self.stopping.set()
        self.scheduler.wake()  # its sleep ends now, not when something falls due
        loops = self._loops
        if loops:
            _, late = await asyncio.wait(loops, timeout=LOOP_STOP_SECONDS)
            for task in late:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.runner.close()
        await self.shards.aclose()

"""The start of a job's record, sent with the job's pickup in one round trip: the worker's
pickup companion (queue/leanworker.py PickupCompanion).

A job queued alone is announced by its wake-up with its arq payload (store/lua/
_new_job.lua), which names the job's keys and its type: enough to send the start, guarded
by the run's token (store/lua/status/start.lua), in the pickup's own batch, where it would
otherwise wait for the pickup's reply. A start whose pickup did not take the job changes
nothing; a run that has no start of its own (none sent, or its reply lost) starts the
job itself (worker/attempt.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

from acceptd.jobs.registry import JobRegistry
from acceptd.store.arqjobs import RUN_JOB_FUNCTION
from acceptd.store.job_record import JobRef
from acceptd.store.jobs import JobStore, StartedJob
from acceptd.store.shards import Shards


@dataclass(frozen=True)
class StartWithPickup:
    shards: Shards  # the store's: the start goes out on them, and the pickup with it
    registry: JobRegistry
    store: JobStore

    def send(
        self, job_id: str, function: str, args: Sequence[Any], token: str
    ) -> Awaitable[StartedJob] | None:
        """The start of a run of "run job X" (worker/role.py run_job's arguments), or None
        for anything else, or a type this worker has no handler for (the run says so)."""
        named = JobRef.of_run_args(args) if function == RUN_JOB_FUNCTION else None
        if named is None or named[0].id != job_id:
            return None
        ref, job_type = named
        definition = self.registry.get(job_type)
        if definition is None:
            return None
        return self.store.start(ref, definition.max_attempts, taken_by=token)

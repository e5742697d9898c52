"""Job leases: arq's in-progress marker of a run lives one lease (ACCEPTD_JOB_LEASE_SECONDS)
and the process running it renews it every third of that (runtime/leanworker.py). A
process that dies stops renewing: the marker lapses, and the next poll of any worker (or
dispatcher) takes the job again at once, whatever its own timeout (BullMQ's lock and
stalled check, Temporal's heartbeat timeout). The marker is the lease, so a job costs no
lease bookkeeping of its own: no set to add it to, remove it from or sweep."""

from __future__ import annotations

from redis.asyncio import Redis

from acceptd.store import keys


class JobLeases:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def give_up(self, job_ids: list[str]) -> None:
        """Jobs this worker can no longer finish (their run died on a Redis outage): any
        worker may take them now, not when their lease lapses."""
        if job_ids:
            await self._redis.delete(*(keys.arq_in_progress(job_id) for job_id in job_ids))
            await self._redis.publish(keys.JOBS_WAKEUP, "1")

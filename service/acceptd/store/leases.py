"""Job leases: arq's in-progress marker of a job lives one lease (ACCEPTD_JOB_LEASE_SECONDS)
and the worker running it renews it every third of that. A worker that dies stops renewing:
the marker lapses, and the next poll of any worker picks the job up again at once, whatever
its own timeout (BullMQ's lock and stalled check, Temporal's heartbeat timeout). The marker
is the lease, so a job costs no lease bookkeeping of its own: no set to add it to, remove it
from or sweep."""

from __future__ import annotations

from redis.asyncio import Redis

from acceptd.store import keys


class JobLeases:
    def __init__(self, redis: Redis, lease_seconds: float) -> None:
        self._redis = redis
        self.lease_ms = int(lease_seconds * 1000)

    async def renew(self, job_ids: list[str]) -> None:
        """One round trip for every job this worker holds; nothing when idle."""
        if not job_ids:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.pexpire(keys.arq_in_progress(job_id), self.lease_ms)
            await pipe.execute()

    async def give_up(self, job_ids: list[str]) -> None:
        """Jobs this worker can no longer finish (their run died on a Redis outage): any
        worker may take them now, not when their lease lapses."""
        if job_ids:
            await self._redis.delete(*(keys.arq_in_progress(job_id) for job_id in job_ids))
            await self._redis.publish(keys.JOBS_WAKEUP, "1")

"""Job leases: a worker holds one on every job it runs, renewed every few seconds. A job
whose lease lapsed has lost its worker and is queued again at once, whatever its own
timeout (BullMQ's lock and stalled check, Temporal's heartbeat timeout)."""

from __future__ import annotations

from redis.asyncio import Redis

from acceptd.core.clock import now_ms
from acceptd.store import keys
from acceptd.store.arqjobs import RUN_JOB_FUNCTION, arq_payload
from acceptd.store.jobs import JobRef
from acceptd.store.scripts import Scripts


class JobLeases:
    def __init__(self, redis: Redis, scripts: Scripts, lease_seconds: float) -> None:
        self._redis = redis
        self._scripts = scripts
        self.lease_ms = int(lease_seconds * 1000)

    async def hold(self, job_id: str) -> None:
        await self._redis.zadd(keys.JOB_LEASES, {job_id: now_ms() + self.lease_ms})

    async def release(self, job_id: str) -> None:
        await self._redis.zrem(keys.JOB_LEASES, job_id)

    async def renew(self, job_ids: list[str]) -> None:
        """One round trip for every job this worker holds: the lease (XX: never revives a
        released one) and arq's in-progress marker, which lives only as long as a lease
        (the role sets it so): a worker that dies before it took the lease, or at any
        moment after, frees its job within a lease."""
        if not job_ids:
            return
        deadline = now_ms() + self.lease_ms
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.JOB_LEASES, dict.fromkeys(job_ids, deadline), xx=True)
            for job_id in job_ids:
                pipe.pexpire(keys.arq_in_progress(job_id), self.lease_ms)
            await pipe.execute()

    async def lapsed(self, limit: int) -> list[str]:
        found: list[str] = await self._redis.zrangebyscore(
            keys.JOB_LEASES, "-inf", now_ms(), start=0, num=limit
        )
        return found

    async def reclaim(self, job_id: str, *, hand_back: bool = False) -> bool:
        """Queue the job again if its lease lapsed (or, with `hand_back`, at once)."""
        tenant, job_type, batch_id = await self._redis.hmget(  # type: ignore[misc]
            keys.job(job_id), ["tenant", "type", "batch"]
        )
        if tenant is None:  # the record expired: only the lease is left
            await self.release(job_id)
            return False
        ref = JobRef(job_id, tenant, batch_id)
        now = now_ms()
        reclaimed: int = await self._scripts.reclaim_job(
            keys=[
                keys.JOB_LEASES,
                keys.job(job_id),
                keys.arq_job(job_id),
                keys.arq_in_progress(job_id),
                keys.JOB_QUEUE,
            ],
            args=[
                job_id,
                now,
                arq_payload(RUN_JOB_FUNCTION, ref.run_args(job_type), now),
                self.lease_ms,
                keys.JOBS_WAKEUP,
                "1" if hand_back else "0",
            ],
        )
        return reclaimed == 1

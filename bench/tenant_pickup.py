"""`python -m bench.tenant_pickup`: what a worker's pickup costs as the number of tenants
with jobs waiting grows (store/fairshare.py: one queue per shard, scored by fair-share
tags, so nothing is visited per tenant).

Two queues of the same size are drained by one worker (its own process, the API and the
dispatcher not running): `--jobs` jobs of one tenant, then `--jobs - --tenants` jobs of one
tenant plus one job each of `--tenants` other tenants. Reported for each: Redis commands
per job while the worker drains it (`INFO commandstats`, scripts' inner commands
included) and the worker's CPU per job. The jobs are written straight through the store
(JobStore.create), as the API would write them, so no API runs beside the worker."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aredis

from acceptd.core.settings import Settings
from acceptd.store import keys
from acceptd.store.connection import open_shards
from acceptd.store.job_record import NewJob
from acceptd.store.jobs import JobStore
from acceptd.store.scripts import Scripts
from bench.cluster import Cluster

SLOTS = 16
WRITE_CONCURRENCY = 64


async def _fill(redis_url: str, tenants: list[str]) -> None:
    """One job (demo.echo, no callback) for each entry of `tenants`, in that order."""
    settings = Settings(redis_url=redis_url)
    shards = await open_shards(settings)
    try:
        store = JobStore(shards, Scripts(shards), retention_seconds=3600)
        pending = iter(tenants)

        async def writer() -> None:
            for tenant in pending:
                await store.create(NewJob(tenant, "demo.echo", {"value": 0}, {}, None))

        await asyncio.gather(*(writer() for _ in range(WRITE_CONCURRENCY)))
    finally:
        await shards.aclose()


async def _calls(redis: aredis.Redis) -> int:
    stats: dict[str, Any] = await redis.info("commandstats")
    return sum(int(value["calls"]) for value in stats.values())


async def _drain(cluster: Cluster, jobs: int) -> dict[str, float]:
    """Starts a worker, waits until the queue is empty, stops it: its figures per job."""
    redis = aredis.Redis.from_url(cluster.redis_url, decode_responses=True)
    try:
        before = await _calls(redis)
        slots = cluster.env(ACCEPTD_WORKER_CONCURRENCY=str(SLOTS))
        cluster.spawn("worker", "-m", "acceptd", "worker", env=slots)
        started, polls = time.monotonic(), 2
        while await redis.zcard(keys.job_queue(0)) + await redis.zcard(keys.running_jobs(0)) > 0:
            polls += 2
            await asyncio.sleep(0.05)
            if time.monotonic() - started > 600:
                raise RuntimeError("the worker did not drain the queue in 10 minutes")
        elapsed = time.monotonic() - started
        cpu = cluster.cpu_seconds("worker")
        # This harness's own calls (its polls, the INFO before) taken out; the worker's
        # start-up stays in (a few dozen commands over thousands of jobs).
        commands = await _calls(redis) - before - polls - 1
        cluster.stop("worker")
    finally:
        await redis.aclose()
    return {
        "commands_per_job": commands / jobs,
        "worker_cpu_ms_per_job": cpu * 1000 / jobs,
        "jobs_per_s": jobs / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=11_000)
    parser.add_argument("--tenants", type=int, default=1_000)
    args = parser.parse_args()
    one = ["big"] * args.jobs
    many = ["big"] * (args.jobs - args.tenants) + [f"t{i:05d}" for i in range(args.tenants)]
    rows: dict[str, dict[str, float]] = {}
    for name, tenants in (("1 tenant", one), (f"{args.tenants + 1} tenants", many)):
        with tempfile.TemporaryDirectory() as workdir:
            cluster = Cluster(Path(workdir))
            try:
                url = cluster.start_valkey()
                asyncio.run(_fill(url, tenants))
                rows[name] = asyncio.run(_drain(cluster, len(tenants)))
            finally:
                cluster.stop_all()
    print(f"{args.jobs} queued jobs of demo.echo, one worker of {SLOTS} slots")
    print(f"{'':>14} {'commands/job':>13} {'worker CPU ms/job':>18} {'jobs/s':>8}")
    for name, row in rows.items():
        print(
            f"{name:>14} {row['commands_per_job']:>13.1f} "
            f"{row['worker_cpu_ms_per_job']:>18.2f} {row['jobs_per_s']:>8.0f}"
        )


if __name__ == "__main__":
    main()

"""`python -m bench.schedules`: what 100,000 recurring schedules cost (store/schedules.py).

Three phases on one Valkey (AOF on):
1. create: `--schedules` schedules of one tenant through the store (ScheduleStore.create,
   what the API calls), `--writers` at a time;
2. idle: a real worker process (its scheduler sleeps on the due index) beside them, none
   due: Redis commands per second over `--idle-seconds`, its own start-up left out;
3. one tick: every schedule's next tick is set to the same instant a moment ahead (what a
   cron tick that every schedule shares looks like to the workers), and `--tickers`
   schedulers (ScheduleStore.tick_due in a loop, the step each worker's scheduler runs)
   write them: the time from the tick to the last job submitted, and Redis commands per
   tick (`INFO commandstats`, scripts' inner commands included). The jobs are queued, not
   run: this measures the ticks alone.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aredis

from acceptd.core.clock import now_ms
from acceptd.core.cron import Cron
from acceptd.core.settings import Settings
from acceptd.store import keys
from acceptd.store.connection import open_shards
from acceptd.store.jobs import JobStore
from acceptd.store.layouts import ScheduleField
from acceptd.store.schedules import JobTemplate, ScheduleStore
from acceptd.store.scripts import Scripts
from bench.cluster import Cluster

TENANT = "bench"
FAR_CRON = "0 0 1 1 *"  # due next January: waiting, for the idle phase
TICK_LEAD_MS = 2000


async def _store(redis_url: str) -> tuple[Any, ScheduleStore]:
    shards = await open_shards(Settings(redis_url=redis_url))
    scripts = Scripts(shards)
    return shards, ScheduleStore(shards, scripts, JobStore(shards, scripts, 3600))


async def _create(redis_url: str, count: int, writers: int) -> tuple[list[str], float]:
    shards, store = await _store(redis_url)
    cron = Cron.parse(FAR_CRON)
    template = JobTemplate("demo.echo", {"value": "tick"})
    made: list[str] = []
    left = iter(range(count))

    async def writer() -> None:
        for _ in left:
            made.append((await store.create(TENANT, cron, template)).id)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(writer() for _ in range(writers)))
    finally:
        await shards.aclose()
    return made, time.perf_counter() - started


async def _calls(redis: aredis.Redis) -> int:
    stats: dict[str, Any] = await redis.info("commandstats")
    return sum(int(value["calls"]) for value in stats.values())


async def _idle(cluster: Cluster, seconds: float) -> float:
    """Commands a second with a real worker beside the waiting schedules."""
    redis = aredis.Redis.from_url(cluster.redis_url, decode_responses=True)
    try:
        cluster.spawn("worker", "-m", "acceptd", "worker", env=cluster.env())
        await asyncio.sleep(3)  # its start-up (connections, script loads) is not idle cost
        before = await _calls(redis)
        await asyncio.sleep(seconds)
        commands = await _calls(redis) - before - 1  # this harness's INFO
        cluster.stop("worker")
    finally:
        await redis.aclose()
    return commands / seconds


async def _make_due(redis_url: str, schedule_ids: list[str], tick: int) -> None:
    redis = aredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        for start in range(0, len(schedule_ids), 5000):
            async with redis.pipeline(transaction=False) as pipe:
                for schedule_id in schedule_ids[start : start + 5000]:
                    pipe.hset(keys.schedule(schedule_id), ScheduleField.NEXT_TICK, tick)
                pipe.zadd(
                    keys.schedules_due(0), dict.fromkeys(schedule_ids[start : start + 5000], tick)
                )
                await pipe.execute()
    finally:
        await redis.aclose()


async def _tick(redis_url: str, schedule_ids: list[str], tickers: int) -> dict[str, float]:
    tick = now_ms() + TICK_LEAD_MS
    await _make_due(redis_url, schedule_ids, tick)
    redis = aredis.Redis.from_url(redis_url, decode_responses=True)
    stores = [await _store(redis_url) for _ in range(tickers)]
    try:
        jobs_before = await redis.zcard(keys.tenant_jobs(TENANT, 0))
        await asyncio.sleep((tick - now_ms()) / 1000)
        before = await _calls(redis)
        started = time.perf_counter()

        async def scheduler(store: ScheduleStore) -> int:
            made = 0
            while True:
                count, next_ms = await store.tick_due(0)
                made += count
                if next_ms is None or next_ms > now_ms():
                    return made

        made = sum(await asyncio.gather(*(scheduler(store) for _, store in stores)))
        elapsed = time.perf_counter() - started
        commands = await _calls(redis) - before - 1
        submitted = await redis.zcard(keys.tenant_jobs(TENANT, 0)) - jobs_before
    finally:
        for shards, store in stores:
            await store.idle()
            await shards.aclose()
        await redis.aclose()
    if made != len(schedule_ids) or submitted != len(schedule_ids):
        raise RuntimeError(f"{made} ticks written, {submitted} jobs, {len(schedule_ids)} due")
    return {
        "seconds": elapsed,
        "ticks_per_s": made / elapsed,
        "commands_per_tick": commands / made,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--schedules", type=int, default=100_000)
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--tickers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        cluster = Cluster(Path(workdir))
        try:
            url = cluster.start_valkey()
            schedule_ids, took = asyncio.run(_create(url, args.schedules, args.writers))
            print(
                f"{args.schedules} schedules created in {took:.1f} s "
                f"({args.schedules / took:.0f}/s, {args.writers} at a time)"
            )
            idle = asyncio.run(_idle(cluster, args.idle_seconds))
            print(f"idle, one worker beside them: {idle:.1f} Redis commands/s")
            for tickers in args.tickers:
                row = asyncio.run(_tick(url, schedule_ids, tickers))
                print(
                    f"one tick of all {args.schedules}, {tickers} scheduler(s): every job "
                    f"submitted {row['seconds']:.1f} s after the tick "
                    f"({row['ticks_per_s']:.0f} ticks/s), "
                    f"{row['commands_per_tick']:.1f} Redis commands per tick"
                )
        finally:
            cluster.stop_all()


if __name__ == "__main__":
    main()

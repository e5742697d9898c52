"""`python -m bench.tenant_reads`: what a tenant-wide read costs with S shards.

A tenant's jobs spread over every shard, so its list page (101 ids: a page of 100 and
the one that says there is a next) and its console count (10,001 ids) read every shard's
index and merge them (store/records.py `newest_ids_across`). For S = 1, 4 and 16 on one
Valkey holding 50,000 of the tenant's index entries spread at random, this reports the
median time of each read and the bytes Valkey sent for it: as built (each shard asked for
its share and half again, then more only where the merge needs it) and as it was before
(each shard asked for the whole page). The records the page then reads are the same
whatever S (one pipelined HMGET each, per node), so only the index reads are measured."""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio as aredis

from acceptd.core import ids
from acceptd.store import keys, records
from acceptd.store.shards import OneServer
from bench.cluster import Cluster

TENANT = "bench"
ENTRIES = 50_000
READS = {"list page": 101, "count": 10_001}


async def _fill(redis: aredis.Redis, shards: int) -> None:
    await redis.flushall()
    made = [ids.new_id("job", random.randrange(shards)) for _ in range(ENTRIES)]
    by_shard: dict[int, list[str]] = {}
    for job_id in made:
        by_shard.setdefault(ids.shard_of(job_id), []).append(job_id)
    for shard, mine in by_shard.items():
        for start in range(0, len(mine), 5000):
            chunk = dict.fromkeys(mine[start : start + 5000], 0)
            await redis.zadd(keys.tenant_jobs(TENANT, shard), chunk)


async def _every_shard_whole(store: OneServer, count: int) -> list[str]:
    """The read before: every shard asked for the whole page."""
    replies = await store.across(
        lambda pipe, shard: pipe.zrevrangebylex(
            keys.tenant_jobs(TENANT, shard), "+", "-", start=0, num=count
        )
    )
    return list(itertools.islice(heapq.merge(*(r for (r,) in replies), reverse=True), count))


async def _measure(
    redis: aredis.Redis, read: Callable[[], Awaitable[list[str]]], runs: int
) -> tuple[float, int]:
    times, sent = [], []
    for _ in range(runs):
        before = int((await redis.info("stats"))["total_net_output_bytes"])
        started = time.perf_counter()
        await read()
        times.append((time.perf_counter() - started) * 1000)
        sent.append(int((await redis.info("stats"))["total_net_output_bytes"]) - before)
    return statistics.median(times), int(statistics.median(sent))


async def run(url: str, runs: int) -> None:
    redis = aredis.Redis.from_url(url, decode_responses=True)
    columns = ("shards", 6), ("read", 10), ("as built ms", 12), ("bytes", 9), ("before ms", 10)
    print(" ".join(f"{name:>{width}}" for name, width in columns), f"{'bytes':>9}")
    for shard_count in (1, 4, 16):
        await _fill(redis, shard_count)
        store = OneServer(redis, shard_count)
        for name, count in READS.items():

            async def built(count: int = count, store: OneServer = store) -> list[str]:
                return await records.newest_ids_across(
                    store, lambda shard: keys.tenant_jobs(TENANT, shard), None, count
                )

            async def before(count: int = count, store: OneServer = store) -> list[str]:
                return await _every_shard_whole(store, count)

            assert await built() == await before()
            built_ms, built_bytes = await _measure(redis, built, runs)
            before_ms, before_bytes = await _measure(redis, before, runs)
            print(
                f"{shard_count:>6} {name:>10} {built_ms:>12.2f} {built_bytes:>9} "
                f"{before_ms:>10.2f} {before_bytes:>9}"
            )
    await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        cluster = Cluster(Path(workdir))
        try:
            asyncio.run(run(cluster.start_valkey(), args.runs))
        finally:
            cluster.stop_all()


if __name__ == "__main__":
    main()

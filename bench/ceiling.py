"""`python -m bench.ceiling`: what one Valkey carries, with its I/O threads off and on.

Valkey runs every command on its main thread; I/O threads (`io-threads N`) only read,
parse and write around it. So the ceiling of one Valkey for acceptd is the end-to-end
load (jobs with a callback, submit to verified webhook) divided by the CPU its main
thread spent on it: jobs per second per main-thread CPU-second. This machine has too few
cores to saturate Valkey with the roles beside it, so the ceiling is computed from the
CPU Valkey used, not reached; each setting runs in a fresh cluster, `--runs` times, and
the medians are reported with the jobs/s this machine reached meanwhile."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aredis

from bench import load
from bench.cluster import API_KEY, Cluster, spawn_with_receiver

JOBS = 2000
CONCURRENCY = 32


async def commands_processed(redis: aredis.Redis) -> int:
    return int((await redis.info("stats"))["total_commands_processed"])


async def measure(cluster: Cluster, api: str, receiver: str, runs: int) -> list[dict[str, float]]:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    redis = aredis.Redis.from_url(cluster.redis_url)
    found = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            submit = await load.warmed_submitter(session, api, headers, receiver)
            for _ in range(runs):
                await load.reset(session, receiver)
                main_before, all_before = cluster.valkey_cpu_seconds()
                commands_before = await commands_processed(redis)
                sent = await load.burst(submit, JOBS, CONCURRENCY)
                arrived = await load.wait_for_arrivals(session, receiver, set(sent), 120)
                main_after, all_after = cluster.valkey_cpu_seconds()
                commands = await commands_processed(redis) - commands_before
                result = load.end_to_end(sent, arrived)
                main_cpu, all_cpu = main_after - main_before, all_after - all_before
                found.append(
                    {
                        "jobs_per_s": result["jobs_per_s"],
                        "missing": result["missing"],
                        "commands_per_job": commands / JOBS,
                        "main_thread_cpu_ms_per_1000_jobs": 1000 * main_cpu / JOBS * 1000,
                        "all_threads_cpu_ms_per_1000_jobs": 1000 * all_cpu / JOBS * 1000,
                        "ceiling_jobs_per_s": JOBS / main_cpu if main_cpu else float("nan"),
                        "commands_per_main_thread_second": commands / main_cpu if main_cpu else 0,
                    }
                )
    finally:
        await redis.aclose()
    return found


def run(io_threads: int, runs: int) -> list[dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp))
        try:
            cluster.start_valkey(**{"io-threads": str(io_threads)})
            api, receiver = spawn_with_receiver(cluster)
            return asyncio.run(measure(cluster, api, receiver, runs))
        finally:
            cluster.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--io-threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=Path("bench/results/ceiling.json"))
    args = parser.parse_args()
    results: dict[str, Any] = {}
    print(
        "| Valkey | jobs/s here | commands/job | main-thread CPU ms per 1,000 jobs "
        "| all threads | ceiling: jobs/s per main-thread core "
        "| commands/s per core |"
    )
    print("|---|---|---|---|---|---|---|")
    for io_threads in args.io_threads:
        samples = run(io_threads, args.runs)
        medians = {key: load.median([s[key] for s in samples]) for key in samples[0]}
        results[f"io-threads {io_threads}"] = {"medians": medians, "samples": samples}
        label = "I/O threads off" if io_threads == 1 else f"io-threads {io_threads}"
        print(
            f"| {label} | {medians['jobs_per_s']:,.0f} | {medians['commands_per_job']:.1f} "
            f"| {medians['main_thread_cpu_ms_per_1000_jobs']:,.0f} "
            f"| {medians['all_threads_cpu_ms_per_1000_jobs']:,.0f} "
            f"| {medians['ceiling_jobs_per_s']:,.0f} "
            f"| {medians['commands_per_main_thread_second']:,.0f} |",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""`python -m bench.cluster_ceiling`: what a three-primary Valkey Cluster carries against one
Valkey, computed as bench.ceiling computes it (jobs per second per main-thread CPU-second).

Both run the same load (jobs with a callback, submit to verified webhook) through the same
roles, with AOF on: one server with ACCEPTD_SHARDS=1, then a cluster of N primaries (no
replicas: a replica's CPU is not on the write path) with ACCEPTD_SHARDS=16. For the cluster
it reads each primary's main-thread CPU and commands, and reports how evenly the work spread
(each primary's share of the commands against 1/N) and the computed ceiling: the busiest
primary saturates first, so the cluster carries JOBS / (the largest main-thread CPU of one
primary) jobs per second. The goal: at least 0.8 x N times one server's ceiling.

A computed ceiling depends on the load it is computed at: a server's fixed costs per event
loop turn and per second (its idle loops, the roles' polls) are shared by fewer jobs when
fewer come. This machine cannot drive three primaries as hard as it drives one (the roles
share its cores), so each primary runs at about a third of the single server's load. The
fair comparison is at equal load per primary: one server paced at the rate each primary
carried (reported first); one server at its own full rate is reported too."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aredis

from acceptd.cli.topologies import EmbeddedCluster
from bench import load
from bench.ceiling import CONCURRENCY, JOBS
from bench.cluster import API_KEY, Cluster, spawn_with_receiver

SHARDS = 16


def _main_thread_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Servers:
    """The Valkey processes under measurement: one server, or a cluster's primaries."""

    def __init__(self, workdir: Path, primaries: int) -> None:
        self.primaries = primaries
        self.cluster: EmbeddedCluster | None = None
        self.bench = Cluster(workdir)
        if primaries > 1:
            self.cluster = EmbeddedCluster(workdir / "cluster", primaries=primaries)

    def start(self) -> str:
        if self.cluster is None:
            return self.bench.start_valkey()
        self.cluster.start()
        return self.cluster.url

    def urls(self) -> list[str]:
        if self.cluster is None:
            return [self.bench.redis_url]
        return [node.server.url for node in self.cluster.nodes[: self.primaries]]

    def pids(self) -> list[int]:
        servers = (
            [self.bench.valkey]
            if self.cluster is None
            else [node.server for node in self.cluster.nodes[: self.primaries]]
        )
        return [server._process.pid for server in servers if server and server._process]

    def stop(self) -> None:
        self.bench.stop_all()
        if self.cluster is not None:
            self.cluster.stop()


async def _commands(urls: list[str]) -> list[int]:
    counts = []
    for url in urls:
        redis = aredis.Redis.from_url(url)
        try:
            counts.append(int((await redis.info("stats"))["total_commands_processed"]))
        finally:
            await redis.aclose()
    return counts


async def measure(
    servers: Servers, api: str, receiver: str, runs: int, rate: float | None
) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    found = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        submit = await load.warmed_submitter(session, api, headers, receiver)
        for _ in range(runs):
            await load.reset(session, receiver)
            cpu_before = [_main_thread_cpu(pid) for pid in servers.pids()]
            commands_before = await _commands(servers.urls())
            sent = await (
                load.paced(submit, rate, JOBS / rate)
                if rate
                else load.burst(submit, JOBS, CONCURRENCY)
            )
            arrived = await load.wait_for_arrivals(session, receiver, set(sent), 180)
            cpu = [_main_thread_cpu(p) - b for p, b in zip(servers.pids(), cpu_before, strict=True)]
            commands = [
                after - before
                for after, before in zip(
                    await _commands(servers.urls()), commands_before, strict=True
                )
            ]
            result = load.end_to_end(sent, arrived)
            total = sum(commands)
            # Each primary's share of the commands against an even 1/N.
            deviation = max(abs(c / total * len(commands) - 1) for c in commands) if total else 0.0
            found.append(
                {
                    "jobs_per_s": result["jobs_per_s"],
                    "missing": result["missing"],
                    "commands_per_job": total / JOBS,
                    "commands_per_job_per_primary": [c / JOBS for c in commands],
                    "main_thread_cpu_ms_per_1000_jobs_per_primary": [1e6 * c / JOBS for c in cpu],
                    "largest_deviation_from_even": deviation,
                    "ceiling_jobs_per_s": JOBS / max(cpu) if max(cpu) else float("nan"),
                }
            )
    return found


def run(primaries: int, runs: int, rate: float | None = None) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        servers = Servers(Path(tmp), primaries)
        bench = servers.bench
        try:
            url = servers.start()
            shards = "1" if primaries == 1 else str(SHARDS)
            api, receiver = spawn_with_receiver(bench, ACCEPTD_REDIS_URL=url, ACCEPTD_SHARDS=shards)
            return asyncio.run(measure(servers, api, receiver, runs, rate))
        finally:
            servers.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster_ceiling")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--primaries", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/cluster_ceiling.json"))
    args = parser.parse_args()
    n = args.primaries
    many = run(n, args.runs)
    per_primary_rate = load.median([s["jobs_per_s"] for s in many]) / n
    equal = run(1, args.runs, rate=per_primary_rate)
    one = run(1, args.runs)
    many_ceiling = load.median([s["ceiling_jobs_per_s"] for s in many])
    equal_ceiling = load.median([s["ceiling_jobs_per_s"] for s in equal])
    one_ceiling = load.median([s["ceiling_jobs_per_s"] for s in one])
    results = {
        "cluster": many,
        "one_server_at_the_rate_of_one_primary": equal,
        "one_server": one,
        "primaries": n,
        "shards": SHARDS,
        "rate_per_primary": per_primary_rate,
        "ceiling_cluster": many_ceiling,
        "ceiling_one_server_at_equal_load": equal_ceiling,
        "ceiling_one_server": one_ceiling,
        "cluster_over_n_times_one_at_equal_load": many_ceiling / (n * equal_ceiling),
        "cluster_over_n_times_one_at_its_own_rate": many_ceiling / (n * one_ceiling),
    }
    print(
        "| store | jobs/s here | commands/job | commands/job per primary "
        "| largest deviation from even | ceiling jobs/s |"
    )
    print("|---|---|---|---|---|---|")
    for label, samples in (
        (f"one server, paced at {per_primary_rate:,.0f} jobs/s", equal),
        ("one server, 1 shard, its own rate", one),
        (f"{n} primaries, {SHARDS} shards", many),
    ):
        per_primary = [
            load.median([s["commands_per_job_per_primary"][i] for s in samples])
            for i in range(len(samples[0]["commands_per_job_per_primary"]))
        ]
        print(
            f"| {label} | {load.median([s['jobs_per_s'] for s in samples]):,.0f} "
            f"| {load.median([s['commands_per_job'] for s in samples]):.1f} "
            f"| {' / '.join(f'{c:.1f}' for c in per_primary)} "
            f"| {load.median([s['largest_deviation_from_even'] for s in samples]):.0%} "
            f"| {load.median([s['ceiling_jobs_per_s'] for s in samples]):,.0f} |"
        )
    print(
        f"cluster ceiling / ({n} x one server's) at equal load per primary: "
        f"{results['cluster_over_n_times_one_at_equal_load']:.2f}; against one server at "
        f"its own rate: {results['cluster_over_n_times_one_at_its_own_rate']:.2f}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

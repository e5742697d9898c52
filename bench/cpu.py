"""`python -m bench.cpu`: where a job's CPU goes, process by process, at full load.

On this 2-core machine every process (Valkey, api, worker, dispatcher, the verifying
receiver, the load generator) shares the cores, so end-to-end throughput is the cores
divided by the CPU one job costs all of them together. Each run submits --jobs jobs with a
callback (32 clients, as the end-to-end phase of `make bench`), waits for every verified
webhook, and reads each process's user + system CPU (/proc) before and after: milliseconds
of CPU per 1,000 jobs, per process (Valkey's main thread, where its commands run, apart).
Medians of --runs runs, after a warm-up. Bare arq's processes stay paused.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench import load
from bench.__main__ import Bench
from bench.cluster import Cluster

ROLES = ("api", "worker", "dispatcher", "receiver")
COLUMNS = (*ROLES, "valkey (main thread)", "all")
CLIENTS = 32


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0, help="unused; Bench's option")
    return parser.parse_args()


async def one_run(bench: Bench, submit: load.Submit, jobs: int) -> dict[str, float]:
    """CPU ms per 1,000 jobs of each process, and the run's jobs/s, for one full-load run."""
    cluster, receiver = bench.cluster, bench.url("receiver")
    await load.reset(bench.session, receiver)
    before = {name: cluster.cpu_seconds(name) for name in ROLES}
    valkey_before, _ = cluster.valkey_cpu_seconds()
    started = time.monotonic()
    sent = await load.burst(submit, jobs, CLIENTS)
    arrived = await load.wait_for_arrivals(bench.session, receiver, set(sent), 120)
    elapsed = time.monotonic() - started
    per_thousand = 1_000_000 / jobs  # seconds per run -> ms per 1,000 jobs
    figures = {name: (cluster.cpu_seconds(name) - before[name]) * per_thousand for name in ROLES}
    valkey_after, _ = cluster.valkey_cpu_seconds()
    figures["valkey (main thread)"] = (valkey_after - valkey_before) * per_thousand
    figures["all"] = sum(figures.values())
    figures["jobs/s"] = len(arrived) / elapsed
    figures["missing"] = jobs - len(arrived)
    return figures


async def measure(bench: Bench) -> list[dict[str, float]]:
    async with bench.acceptd_alone() as submit:
        return [await one_run(bench, submit, bench.args.jobs) for _ in range(bench.args.runs)]


def table(runs: list[dict[str, float]]) -> str:
    medians = {key: load.median([run[key] for run in runs]) for key in runs[0]}
    lines = [
        f"| CPU ms per 1,000 jobs ({len(runs)} runs, medians) | " + " | ".join(COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
        "| full load | " + " | ".join(f"{medians[c]:,.0f}" for c in COLUMNS) + " |",
    ]
    lines.append(
        f"\n{medians['jobs/s']:,.0f} jobs/s to verified webhook; "
        f"{sum(run['missing'] for run in runs):.0f} webhooks missing"
    )
    return "\n".join(lines)


def main() -> None:
    args = parse()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp))
        bench = Bench(cluster, args)
        bench.start()
        try:
            runs = asyncio.run(measure(bench))
        finally:
            cluster.stop_all()
    print(table(runs))


if __name__ == "__main__":
    main()

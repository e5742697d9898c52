"""`python -m bench.hops`: where a job's submit-to-webhook time goes, hop by hop, at a fixed
open-loop rate (default: the peer's half load measured by bench.peer on this machine).

Each job's own records say when each hop ended (millisecond resolution, one wall clock for
every process on this host): the client's send, the record's `created_at` (the API wrote
it), `started_at` (a worker took it), `finished_at`, its delivery's `created_at` (the
dispatcher fanned the event out), the first attempt's `at`, and the receiver's arrival.
Printed as p50 / p90 / p99 per hop: the hop whose p99 is far above its p50 is where the
tail comes from.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from acceptd.store import keys
from acceptd.store.layouts import DeliveryField
from bench import load
from bench.__main__ import Bench
from bench.cluster import Cluster

HOPS = ("accept", "pickup", "run", "fan-out", "first attempt", "to receiver", "total")


def _ms(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp() * 1000


async def _stamps_of(bench: Bench, job_id: str) -> list[float] | None:
    """When each hop of one job ended (ms), from its records: the job's resource, and its
    delivery's hash (the resource does not show when a delivery was made)."""
    api, session = bench.url("api"), bench.session
    async with session.get(f"{api}/v1/jobs/{job_id}", headers=bench.headers) as response:
        job: dict[str, Any] = await response.json()
    url = f"{api}/v1/jobs/{job_id}/deliveries"
    async with session.get(url, headers=bench.headers) as response:
        deliveries: list[dict[str, Any]] = (await response.json())["items"]
    if not deliveries or not deliveries[-1]["attempts"] or not job.get("finished_at"):
        return None
    delivery = deliveries[-1]  # the job's only one here: job.succeeded to its callback
    made = await bench.redis.hget(keys.delivery(delivery["id"]), DeliveryField.CREATED)
    return [
        _ms(job["created_at"]),
        _ms(job["started_at"]),
        _ms(job["finished_at"]),
        float(made),
        _ms(delivery["attempts"][0]["at"]),
    ]


async def measure(bench: Bench, rate: float) -> tuple[dict[str, list[float]], float]:
    """(each hop's times; Redis round trips per job, every role's, at this rate)."""
    async with bench.acceptd_alone() as submit:
        sent, arrived, redis_cost = await bench.loaded(submit, rate)
        hops: dict[str, list[float]] = {hop: [] for hop in HOPS}
        gate = asyncio.Semaphore(16)

        async def one(job_id: str) -> None:
            async with gate:
                stamps = await _stamps_of(bench, job_id)
            if stamps is None or job_id not in arrived:
                return
            points = [sent[job_id] / 1e6, *stamps, arrived[job_id] / 1e6]
            for hop, (start, end) in zip(HOPS[:-1], itertools.pairwise(points), strict=True):
                hops[hop].append(end - start)
            hops["total"].append(points[-1] - points[0])

        await asyncio.gather(*(one(job_id) for job_id in sent))
        return hops, redis_cost["round_trips_per_job"]


def table(hops: dict[str, list[float]], rate: float) -> str:
    lines = [
        f"| hop ({rate:.0f} jobs/s, {len(hops['total'])} jobs) | p50 ms | p90 ms | p99 ms |",
        "|---|---|---|---|",
    ]
    for hop in HOPS:
        values = hops[hop]
        cells = " | ".join(f"{load.percentile(values, q):.1f}" for q in (50, 90, 99))
        lines.append(f"| {hop} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hops")
    parser.add_argument("--rate", type=float, default=380.0, help="jobs per second, open loop")
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="acceptd-bench-") as workdir:
        cluster = Cluster(Path(workdir))
        bench = Bench(cluster, argparse.Namespace(runs=1, seconds=args.seconds))
        try:
            bench.start()
            hops, round_trips = asyncio.run(measure(bench, args.rate))
        finally:
            cluster.stop_all()
    print(table(hops, args.rate))
    print(f"\nRedis round trips per job (the server's reads, every role's): {round_trips:.2f}")
    print(
        "\naccept: client send -> record written; pickup: -> a worker started it; run: ->"
        " finished; fan-out: -> its delivery made; first attempt: -> the attempt's time;"
        " to receiver: -> the verified arrival. Millisecond stamps: hops under 1 ms read 0-1."
    )


if __name__ == "__main__":
    main()

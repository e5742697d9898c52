"""`python -m bench.ordering`: what ordered delivery costs. The same jobs' webhooks go to an
unordered endpoint, then to an endpoint with `ordering: per_key` (with many keys, and with
one key: everything in one line), and the deliveries per second are compared in one run.

Valkey (AOF), `acceptd api`, a worker and a dispatcher run as processes; the receiver is
in this process and answers 204 at once. Each figure: deliveries/s from the batch submit to
the last webhook received, median of --runs."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.cluster import API_KEY, Cluster, serve_receiver, start_roles
from bench.load import median

MODES = (
    ("unordered", "none", 50),
    ("per_key, 50 keys", "per_key", 50),
    ("per_key, 1 key", "per_key", 1),
)


class Arrivals:
    """Counts webhooks by path; the event of a path is set once `jobs` of them arrived."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.counts: dict[str, int] = {}
        self.done: dict[str, asyncio.Event] = {}

    def expect(self, path: str) -> asyncio.Event:
        self.counts[path] = 0
        self.done[path] = asyncio.Event()
        return self.done[path]

    def add(self, path: str) -> None:
        self.counts[path] = self.counts.get(path, 0) + 1
        if self.counts[path] >= self.jobs and path in self.done:
            self.done[path].set()


async def one_run(api: str, receiver_port: int, arrived: Arrivals, jobs: int) -> dict[str, float]:
    rates: dict[str, float] = {}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        for label, ordering, keys in MODES:
            path = f"/{label.replace(' ', '').replace(',', '-')}-{time.monotonic_ns()}"
            target = {"url": f"http://127.0.0.1:{receiver_port}{path}", "ordering": ordering}
            async with http.post(f"{api}/v1/endpoints", json=target) as answer:
                endpoint = await answer.json()
            finished = arrived.expect(path)
            items = [
                {"type": "demo.echo", "input": {"value": n}, "ordering_key": f"k{n % keys}"}
                for n in range(jobs)
            ]
            started = time.monotonic()
            async with http.post(f"{api}/v1/batches", json={"items": items}) as answer:
                assert answer.status == 202, await answer.text()
            await asyncio.wait_for(finished.wait(), 600)
            rates[label] = jobs / (time.monotonic() - started)
            async with http.delete(f"{api}/v1/endpoints/{endpoint['id']}"):
                pass
    return rates


async def measure(args: argparse.Namespace, api: str) -> dict[str, list[float]]:
    arrived = Arrivals(args.jobs)

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        arrived.add(request.path)
        return web.Response(status=204)

    runner, receiver_port = await serve_receiver(hook)
    samples: dict[str, list[float]] = {label: [] for label, _, _ in MODES}
    try:
        for _ in range(args.runs):
            for label, rate in (await one_run(api, receiver_port, arrived, args.jobs)).items():
                samples[label].append(rate)
    finally:
        await runner.cleanup()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ordering")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("bench/results/ordering.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp))
        try:
            api = start_roles(cluster)
            samples = asyncio.run(measure(args, api))
        finally:
            cluster.stop_all()
    unordered = median(samples["unordered"])
    print(f"| deliveries/s ({args.jobs} jobs, median of {args.runs}) | rate | of unordered |")
    print("|---|---|---|")
    for label, rates in samples.items():
        print(f"| {label} | {median(rates):,.0f} | {100 * median(rates) / unordered:.0f} % |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(samples, indent=2))


if __name__ == "__main__":
    main()

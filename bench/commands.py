"""`python -m bench.commands`: Redis commands per job, by stage and by command, read from
`INFO commandstats` (commands run inside Lua scripts included) — Redis is the one part that
does not scale out, so this is what sets the ceiling of one deployment.

Stages run one at a time, the other roles SIGSTOPped: submit (the API alone takes N jobs
with a callback), run (the worker alone runs them; pickup, leases, status scripts), fan-out
and delivery (the dispatcher alone turns their events into signed webhooks), and idle
(everything running, nothing to do, per second: heartbeats, sweeps, polls). The harness's
own commands (INFO, and the XLEN/ZCARD it polls with) are taken out."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections import Counter
from pathlib import Path

import aiohttp
import redis.asyncio as aredis
from aiohttp import web

from acceptd.store import keys
from bench.cluster import API_KEY, Cluster, serve_receiver, start_roles

HARNESS = {"info", "xlen", "zcard", "config|resetstat", "config"}
IDLE_SECONDS = 10.0


async def commandstats(redis: aredis.Redis) -> Counter[str]:
    stats = await redis.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


async def stage(redis: aredis.Redis, run: asyncio.Future[None] | None = None) -> Counter[str]:
    before = await commandstats(redis)
    if run is not None:
        await run
    after = await commandstats(redis)
    delta = after - before
    for name in HARNESS:
        delta.pop(name, None)
    return delta


async def measure(cluster: Cluster, api: str, jobs: int) -> dict[str, Counter[str]]:
    redis = aredis.Redis.from_url(cluster.redis_url, decode_responses=True)
    arrived = asyncio.Event()
    count = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal count
        await request.read()
        count += 1
        if count >= jobs:
            arrived.set()
        return web.Response(status=204)

    runner, receiver_port = await serve_receiver(hook)
    stages: dict[str, Counter[str]] = {}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            cluster.pause("worker", "dispatcher")

            async def submit() -> None:
                body = {"type": "demo.echo", "input": {"value": 1},
                        "callback_url": f"http://127.0.0.1:{receiver_port}/hook"}  # fmt: skip
                for _ in range(jobs):
                    async with http.post(f"{api}/v1/jobs", json=body) as answer:
                        assert answer.status == 202

            stages["submit"] = await stage(redis, asyncio.ensure_future(submit()))

            async def run() -> None:
                cluster.resume("worker")
                # Polls Redis (counted out below): no event to wait on across processes.
                while await redis.xlen(keys.EVENTS_STREAM) < jobs:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)  # the last verdicts' bookkeeping
                cluster.pause("worker")

            stages["pickup and run"] = await stage(redis, asyncio.ensure_future(run()))

            async def deliver() -> None:
                cluster.resume("dispatcher")
                await asyncio.wait_for(arrived.wait(), 300)
                await asyncio.sleep(0.5)
                cluster.pause("dispatcher")

            stages["fan-out and delivery"] = await stage(redis, asyncio.ensure_future(deliver()))
            cluster.resume("worker", "dispatcher")
            stages["idle, per second"] = await stage(
                redis, asyncio.ensure_future(asyncio.sleep(IDLE_SECONDS))
            )
    finally:
        await runner.cleanup()
        await redis.aclose()
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.commands")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("bench/results/commands.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp))
        try:
            api = start_roles(cluster)
            stages = asyncio.run(measure(cluster, api, args.jobs))
        finally:
            cluster.stop_all()
    per_job = {
        name: sum(c.values()) / args.jobs for name, c in stages.items() if "idle" not in name
    }
    idle = stages["idle, per second"]
    print(f"| stage ({args.jobs} jobs with a callback) | commands per job | top commands |")
    print("|---|---|---|")
    for name, counter in stages.items():
        scale = IDLE_SECONDS if "idle" in name else args.jobs
        top = ", ".join(f"{c} {n / scale:.1f}" for c, n in counter.most_common(6))
        print(f"| {name} | {sum(counter.values()) / scale:.1f} | {top} |")
    print(f"| **total per job** | **{sum(per_job.values()):.1f}** | "
          f"(idle: {sum(idle.values()) / IDLE_SECONDS:.1f} commands/s) |")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({k: dict(v) for k, v in stages.items()}, indent=2))


if __name__ == "__main__":
    main()

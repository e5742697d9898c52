"""`python -m bench.commands`: Redis commands per job, by stage and by command, read from
`INFO commandstats` (commands run inside Lua scripts included) — Redis is the one part that
does not scale out, so this is what sets the ceiling of one deployment.

Stages run one at a time, the other roles SIGSTOPped: submit (the API alone takes N jobs),
pickup and run (the worker alone runs them), fan-out (the dispatcher alone turns their
events into deliveries while the receiver holds every request) and delivery (the receiver
answers: the attempts end and are recorded), then per request: a status poll (GET of a job)
and a long-poll waiter (`?wait=1&since_status=scheduled` on a job that does not change),
and idle per second (everything running, nothing to do: heartbeats, sweeps, queue polls).
Jobs are measured with a `callback_url`, without one, with a callback and an endpoint
subscribed to `job.succeeded`, and with a callback whose first attempt fails (503). The harness
counts its own commands (INFO, the XLEN it polls with) and takes exactly those out."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aredis
from aiohttp import web

from acceptd.store import keys
from bench.cluster import API_KEY, Cluster, serve_receiver, start_roles

IDLE_SECONDS = 10.0
REQUESTS = 200
IDLE = "idle, per second"
PER_REQUEST = ("status poll, per request", "long-poll waiter, per request")


class CountingRedis(aredis.Redis):
    """The harness's own connection: what it sends is counted, to be taken out exactly."""

    sent: Counter[str]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent[str(args[0]).lower()] += 1
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


async def commandstats(redis: CountingRedis) -> Counter[str]:
    stats = await redis.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


async def stage(redis: CountingRedis, run: asyncio.Future[None] | None = None) -> Counter[str]:
    redis.sent = Counter()
    before = await commandstats(redis)
    if run is not None:
        await run
    after = await commandstats(redis)
    return after - before - redis.sent


async def measure(
    cluster: Cluster,
    api: str,
    jobs: int,
    *,
    with_callback: bool,
    endpoints: int = 0,
    fail_first: bool = False,
) -> dict[str, Counter[str]]:
    redis = CountingRedis.from_url(cluster.redis_url, decode_responses=True)
    redis.sent = Counter()
    arrived, released = asyncio.Event(), asyncio.Event()
    count = 0
    failed: set[str] = set()

    async def hook(request: web.Request) -> web.Response:
        nonlocal count
        await request.read()
        await released.wait()  # held while the fan-out is measured apart
        webhook_id = request.headers["webhook-id"] + request.path
        if fail_first and webhook_id not in failed:
            failed.add(webhook_id)  # its first attempt fails: the retry is measured too
            return web.Response(status=503)
        count += 1
        if count >= jobs * (int(with_callback) + endpoints):
            arrived.set()
        return web.Response(status=204)

    runner, receiver_port = await serve_receiver(hook)
    stages: dict[str, Counter[str]] = {}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    job_ids: list[str] = []
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            for _ in range(endpoints):
                endpoint = {
                    "url": f"http://127.0.0.1:{receiver_port}/endpoint",
                    "events": ["job.succeeded"],
                }
                async with http.post(f"{api}/v1/endpoints", json=endpoint) as answer:
                    assert answer.status == 201, await answer.text()
            cluster.pause("worker", "dispatcher")
            events_before = await redis.xlen(keys.events_stream(0))

            async def submit() -> None:
                body: dict[str, Any] = {"type": "demo.echo", "input": {"value": 1}}
                if with_callback:
                    body["callback_url"] = f"http://127.0.0.1:{receiver_port}/hook"
                for _ in range(jobs):
                    async with http.post(f"{api}/v1/jobs", json=body) as answer:
                        assert answer.status == 202
                        job_ids.append((await answer.json())["id"])

            stages["submit"] = await stage(redis, asyncio.ensure_future(submit()))

            async def run() -> None:
                cluster.resume("worker")
                # Jobs with a callback each leave one event; without, the worker's queue
                # and running set empty. Polled (and counted out): no event to wait on
                # across processes.
                while True:
                    if with_callback or endpoints:
                        done = await redis.xlen(keys.events_stream(0)) - events_before >= jobs
                    else:  # nothing waiting, nothing running
                        done = await redis.zcard(keys.job_queue(0)) == 0
                        done = done and await redis.zcard(keys.running_jobs(0)) == 0
                    if done:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)  # the last verdicts' bookkeeping
                cluster.pause("worker")

            stages["pickup and run"] = await stage(redis, asyncio.ensure_future(run()))

            async def fan_out() -> None:
                # The receiver holds every request: attempts wait, the deliveries are made.
                cluster.resume("dispatcher")
                while await redis.xlen(keys.events_stream(0)) > events_before:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.3)

            async def deliver() -> None:
                released.set()
                if with_callback or endpoints:
                    await asyncio.wait_for(arrived.wait(), 300)
                await asyncio.sleep(0.5)
                cluster.pause("dispatcher")

            stages["fan-out"] = await stage(redis, asyncio.ensure_future(fan_out()))
            stages["delivery"] = await stage(redis, asyncio.ensure_future(deliver()))
            cluster.resume("worker", "dispatcher")

            async def polls(query: str) -> None:
                async def one(job_id: str) -> None:
                    async with http.get(f"{api}/v1/jobs/{job_id}{query}") as answer:
                        assert answer.status < 300

                sample = job_ids[:REQUESTS]
                await asyncio.gather(*(one(job_id) for job_id in sample))

            # A job that does not change: submitted scheduled an hour out.
            scheduled = {"type": "demo.echo", "input": {"value": 1}, "delay_seconds": 3600}
            async with http.post(f"{api}/v1/jobs", json=scheduled) as answer:
                waiting_on = (await answer.json())["id"]

            async def waiters() -> None:
                async def one() -> None:
                    query = "?wait=1&since_status=scheduled"
                    async with http.get(f"{api}/v1/jobs/{waiting_on}{query}") as answer:
                        assert answer.status < 300, await answer.text()

                await asyncio.gather(*(one() for _ in range(REQUESTS)))

            stages[PER_REQUEST[0]] = await stage(redis, asyncio.ensure_future(polls("")))
            stages[PER_REQUEST[1]] = await stage(redis, asyncio.ensure_future(waiters()))
            stages[IDLE] = await stage(redis, asyncio.ensure_future(asyncio.sleep(IDLE_SECONDS)))
    finally:
        await runner.cleanup()
        await redis.aclose()
    return stages


def table(stages: dict[str, Counter[str]], jobs: int, title: str) -> str:
    scale = {IDLE: IDLE_SECONDS, **dict.fromkeys(PER_REQUEST, float(REQUESTS))}
    lines = [f"| {title} | commands | top commands |", "|---|---|---|"]
    total = 0.0
    for name, counter in stages.items():
        per = scale.get(name, float(jobs))
        if name not in scale:
            total += sum(counter.values()) / per
        top = ", ".join(f"{c} {n / per:.1f}" for c, n in counter.most_common(6))
        lines.append(f"| {name} | {sum(counter.values()) / per:.1f} | {top} |")
    lines.append(f"| **per job, submit to last webhook** | **{total:.1f}** | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.commands")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("bench/results/commands.json"))
    args = parser.parse_args()
    results: dict[str, dict[str, Counter[str]]] = {}
    rounds: dict[str, dict[str, Any]] = {
        "with a callback": {"with_callback": True},
        "without a callback": {"with_callback": False},
        "with a callback and an endpoint": {"with_callback": True, "endpoints": 1},
        "with a callback whose first attempt fails": {"with_callback": True, "fail_first": True},
    }
    for name, shape in rounds.items():
        with tempfile.TemporaryDirectory() as tmp:
            cluster = Cluster(Path(tmp))
            try:
                # Retries 0.2 s apart: the stage waits for them, not for the schedule.
                api = start_roles(cluster, ACCEPTD_WEBHOOK_RETRY_SCHEDULE="0.2")
                results[name] = asyncio.run(measure(cluster, api, args.jobs, **shape))
            finally:
                cluster.stop_all()
    for name, stages in results.items():
        print(table(stages, args.jobs, f"{args.jobs} jobs {name}"))
        print()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {name: {k: dict(v) for k, v in stages.items()} for name, stages in results.items()},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

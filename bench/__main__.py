"""`make bench`: acceptd against its stack's ceilings, measured in the same run on this machine.

Every figure is the median over --runs repetitions. See bench/README.md for what each means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aredis
from arq import create_pool
from arq.connections import RedisSettings

from acceptd.core import ids
from acceptd.store import keys
from bench import load, shapes
from bench.bare import BARE_QUEUE
from bench.cluster import API_KEY, Cluster, port, wait_for_port

SUBMIT_CONCURRENCY = (1, 16, 64)
E2E_JOBS = 2000
E2E_CONCURRENCY = 32
RETAINED_JOBS = 100_000


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each timed phase")
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    return parser.parse_args()


class Bench:
    def __init__(self, cluster: Cluster, args: argparse.Namespace) -> None:
        self.cluster = cluster
        self.args = args
        self.ports: dict[str, int] = {}
        self.samples: dict[str, list[float]] = {}

    def record(self, name: str, value: float) -> None:
        self.samples.setdefault(name, []).append(value)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self) -> None:
        c = self.cluster
        c.start_valkey()
        self.ports = {name: port() for name in ("api", "receiver", "bare_api")}
        receiver_port = str(self.ports["receiver"])
        c.spawn("receiver", "-m", "bench.receiver", "--port", receiver_port, "--secret", c.secret)
        c.spawn("api", "-m", "acceptd", "api", env=c.env(ACCEPTD_PORT=str(self.ports["api"])))
        c.spawn("worker", "-m", "acceptd", "worker")
        c.spawn("dispatcher", "-m", "acceptd", "dispatcher")
        c.spawn("bare_api", "-m", "bench.bare", "api", "--port", str(self.ports["bare_api"]))
        hook = f"{self.url('receiver')}/hook"
        c.spawn(
            "bare_worker", "-m", "bench.bare", "worker", "--redis", c.redis_url, "--receiver", hook
        )
        for name in ("api", "receiver", "bare_api"):
            wait_for_port(self.ports[name])

    async def run(self) -> dict[str, Any]:
        async with self.connected(arq=True):
            await self.warm_up()
            for run in range(self.args.runs):
                print(f"run {run + 1}/{self.args.runs}", flush=True)
                await self.submit_phase()
                await self.end_to_end_phase()
                await self.pickup_phase()
            await self.shapes_phase()
            await self.scale_phase()
            await self.polling_phase()
            memory = await self.memory()
        return {
            "medians": {k: load.median(v) for k, v in self.samples.items()},
            "samples": self.samples,
            "memory": memory,
        }

    @contextlib.asynccontextmanager
    async def connected(self, *, arq: bool = False) -> AsyncIterator[None]:
        """The load generator's HTTP session (`session`, with the API key in `headers`), its
        Redis client (`redis`) and, with `arq`, an arq pool for bare arq's jobs (`arq`)."""
        async with contextlib.AsyncExitStack() as opened:
            connector = aiohttp.TCPConnector(limit=0)
            self.session = await opened.enter_async_context(
                aiohttp.ClientSession(connector=connector)
            )
            self.headers = {
                "Authorization": f"Bearer {API_KEY}",
                "Content-Type": "application/json",
            }
            self.redis = aredis.Redis.from_url(self.cluster.redis_url)
            opened.push_async_callback(self.redis.aclose)
            if arq:
                self.arq = await create_pool(
                    RedisSettings.from_dsn(self.cluster.redis_url),
                    job_serializer=lambda d: json.dumps(d).encode(),
                    job_deserializer=json.loads,
                )
                opened.push_async_callback(self.arq.aclose)
            yield

    @contextlib.asynccontextmanager
    async def acceptd_alone(self) -> AsyncIterator[load.Submit]:
        """Connected for a phase that measures acceptd alone: warmed up, bare arq paused.
        Yields a submitter of jobs whose callback is the receiver's."""
        async with self.connected():
            await self.warm_up()
            self.cluster.pause("bare_worker", "bare_api")
            hook = f"{self.url('receiver')}/hook"
            yield load.acceptd_submitter(self.session, self.url("api"), self.headers, hook)

    async def warm_up(self) -> None:
        submit = load.acceptd_submitter(
            self.session, self.url("api"), self.headers, f"{self.url('receiver')}/hook"
        )
        sent = await load.burst(submit, 200, 8)
        await load.wait_for_arrivals(self.session, self.url("receiver"), set(sent), 60)
        await load.reset(self.session, self.url("receiver"))

    async def submit_phase(self) -> None:
        """The API alone against a bare aiohttp handler: the roles that would process the
        submitted jobs are paused, as they would run on other machines in production."""
        body = json.dumps({"type": "demo.echo", "input": {"value": 1}}).encode()
        self.cluster.pause("worker", "dispatcher", "bare_worker")
        try:
            for concurrency in SUBMIT_CONCURRENCY:
                for name, target in (("acceptd", self.url("api")), ("bare", self.url("bare_api"))):
                    call = load.poster(self.session, f"{target}/v1/jobs", body, self.headers, 202)
                    stats = await load.closed_loop(call, concurrency, self.args.seconds)
                    for key, value in stats.items():
                        self.record(f"submit.{name}.c{concurrency}.{key}", value)
        finally:
            self.cluster.resume("worker", "dispatcher", "bare_worker")
        await self.drain()

    async def drain(self) -> None:
        """Let the worker finish what the submit phase queued before timing anything else."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            waiting = await self.redis.zcard(keys.job_queue(0))
            if waiting + await self.redis.zcard(keys.running_jobs(0)) == 0:
                return
            await asyncio.sleep(0.2)

    def bare_submitter(self) -> load.Submit:
        async def submit() -> str:
            job_id = uuid.uuid4().hex
            await self.arq.enqueue_job("notify", job_id, _job_id=job_id, _queue_name=BARE_QUEUE)
            return job_id

        return submit

    async def measure(self, submit: load.Submit, rate: float | None) -> dict[str, float]:
        sent, arrived, redis_cost = await self.loaded(submit, rate)
        return {**load.end_to_end(sent, arrived), **redis_cost}

    async def loaded(
        self, submit: load.Submit, rate: float | None
    ) -> tuple[dict[str, int], dict[str, int], dict[str, float]]:
        """A burst (`rate` None) or a paced load, until its webhooks arrived: (each job's
        send time, its arrival, what the load cost Redis per job)."""
        receiver = self.url("receiver")
        await load.reset(self.session, receiver)
        # Read outside the window the command and read counts span: counted in it, their
        # INFO would be one more command and round trip of the load's.
        rewrites, delayed_fsyncs = await self.aof_disturbances()
        commands, reads = await self.commands_and_reads()
        if rate is None:
            sent = await load.burst(submit, E2E_JOBS, E2E_CONCURRENCY)
        else:
            sent = await load.paced(submit, rate, self.args.seconds)
        arrived = await load.wait_for_arrivals(self.session, receiver, set(sent), 120)
        # Every role at once (the other side's paused): Redis commands the load cost, the
        # two INFO calls aside. bench.commands splits this by stage.
        commands_after, reads_after = await self.commands_and_reads()
        rewrites_after, delayed_fsyncs_after = await self.aof_disturbances()
        return (
            sent,
            arrived,
            {
                "commands_per_job": (commands_after - commands - 2) / len(sent),
                # The server's reads of client sockets: one per round trip (a pipeline's
                # commands arrive in one read), what each process pays a syscall and a
                # wake-up for, and what load batches together. The second INFO's read aside.
                "round_trips_per_job": (reads_after - reads - 1) / len(sent),
                # What the server's persistence did meanwhile: an AOF rewrite forks a
                # child that takes a core for a while, one of the two causes of the tail's
                # jumps on two cores (bench/README.md, session 18); a delayed fsync is a
                # slow disk's.
                "aof_rewrites": rewrites_after - rewrites,
                "aof_delayed_fsyncs": delayed_fsyncs_after - delayed_fsyncs,
            },
        )

    async def aof_disturbances(self) -> tuple[int, int]:
        """(AOF rewrites begun so far, fsyncs the server had to delay so far)."""
        persistence = await self.redis.info("persistence")
        begun = int(persistence["aof_rewrites"]) + int(persistence["aof_rewrite_in_progress"])
        return begun, int(persistence.get("aof_delayed_fsync", 0))

    async def commands_and_reads(self) -> tuple[int, int]:
        stats = await self.redis.info("stats")
        return int(stats["total_commands_processed"]), int(stats["total_reads_processed"])

    async def end_to_end_phase(self) -> None:
        callback = f"{self.url('receiver')}/hook"
        ours = load.acceptd_submitter(self.session, self.url("api"), self.headers, callback)
        idle = {"acceptd": ("bare_worker", "bare_api"), "bare": ("worker", "dispatcher", "api")}
        for name, submit in (("acceptd", ours), ("bare", self.bare_submitter())):
            self.cluster.pause(*idle[name])
            try:
                full = await self.measure(submit, None)
                half = await self.measure(submit, full["jobs_per_s"] / 2)
            finally:
                self.cluster.resume(*idle[name])
            for key, value in full.items():
                self.record(f"e2e.{name}.full.{key}", value)
            for key, value in half.items():
                self.record(f"e2e.{name}.half.{key}", value)

    async def pickup_phase(self) -> None:
        """Idle pickup: one job at a time on a quiet system, submit to `running`."""
        body = json.dumps({"type": "demo.echo", "input": {"value": 1}}).encode()
        gaps: list[float] = []
        for _ in range(50):
            async with self.session.post(
                f"{self.url('api')}/v1/jobs", data=body, headers=self.headers
            ) as response:
                job = await response.json()
            await asyncio.sleep(0.05)
            record = await self.redis.hmget(keys.job(job["id"]), ["created", "started"])
            if record[1]:
                gaps.append(float(int(record[1]) - int(record[0])))
        self.record("pickup.p50_ms", load.percentile(gaps, 50))
        self.record("pickup.p99_ms", load.percentile(gaps, 99))

    async def shapes_phase(self) -> None:
        """1,000 clients long-polling their jobs, and 10,000-item batches (bench/shapes.py).
        The bare ceilings are paused: their idle polling would swamp the command counts."""
        target = shapes.Target(
            self.session, self.url("api"), self.headers, self.redis, self.cluster
        )
        self.cluster.pause("bare_worker", "bare_api")
        try:
            for _ in range(self.args.runs):
                for key, value in (await shapes.waiting_clients(target, self.args.seconds)).items():
                    self.record(f"waiters.{key}", value)
                await self.drain()
                for key, value in (await shapes.batch_submit(target)).items():
                    self.record(f"batch.{key}", value)
        finally:
            self.cluster.resume("bare_worker", "bare_api")

    async def scale_phase(self) -> None:
        """A second worker and a second dispatcher on the same machine."""
        self.cluster.spawn("worker2", "-m", "acceptd", "worker")
        self.cluster.spawn("dispatcher2", "-m", "acceptd", "dispatcher")
        self.cluster.pause("bare_worker", "bare_api")
        await asyncio.sleep(2)
        callback = f"{self.url('receiver')}/hook"
        ours = load.acceptd_submitter(self.session, self.url("api"), self.headers, callback)
        for _ in range(self.args.runs):
            full = await self.measure(ours, None)
            self.record("scale.2x2.jobs_per_s", full["jobs_per_s"])
        self.rss_scale = {n: self.cluster.peak_rss_mb(n) for n in ("worker2", "dispatcher2")}
        self.cluster.stop("worker2")
        self.cluster.stop("dispatcher2")
        self.cluster.resume("bare_worker", "bare_api")

    async def polling_phase(self) -> None:
        """GET /v1/jobs/{id} over 100k retained jobs (copies of a real finished one)."""
        [template_id] = await self.redis.zrevrangebylex(
            keys.tenant_jobs("default", 0), "+", "-", 0, 1
        )
        template = await self.redis.hgetall(keys.job(template_id.decode()))
        before = (await self.redis.info("memory"))["used_memory"]
        job_ids = [ids.new_id("job", 0) for _ in range(RETAINED_JOBS)]
        for start in range(0, RETAINED_JOBS, 2000):
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in job_ids[start : start + 2000]:
                    pipe.hset(keys.job(job_id), mapping=template)
                    pipe.zadd(keys.tenant_jobs("default", 0), {job_id: 0})
                await pipe.execute()
        after = (await self.redis.info("memory"))["used_memory"]
        self.record("redis.bytes_per_retained_job", (after - before) / RETAINED_JOBS)
        urls = [f"{self.url('api')}/v1/jobs/{j}" for j in job_ids[:: RETAINED_JOBS // 5000]]
        for _ in range(self.args.runs):
            stats = await load.closed_loop(
                load.getter(self.session, urls, self.headers), 32, self.args.seconds
            )
            self.record("poll.rps", stats["rps"])
            self.record("poll.p99_ms", stats["p99_ms"])

    async def memory(self) -> dict[str, float]:
        sizes: list[int] = []
        async for key in self.redis.scan_iter(match=keys.delivery("*"), count=500):
            if not key.endswith(b":attempts"):
                # SAMPLES 0 counts every field: the default samples 5 and extrapolates, and
                # whether it happens to pick the body swung this figure from 0.8 to 2 KB.
                sizes.append(await self.redis.memory_usage(key, samples=0) or 0)
                sizes.append(await self.redis.memory_usage(key + b":attempts", samples=0) or 0)
            if len(sizes) >= 400:
                break
        rss = {name: self.cluster.peak_rss_mb(name) for name in ("api", "worker", "dispatcher")}
        return {
            **{f"rss_mb.{k}": v for k, v in rss.items()},
            **{f"rss_mb.{k}": v for k, v in self.rss_scale.items()},
            "rss_mb.valkey": self.cluster.valkey_peak_rss_mb(),
            "redis.bytes_per_delivery": 2 * sum(sizes) / max(1, len(sizes)),
        }


def ratio(value: float, ceiling: float) -> str:
    return f"{100 * value / ceiling:.0f} %" if ceiling else "n/a"


def pair(first: float, second: float, digits: int = 1) -> str:
    return f"{first:.{digits}f} / {second:.{digits}f}"


def table(result: dict[str, Any]) -> str:
    m, mem = result["medians"], result["memory"]
    rows: list[tuple[str, str, str, str]] = []
    for c in SUBMIT_CONCURRENCY:
        ours, bare = m[f"submit.acceptd.c{c}.rps"], m[f"submit.bare.c{c}.rps"]
        rows.append(
            (
                f"submit, {c} clients: 202/s",
                f"{ours:,.0f}",
                f"{bare:,.0f} (bare aiohttp)",
                ratio(ours, bare),
            )
        )
        rows.append(
            (
                f"submit, {c} clients: p50 / p99 ms",
                pair(m[f"submit.acceptd.c{c}.p50_ms"], m[f"submit.acceptd.c{c}.p99_ms"], 2),
                pair(m[f"submit.bare.c{c}.p50_ms"], m[f"submit.bare.c{c}.p99_ms"], 2),
                "",
            )
        )
    ours, bare = m["e2e.acceptd.full.jobs_per_s"], m["e2e.bare.full.jobs_per_s"]
    rows.append(
        (
            "end to end, full load: jobs/s to verified webhook",
            f"{ours:,.0f}",
            f"{bare:,.0f} (bare arq)",
            ratio(ours, bare),
        )
    )
    for load_name in ("full", "half"):
        rows.append(
            (
                f"end to end, {load_name} load: p50 / p99 ms",
                pair(m[f"e2e.acceptd.{load_name}.p50_ms"], m[f"e2e.acceptd.{load_name}.p99_ms"]),
                pair(m[f"e2e.bare.{load_name}.p50_ms"], m[f"e2e.bare.{load_name}.p99_ms"]),
                "",
            )
        )
    our_cmds = m["e2e.acceptd.full.commands_per_job"]
    bare_cmds = m["e2e.bare.full.commands_per_job"]
    rows.append(
        ("end to end: Redis commands per job", f"{our_cmds:.1f}", f"{bare_cmds:.1f} (bare arq)", "")
    )
    rows.append(
        (
            "idle pickup, submit to running: p50 / p99 ms",
            pair(m["pickup.p50_ms"], m["pickup.p99_ms"], 0),
            "",
            "",
        )
    )
    cmds, cpu = m["waiters.redis_cmds_per_s.waiting"], m["waiters.api_cpu.waiting"]
    idle_cmds, idle_cpu = m["waiters.redis_cmds_per_s.idle"], m["waiters.api_cpu.idle"]
    rows.append(
        (
            f"{shapes.WAITERS:,} clients on ?wait=: Redis commands/s, API CPU",
            f"{cmds:,.0f}, {cpu:.0%}",
            f"{idle_cmds:,.0f}, {idle_cpu:.0%} (nobody waiting)",
            "",
        )
    )
    rows.append(
        (
            f"{shapes.WAITERS:,} waiters: job started to answer p50 / p99 ms "
            f"({m['waiters.answered']:,.0f} answered)",
            pair(m["waiters.lag_p50_ms"], m["waiters.lag_p99_ms"], 0),
            "",
            "",
        )
    )
    rows.append(
        (
            f"batch of {shapes.BATCH_ITEMS:,} items ({m['batch.body_kb']:,.0f} KB): "
            "submit / cancel ms",
            pair(m["batch.submit_ms"], m["batch.cancel_ms"], 0),
            "",
            "",
        )
    )
    scaled = m["scale.2x2.jobs_per_s"]
    rows.append(
        (
            "2 workers + 2 dispatchers: jobs/s",
            f"{scaled:,.0f}",
            f"{ours:,.0f} (1 + 1)",
            ratio(scaled, ours),
        )
    )
    rows.append(
        (
            f"polling, {RETAINED_JOBS:,} retained jobs: GET/s, p99 ms",
            f"{m['poll.rps']:,.0f}, {m['poll.p99_ms']:.1f}",
            "",
            "",
        )
    )
    per_job, per_delivery = m["redis.bytes_per_retained_job"], mem["redis.bytes_per_delivery"]
    rows.append(
        (
            "Redis bytes per retained job / per delivery",
            f"{per_job:,.0f} / {per_delivery:,.0f}",
            "",
            "",
        )
    )
    rss = ", ".join(
        f"{k.split('.', 1)[1]} {v:.0f}" for k, v in mem.items() if k.startswith("rss_mb")
    )
    rows.append(("peak RSS, MB", rss, "", ""))
    missing = m["e2e.acceptd.full.missing"] + m["e2e.acceptd.half.missing"]
    rows.append(("webhooks missing", f"{missing:.0f}", "", ""))
    lines = ["| measure | acceptd | ceiling | ratio |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


def _raise_open_files_limit() -> None:
    """1,000 waiting clients need more sockets than a 1,024 soft limit allows; the roles
    spawned afterwards inherit the raised limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    args = parse()
    _raise_open_files_limit()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="acceptd-bench-") as workdir:
        cluster = Cluster(Path(workdir))
        bench = Bench(cluster, args)
        try:
            bench.start()
            result = asyncio.run(bench.run())
        finally:
            cluster.stop_all()
    result["machine"] = machine()
    result["runs"] = args.runs
    result["seconds"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(table(result))
    print(f"\n{args.runs} runs, medians; {result['seconds']} s in all; raw samples in {args.out}")


def machine() -> dict[str, object]:
    """What the figures were measured on, kept with them."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


if __name__ == "__main__":
    main()

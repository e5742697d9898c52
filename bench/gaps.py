"""`python -m bench.gaps`: a job's path from submit to webhook at the microsecond, read off
the server: the time between each Redis command of a job and the next (bench.hops' stamps
are whole milliseconds, and at low load every hop is about one).

Jobs are submitted one at a time, --interval apart (nothing else runs: the gaps are each
process's own work and wake-ups, not queueing), while MONITOR records every command. Each
command is put to the job it names (its id, or its delivery's, once a command named both)
and labelled by its script's name; printed: each step of the path, the median and p90 of
the time from the step before, and the step's process (its client port's, in order met).
MONITOR slows the server a little: compare commits in the same run, not with bench.hops.
With --redis-hop the roles reach Redis through a proxy (bench/hop.py): on loopback a round
trip is nearly free, across a network it is not.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import redis

from acceptd.queue.runscripts import RunScripts
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from acceptd.store.tracedscript import TracedScript
from bench import load
from bench.__main__ import Bench
from bench.cluster import Cluster

_JOB = re.compile(r"job_[0-9a-z]{26}")
_DELIVERY = re.compile(r"dlv_[0-9a-z]{26}")
ARRIVED = "webhook arrived"  # the step of a job's webhook reaching the receiver


def script_names(redis: Any) -> dict[str, str]:
    """Each script's SHA1 -> its name, as the roles register them (no server is asked)."""
    shards = cast(Shards, SimpleNamespace(control=redis))
    names: dict[str, str] = {}
    for scripts in (Scripts(shards), RunScripts(shards)):
        for value in vars(scripts).values():
            if isinstance(value, TracedScript):
                names[value.sha] = value.name
    return names


def label(command: str, names: dict[str, str]) -> str:
    words = command.split(" ", 2)
    if words[0] in ("EVALSHA", "EVAL") and len(words) > 1:
        return names.get(words[1], words[1][:8])
    return words[0]


async def to_endpoint(bench: Bench) -> load.Submit:
    """A submitter of jobs without a callback, whose `job.succeeded` goes to an endpoint
    at the receiver (which learns its secret), after a few went through end to end."""
    api, session, receiver = bench.url("api"), bench.session, bench.url("receiver")
    endpoint = {"url": f"{receiver}/hook", "events": ["job.succeeded"]}
    async with session.post(f"{api}/v1/endpoints", json=endpoint, headers=bench.headers) as made:
        if made.status != 201:
            raise RuntimeError(f"endpoint not made: HTTP {made.status} {await made.text()}")
        secret = (await made.json())["secret"]
    async with session.post(f"{receiver}/secrets", json={"secret": secret}):
        pass
    submit = load.acceptd_submitter(session, api, bench.headers, None)
    warm = [await submit() for _ in range(20)]
    await load.wait_for_arrivals(session, receiver, set(warm), 30)
    return submit


async def record(
    bench: Bench, jobs: int, interval: float, endpoint: bool = False
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(every command the server ran meanwhile, each job's webhook's arrival at the
    receiver: ns on this machine's clock, the one MONITOR stamps by). `endpoint`: the
    jobs have no callback; an endpoint of their tenant's receives them."""
    async with bench.acceptd_alone() as submit:
        if endpoint:
            submit = await to_endpoint(bench)
        await asyncio.sleep(1.0)  # the warm-up's webhooks are all out
        commands: list[dict[str, Any]] = []
        async with bench.redis.monitor() as monitor:

            async def listen() -> None:
                async for command in monitor.listen():
                    commands.append(command)

            listening = asyncio.create_task(listen())
            await asyncio.sleep(0.2)
            sent = []
            for _ in range(jobs):
                sent.append(await submit())
                await asyncio.sleep(interval)
            arrived = await load.wait_for_arrivals(
                bench.session, bench.url("receiver"), set(sent), 30
            )
            await asyncio.sleep(0.2)
            listening.cancel()
        return commands, arrived


def paths(
    commands: list[dict[str, Any]], names: dict[str, str], arrived: dict[str, int]
) -> dict[str, list[Any]]:
    """Per job: its commands (time, label, client), in the order the server ran them, and
    its webhook's arrival at the receiver among them (what latency is measured to: the
    attempt's record comes after it); commands a script ran itself (MONITOR's "lua"
    client) are left out."""
    of_delivery: dict[str, str] = {}
    found: dict[str, list[Any]] = defaultdict(list)
    for command in commands:
        if command.get("client_type") == "lua":
            continue
        text = command["command"]
        job, delivery = _JOB.search(text), _DELIVERY.search(text)
        if job and delivery:
            of_delivery[delivery.group(0)] = job.group(0)
        job_id = of_delivery.get(delivery.group(0)) if delivery else None
        job_id = job_id or (job.group(0) if job else None)
        if job_id is not None:
            client = f"{command['client_address']}:{command['client_port']}"
            found[job_id].append((command["time"], label(text, names), client))
    for job_id, at_ns in arrived.items():
        if job_id in found:
            found[job_id].append((at_ns / 1e9, ARRIVED, "receiver"))
            found[job_id].sort(key=lambda step: step[0])
    return found


def table(found: dict[str, list[Any]]) -> str:
    """The most common path, its steps' gaps (ms) over the jobs that took it."""
    shapes: dict[tuple[str, ...], list[list[Any]]] = defaultdict(list)
    for steps in found.values():
        shapes[tuple(label for _, label, _ in steps)].append(steps)
    shape, taken = max(shapes.items(), key=lambda item: len(item[1]))
    processes: dict[str, str] = {}
    lines = [
        f"{len(taken)} of {len(found)} jobs took this path",
        "| step | from the step before, ms: p50 | p90 | client |",
        "|---|---|---|---|",
    ]
    for i, step in enumerate(shape):
        client = processes.setdefault(taken[0][i][2], f"c{len(processes) + 1}")
        if i == 0:
            lines.append(f"| {step} | | | {client} |")
            continue
        gaps = [(steps[i][0] - steps[i - 1][0]) * 1000 for steps in taken]
        p90 = load.percentile(gaps, 90)
        lines.append(f"| {step} | {statistics.median(gaps):.2f} | {p90:.2f} | {client} |")
    total = [(steps[-1][0] - steps[0][0]) * 1000 for steps in taken]
    lines.append(f"| first to last | {statistics.median(total):.2f} | "
                 f"{load.percentile(total, 90):.2f} | |")  # fmt: skip
    if ARRIVED in shape:  # the latency the benches measure ends here, not at the last step
        end = shape.index(ARRIVED)
        waited = [(steps[end][0] - steps[0][0]) * 1000 for steps in taken]
        lines.append(f"| first to {ARRIVED} | {statistics.median(waited):.2f} | "
                     f"{load.percentile(waited, 90):.2f} | |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gaps")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between submits")
    parser.add_argument(
        "--redis-hop",
        action="store_true",
        help="the roles reach Redis through a proxy (bench/hop.py), as across a network",
    )
    parser.add_argument(
        "--endpoint",
        action="store_true",
        help="jobs without a callback, their webhook sent to a registered endpoint",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="acceptd-bench-") as workdir:
        cluster = Cluster(Path(workdir), redis_hop=args.redis_hop)
        bench = Bench(cluster, argparse.Namespace(runs=1, seconds=1.0))
        try:
            bench.start()
            commands, arrived = asyncio.run(record(bench, args.jobs, args.interval, args.endpoint))
            names = script_names(redis.Redis())  # only registers: never connects
        finally:
            cluster.stop_all()
    print(table(paths(commands, names, arrived)))


if __name__ == "__main__":
    main()

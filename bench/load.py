"""Load generators and the statistics they report."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def closed_loop(
    call: Callable[[], Awaitable[None]], concurrency: int, duration: float
) -> dict[str, float]:
    """`concurrency` clients each calling back to back for `duration` s."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration

    async def client() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                await call()
            except Exception:
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "errors": errors,
    }


def poster(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], expect: int
) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            if response.status != expect:
                raise RuntimeError(f"HTTP {response.status}")

    return call


def getter(
    session: aiohttp.ClientSession, urls: list[str], headers: dict[str, str]
) -> Callable[[], Awaitable[None]]:
    index = [0]

    async def call() -> None:
        index[0] = (index[0] + 1) % len(urls)
        async with session.get(urls[index[0]], headers=headers) as response:
            await response.read()
            if response.status not in (200, 202):
                raise RuntimeError(f"HTTP {response.status}")

    return call


async def arrivals(session: aiohttp.ClientSession, receiver: str) -> dict[str, int]:
    async with session.get(f"{receiver}/results") as response:
        found: dict[str, int] = (await response.json())["arrivals"]
        return found


async def reset(session: aiohttp.ClientSession, receiver: str) -> None:
    async with session.post(f"{receiver}/reset"):
        pass


async def wait_for_arrivals(
    session: aiohttp.ClientSession,
    receiver: str,
    expected: set[str],
    timeout: float,  # noqa: ASYNC109 - a deadline for polling the receiver
) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        found = await arrivals(session, receiver)
        if expected <= found.keys() or time.monotonic() > deadline:
            return {k: v for k, v in found.items() if k in expected}
        await asyncio.sleep(0.1)


Submit = Callable[[], Awaitable[str]]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cycle collection in the load generator while it sends. Its heap grows with what
    a phase keeps (each job's send time, each finished request's task), and a full
    collection of it stalled the sends for 34 ms at 700 jobs/s: every job stamped during
    the stall looked 34 ms slower, a tail that was the bench's and not the system's under
    test (bench/README.md, session 20). Afterwards the collector is on again, with
    nothing frozen: what the phase left is collected then."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


async def burst(submit: Submit, count: int, concurrency: int) -> dict[str, int]:
    """Submit `count` jobs as fast as `concurrency` clients can; returns id -> send time (ns)."""
    sent: dict[str, int] = {}
    remaining = [count]

    async def client() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            started = time.time_ns()
            sent[await submit()] = started

    with collector_paused():
        await asyncio.gather(*(client() for _ in range(concurrency)))
    return sent


async def paced(submit: Submit, rate: float, duration: float) -> dict[str, int]:
    """Open loop: one submission every 1/rate s, whatever the answers take."""
    sent: dict[str, int] = {}
    tasks: list[asyncio.Task[None]] = []

    async def one(started: int) -> None:
        sent[await submit()] = started

    with collector_paused():
        interval, deadline = 1 / rate, time.perf_counter() + duration
        next_at = time.perf_counter()
        while next_at < deadline:
            tasks.append(asyncio.create_task(one(time.time_ns())))
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await asyncio.gather(*tasks)
    return sent


def end_to_end(sent: dict[str, int], arrived: dict[str, int]) -> dict[str, float]:
    latencies = [(arrived[j] - t) / 1e6 for j, t in sent.items() if j in arrived]
    span = (max(arrived.values()) - min(sent.values())) / 1e9 if arrived else float("nan")
    return {
        "jobs_per_s": len(arrived) / span if arrived else 0.0,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "missing": len(sent) - len(arrived),
    }


def acceptd_submitter(
    session: aiohttp.ClientSession, api: str, headers: dict[str, str], callback: str | None
) -> Submit:
    job: dict[str, Any] = {"type": "demo.echo", "input": {"value": 1}}
    if callback is not None:
        job["callback_url"] = callback
    body = json.dumps(job).encode()

    async def submit() -> str:
        async with session.post(f"{api}/v1/jobs", data=body, headers=headers) as response:
            job: dict[str, Any] = await response.json()
            if response.status != 202:
                raise RuntimeError(f"HTTP {response.status}: {job}")
            return str(job["id"])

    return submit


async def warmed_submitter(
    session: aiohttp.ClientSession, api: str, headers: dict[str, str], receiver: str
) -> Submit:
    """A submitter of jobs with a callback to `receiver`'s /hook, after 200 of them went
    through end to end (connections open, scripts loaded, caches filled)."""
    submit = acceptd_submitter(session, api, headers, f"{receiver}/hook")
    warm = await burst(submit, 200, 8)
    await wait_for_arrivals(session, receiver, set(warm), 60)
    return submit

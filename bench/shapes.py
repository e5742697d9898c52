"""Bench phases for the other shapes of 202 work: many clients waiting on live status, and
one request carrying a 10,000-item batch."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import redis.asyncio as aredis

from acceptd.store import keys
from bench import load
from bench.cluster import Cluster

WAITERS = 1000
BATCH_ITEMS = 10_000
# Below this, the idle system's own background commands: setup is over.
QUIET_COMMANDS_PER_S = 50


@dataclass
class Target:
    session: aiohttp.ClientSession
    api: str
    headers: dict[str, str]
    redis: aredis.Redis
    cluster: Cluster


async def _commands_and_api_cpu(target: Target, seconds: float) -> tuple[float, float]:
    """(Redis commands per second, API CPU share) over `seconds` of whatever runs now."""
    before = (await target.redis.info("stats"))["total_commands_processed"]
    cpu_before, started = target.cluster.cpu_seconds("api"), time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    after = (await target.redis.info("stats"))["total_commands_processed"]
    cpu = (target.cluster.cpu_seconds("api") - cpu_before) / elapsed
    return (after - before) / elapsed, cpu


async def _settled(target: Target, count: int) -> None:
    """Until the API holds a subscription per waiter and each waiter's first reads are done
    (Redis quiet for half a second): setting the waits up is not what is measured."""
    deadline = time.monotonic() + 60
    pattern = keys.job_changes("*")
    while len(await target.redis.pubsub_shardchannels(pattern)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the waiters' subscriptions never all appeared")
        await asyncio.sleep(0.1)
    while (await _commands_and_api_cpu(target, 0.5))[0] > QUIET_COMMANDS_PER_S:
        if time.monotonic() > deadline:
            raise RuntimeError("Redis never went quiet with the waiters in place")


async def waiting_clients(target: Target, seconds: float) -> dict[str, float]:
    """WAITERS clients each hold `GET /v1/jobs/{id}?wait=60&since_status=queued` on their own
    queued job while the worker is paused. Measures what the waiting costs (Redis commands
    per second, API CPU, against the same system with nobody waiting), then resumes the
    worker and measures how soon after each job started its waiter had the answer."""
    submit = load.acceptd_submitter(target.session, target.api, target.headers, None)
    target.cluster.pause("worker")
    try:
        job_ids = list(await load.burst(submit, WAITERS, 32))
        idle_cmds, idle_cpu = await _commands_and_api_cpu(target, seconds)
        timeout = aiohttp.ClientTimeout(total=90)

        async def wait_for(job_id: str) -> tuple[str, int, str]:
            url = f"{target.api}/v1/jobs/{job_id}?wait=60&since_status=queued"
            async with target.session.get(url, headers=target.headers, timeout=timeout) as answer:
                job: dict[str, Any] = await answer.json()
            return job_id, time.time_ns() // 1_000_000, str(job["status"])

        waiters = [asyncio.create_task(wait_for(job_id)) for job_id in job_ids]
        await _settled(target, len(job_ids))
        early = sum(task.done() for task in waiters)
        waiting_cmds, waiting_cpu = await _commands_and_api_cpu(target, seconds)
    finally:
        target.cluster.resume("worker")
    answers = await asyncio.gather(*waiters)
    lags: list[float] = []
    for job_id, answered_ms, status in answers:
        started = await target.redis.hget(keys.job(job_id), "started")  # type: ignore[misc]
        if started is not None and status != "queued":
            lags.append(float(answered_ms - int(started)))
    return {
        "redis_cmds_per_s.idle": idle_cmds,
        "redis_cmds_per_s.waiting": waiting_cmds,
        "api_cpu.idle": idle_cpu,
        "api_cpu.waiting": waiting_cpu,
        "answered_early": float(early),
        "answered": float(len(lags)),
        "lag_p50_ms": load.percentile(lags, 50),
        "lag_p99_ms": load.percentile(lags, 99),
    }


async def batch_submit(target: Target) -> dict[str, float]:
    """One POST /v1/batches of BATCH_ITEMS demo.echo items, timed at the client (loopback),
    with the worker paused; then the batch is canceled, which is timed too."""
    items = [{"type": "demo.echo", "input": {"value": i}} for i in range(BATCH_ITEMS)]
    body = json.dumps({"items": items}).encode()
    target.cluster.pause("worker")
    try:
        started = time.perf_counter()
        async with target.session.post(
            f"{target.api}/v1/batches", data=body, headers=target.headers
        ) as response:
            batch: dict[str, Any] = await response.json()
        submit_ms = (time.perf_counter() - started) * 1000
        if response.status != 202:
            raise RuntimeError(f"batch submit: HTTP {response.status}: {batch}")
        started = time.perf_counter()
        async with target.session.post(
            f"{target.api}{batch['links']['self']}/cancel", headers=target.headers
        ) as response:
            canceled: dict[str, Any] = await response.json()
        cancel_ms = (time.perf_counter() - started) * 1000
    finally:
        target.cluster.resume("worker")
    if canceled["counts"]["canceled"] != BATCH_ITEMS:
        raise RuntimeError(f"batch cancel left items behind: {canceled['counts']}")
    return {"submit_ms": submit_ms, "cancel_ms": cancel_ms, "body_kb": len(body) / 1024}

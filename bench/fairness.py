"""`python -m bench.fairness`: what one tenant's backlog costs the other tenants
(store/fairshare.py).

Two phases on one deployment (one worker of 16 slots). Alone: tenant A submits a batch of
`--backlog` jobs of `--job-ms`; A's throughput is measured until the batch completes.
Shared: A submits the same batch again, and tenants B..K each submit one 1 ms job a second
for `--seconds` seconds. Reported: B..K's queue wait (the job's `started_at` minus its
`created_at`) p50 / p99 / max, how many of A's jobs were still queued when the last of
B..K's jobs started, and A's throughput in the shared phase against the alone phase. With
one first-in-first-out queue (before fair share), B..K waited for A's whole backlog."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from acceptd.core.clock import parse_rfc3339
from bench import load
from bench.cluster import API_KEY, Cluster, start_roles

OTHERS = "bcdefghijk"
SLOTS = 16


def _tenant_key(cluster: Cluster, name: str) -> str:
    """A new tenant, made as an operator makes one: its API key."""
    made = subprocess.run(
        [sys.executable, "-m", "acceptd", "tenants", "create", name, "--json"],
        env=cluster.env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return str(json.loads(made.stdout)["api_key"])


async def _post(
    session: aiohttp.ClientSession, url: str, key: str, body: dict[str, Any]
) -> dict[str, Any]:
    async with session.post(url, json=body, headers={"Authorization": f"Bearer {key}"}) as answer:
        if answer.status != 202:
            raise RuntimeError(f"{url}: {answer.status} {await answer.text()}")
        found: dict[str, Any] = await answer.json()
        return found


async def _get(session: aiohttp.ClientSession, url: str, key: str) -> dict[str, Any]:
    async with session.get(url, headers={"Authorization": f"Bearer {key}"}) as answer:
        found: dict[str, Any] = await answer.json()
        return found


async def _backlog(
    session: aiohttp.ClientSession, api: str, key: str, backlog: int, job_ms: int
) -> str:
    items = [
        {"type": "demo.echo", "input": {"value": i, "delay_ms": job_ms}} for i in range(backlog)
    ]
    batch = await _post(session, f"{api}/v1/batches", key, {"items": items})
    return str(batch["id"])


async def _completed(session: aiohttp.ClientSession, api: str, key: str, batch_id: str) -> None:
    for _ in range(3000):  # 10 minutes at most
        if (await _get(session, f"{api}/v1/batches/{batch_id}", key))["status"] == "completed":
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"batch {batch_id} did not complete in 10 minutes")


async def alone(api: str, key: str, backlog: int, job_ms: int) -> float:
    """A's jobs per second with nobody else submitting."""
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        batch_id = await _backlog(session, api, key, backlog, job_ms)
        await _completed(session, api, key, batch_id)
        return backlog / (time.monotonic() - started)


async def shared(
    api: str, keys: dict[str, str], backlog: int, job_ms: int, seconds: int
) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        batch_id = await _backlog(session, api, keys["a"], backlog, job_ms)
        small: list[tuple[str, str]] = []  # (tenant, job id)
        for _ in range(seconds):
            tick = time.monotonic()
            for tenant in OTHERS:
                body = {"type": "demo.echo", "input": {"value": 0, "delay_ms": 1}}
                job = await _post(session, f"{api}/v1/jobs", keys[tenant], body)
                small.append((tenant, job["id"]))
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
        waits: list[float] = []
        last_start, queued_then = 0, None
        for tenant, job_id in small:
            while True:
                job = await _get(session, f"{api}/v1/jobs/{job_id}", keys[tenant])
                if job["started_at"]:
                    break
                await asyncio.sleep(0.2)
            start = parse_rfc3339(job["started_at"])
            waits.append(start - parse_rfc3339(job["created_at"]))
            if start > last_start:
                last_start = start
                found = await _get(session, f"{api}/v1/batches/{batch_id}", keys["a"])
                queued_then = found["counts"]["queued"]
        await _completed(session, api, keys["a"], batch_id)
        elapsed = time.monotonic() - started
    return {
        "wait_p50_ms": load.percentile(waits, 50),
        "wait_p99_ms": load.percentile(waits, 99),
        "wait_max_ms": max(waits),
        "a_queued_when_the_last_other_started": queued_then,
        "a_jobs_per_s": backlog / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--job-ms", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        cluster = Cluster(Path(workdir))
        try:
            api = start_roles(cluster, ACCEPTD_WORKER_CONCURRENCY=str(SLOTS))
            keys = {"a": API_KEY} | {tenant: _tenant_key(cluster, tenant) for tenant in OTHERS}
            rate_alone = asyncio.run(alone(api, API_KEY, args.backlog, args.job_ms))
            figures = asyncio.run(shared(api, keys, args.backlog, args.job_ms, args.seconds))
        finally:
            cluster.stop_all()
    figures["a_jobs_per_s_alone"] = rate_alone
    figures["a_shared_against_alone"] = figures["a_jobs_per_s"] / rate_alone
    print(f"tenant A: a batch of {args.backlog} jobs of {args.job_ms} ms; tenants B..K: one")
    print(f"1 ms job a second each for {args.seconds} s; one worker, {SLOTS} slots")
    for name, value in figures.items():
        print(f"{name:>40}: {value:,.2f}" if isinstance(value, float) else f"{name:>40}: {value}")


if __name__ == "__main__":
    main()

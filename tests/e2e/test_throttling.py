"""Enforced per-endpoint rate limits with real processes (two dispatchers sharing the
limit): the throttled endpoint never sees more than its limit in any second, no attempt is
burned while waiting, and an unlimited endpoint runs at full speed beside it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiohttp import web

from acceptd.webhooks.signing import verify
from tests.support.cluster import Cluster
from tests.support.hooks import serve_hook
from tests.support.http import authed_session, call
from tests.support.waiting import wait_until

LIMIT = 5
JOBS = 30


async def test_a_throttled_endpoint_never_sees_more_than_its_limit(tmp_path: Path) -> None:
    arrivals: dict[str, list[float]] = {"/slow": [], "/fast": []}
    secrets: dict[str, str] = {}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        verify(secrets[request.path], request.headers, body)  # raises on a forgery
        arrivals[request.path].append(time.monotonic())
        return web.Response(status=204)

    runner, port = await serve_hook(hook)
    try:
        async with Cluster(tmp_path) as cluster, authed_session() as http:
            cluster.roles.start(
                "dispatcher-2", "dispatcher"
            )  # the limit is shared, not per process
            for path, limit in (("/slow", LIMIT), ("/fast", None)):
                body = {"url": f"http://127.0.0.1:{port}{path}", "rate_limit_per_second": limit}
                async with http.post(f"{cluster.api_url}/v1/endpoints", json=body) as answer:
                    created = await answer.json()
                    assert answer.status == 201, created
                    assert created["rate_limit_per_second"] == limit
                    secrets[path] = created["secret"]
            job_ids = []
            for index in range(JOBS):
                job = {"type": "demo.echo", "input": {"value": index}}
                job_ids.append((await call(http, "POST", f"{cluster.api_url}/v1/jobs", job))["id"])

            async def all_arrived() -> bool:
                return all(len(times) >= JOBS for times in arrivals.values())

            await wait_until(all_arrived, timeout=60, interval=0.2)
            await asyncio.sleep(1)  # nothing more may come: each delivery arrives once
            async with http.get(f"{cluster.api_url}/v1/jobs/{job_ids[-1]}/deliveries") as answer:
                deliveries = (await answer.json())["items"]
    finally:
        await runner.cleanup()
    slow, fast = sorted(arrivals["/slow"]), sorted(arrivals["/fast"])
    assert len(slow) == len(fast) == JOBS
    busiest = max(sum(1 for t in slow if start <= t < start + 1.0) for start in slow)
    print(
        f"\nthrottled at {LIMIT}/s: busiest second held {busiest}; {JOBS} took "
        f"{slow[-1] - slow[0]:.1f} s; unlimited: {fast[-1] - fast[0]:.1f} s"
    )
    assert busiest <= LIMIT
    assert slow[-1] - slow[0] >= (JOBS / LIMIT) - 1.5  # it was held back, not just lucky
    assert fast[-1] - fast[0] < (slow[-1] - slow[0]) / 2  # the other endpoint did not wait
    # Waiting burned no attempt: the throttled delivery was sent once.
    assert all(len(d["attempts"]) == 1 and d["status"] == "succeeded" for d in deliveries)


async def test_a_throttled_receiver_that_stalls_then_answers_all_at_once_sees_its_limit(
    tmp_path: Path,
) -> None:
    """The receiver holds every request for its first 3 s, then answers them all at once.
    Attempts for its two slots (dispatcher/caps.py) take their throttle turn only once they
    hold a slot, never before waiting for one: the slots freed together are no burst."""
    arrivals: list[float] = []
    stalled_until = time.monotonic() + 3.0

    async def hook(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        await asyncio.sleep(max(0.0, stalled_until - time.monotonic()))
        return web.Response(status=204)

    runner, port = await serve_hook(hook)
    try:
        async with (
            Cluster(tmp_path, ACCEPTD_WEBHOOK_CONCURRENCY_PER_ENDPOINT="2") as cluster,
            authed_session() as http,
        ):
            body = {"url": f"http://127.0.0.1:{port}/stalls", "rate_limit_per_second": LIMIT}
            async with http.post(f"{cluster.api_url}/v1/endpoints", json=body) as answer:
                assert answer.status == 201, await answer.text()
            for index in range(JOBS):
                job = {"type": "demo.echo", "input": {"value": index}}
                await call(http, "POST", f"{cluster.api_url}/v1/jobs", job)

            async def all_arrived() -> bool:
                return len(arrivals) >= JOBS

            await wait_until(all_arrived, timeout=60, interval=0.2)
    finally:
        await runner.cleanup()
    times = sorted(arrivals)
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    print(f"\nstalled, then throttled at {LIMIT}/s: busiest second held {busiest}")
    assert busiest <= LIMIT

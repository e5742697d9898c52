"""Live status beyond polling: ?wait=N long-polls and the SSE stream, fed by pub/sub."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from acceptd.api import state
from tests.support.http import submit_job
from tests.support.waiting import wait_until

Client = TestClient[Any, Any]


async def submit(client: Client, auth: dict[str, str], **data: Any) -> dict[str, Any]:
    return await submit_job(client, auth, {"type": "demo.echo", "input": {"value": 1, **data}})


def waiting(client: Client) -> int:
    """How many long-polls and streams the API is subscribed for, over all jobs."""
    return sum(len(queues) for queues in client.app[state.CHANGES]._watchers.values())


async def test_wait_answers_at_once_without_since_status(
    client: Client, auth: dict[str, str]
) -> None:
    job = await submit(client, auth)
    started = time.monotonic()
    response = await client.get(f"{job['links']['self']}?wait=5", headers=auth)
    assert response.status == 202
    assert time.monotonic() - started < 1


async def test_wait_returns_when_the_status_changes(
    client: Client, auth: dict[str, str], run_worker_burst: Callable[..., Awaitable[None]]
) -> None:
    job = await submit(client, auth)
    started = time.monotonic()
    url = f"{job['links']['self']}?wait=20&since_status=queued"
    answer = asyncio.create_task(client.get(url, headers=auth))
    await wait_until(lambda: waiting(client) == 1)
    assert not answer.done()  # it waits: the job is still queued
    await run_worker_burst()
    response = await asyncio.wait_for(answer, 15)
    elapsed = time.monotonic() - started
    body = await response.json()
    assert body["status"] in ("running", "succeeded")
    assert elapsed < 10  # woken by the change, not by the 20 s deadline


async def test_wait_gives_up_after_n_seconds(client: Client, auth: dict[str, str]) -> None:
    job = await submit(client, auth)  # no worker: it stays queued
    started = time.monotonic()
    response = await client.get(
        f"{job['links']['self']}?wait=0.5&since_status=queued", headers=auth
    )
    assert response.status == 202
    assert (await response.json())["status"] == "queued"
    assert 0.45 < time.monotonic() - started < 3


async def test_wait_bounds(client: Client, auth: dict[str, str]) -> None:
    job = await submit(client, auth)
    for bad in ("61", "-1", "soon"):
        response = await client.get(f"{job['links']['self']}?wait={bad}", headers=auth)
        assert response.status == 400


async def test_many_waiters_share_one_subscription(
    client: Client, auth: dict[str, str], run_worker_burst: Callable[..., Awaitable[None]]
) -> None:
    job = await submit(client, auth)
    url = f"{job['links']['self']}?wait=20&since_status=queued"
    waiters = [asyncio.create_task(client.get(url, headers=auth)) for _ in range(50)]
    await wait_until(lambda: waiting(client) == 50)
    changes = client.app[state.CHANGES]
    assert len(changes._watchers) == 1  # one channel for fifty clients
    await run_worker_burst()
    answers = await asyncio.gather(*waiters)
    assert all(a.status in (200, 202) for a in answers)
    assert changes._watchers == {}  # unsubscribed once nobody waits


async def test_sse_streams_status_and_progress_until_terminal(
    client: Client, auth: dict[str, str], worker: None
) -> None:
    job = await submit(client, auth, delay_ms=1200, progress_steps=3)
    response = await client.get(f"{job['links']['self']}/events", headers=auth)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events: list[tuple[str, dict[str, Any]]] = []
    kind = ""
    async with asyncio.timeout(20):
        async for raw in response.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((kind, json.loads(line.split(":", 1)[1])))
    kinds = [k for k, _ in events]
    assert kinds[0] == "status"
    assert events[0][1]["status"] in ("queued", "running")
    assert "progress" in kinds
    assert events[-1][0] == "status"
    assert events[-1][1]["status"] == "succeeded"
    fractions = [data["progress"]["fraction"] for _, data in events]
    assert fractions == sorted(fractions)


async def test_sse_of_an_unknown_job_is_a_404_problem(client: Client, auth: dict[str, str]) -> None:
    response = await client.get("/v1/jobs/job_00000000000000000000000000/events", headers=auth)
    assert response.status == 404
    assert response.content_type == "application/problem+json"


async def test_hundreds_of_waiters_arriving_at_once_each_get_their_change(
    client: Client, auth: dict[str, str]
) -> None:
    """Each waits on its own job, all subscribing at the same moment on a fresh API: a
    subscription lost in that rush would leave its waiter 'queued' until the wait ends."""
    jobs = [await submit(client, auth) for _ in range(300)]
    # One connection per waiter (the test client's pool stops at 100).
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def wait_for(job: dict[str, Any]) -> str:
            url = client.make_url(f"{job['links']['self']}?wait=20&since_status=queued")
            async with session.get(url, headers=auth) as answer:
                return str((await answer.json())["status"])

        waiters = [asyncio.create_task(wait_for(job)) for job in jobs]
        await wait_until(lambda: waiting(client) == len(jobs), timeout=20)
        for job in jobs:
            await client.post(f"{job['links']['self']}/cancel", headers=auth)
        assert set(await asyncio.gather(*waiters)) == {"canceled"}

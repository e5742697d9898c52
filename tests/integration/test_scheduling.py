"""Scheduled work and priority lanes (part of issue #8)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from acceptd.core.settings import Settings
from tests.support.waiting import wait_until

Client = TestClient[Any, Any]


async def submit(client: Client, auth: dict[str, str], **extra: Any) -> Any:
    return await client.post(
        "/v1/jobs", json={"type": "demo.echo", "input": {"value": 1}, **extra}, headers=auth
    )


async def status_of(client: Client, auth: dict[str, str], job: dict[str, Any]) -> str:
    return str((await (await client.get(job["links"]["self"], headers=auth)).json())["status"])


async def test_a_delayed_job_is_scheduled_until_due_then_runs(
    client: Client, auth: dict[str, str], worker: None
) -> None:
    response = await submit(client, auth, delay_seconds=1.5)
    job = await response.json()
    assert response.status == 202
    assert job["status"] == "scheduled"
    assert job["run_at"]
    assert int(response.headers["Retry-After"]) >= 1
    await asyncio.sleep(0.8)  # time passes, short of the delay: not run early
    assert await status_of(client, auth, job) == "scheduled"

    async def done() -> bool:
        return await status_of(client, auth, job) == "succeeded"

    await wait_until(done, timeout=10)
    final = await (await client.get(job["links"]["self"], headers=auth)).json()
    started = datetime.fromisoformat(final["started_at"].replace("Z", "+00:00"))
    run_at = datetime.fromisoformat(job["run_at"].replace("Z", "+00:00"))
    assert started >= run_at
    # The worker's scheduler sleeps up to 5 s when idle: the submit woke it, and it slept
    # until this job's due time, so the job is not late by a poll interval.
    assert started - run_at < timedelta(seconds=1)


async def test_run_at_in_the_past_queues_at_once(client: Client, auth: dict[str, str]) -> None:
    past = (datetime.now(tz=UTC) - timedelta(minutes=5)).isoformat()
    job = await (await submit(client, auth, run_at=past)).json()
    assert job["status"] == "queued"


async def test_a_scheduled_job_can_be_canceled_and_never_runs(
    client: Client, auth: dict[str, str], worker: None
) -> None:
    job = await (await submit(client, auth, delay_seconds=0.5)).json()
    canceled = await client.post(f"{job['links']['self']}/cancel", headers=auth)
    assert (await canceled.json())["status"] == "canceled"
    await asyncio.sleep(1.2)  # past the time it was due: it would have run by now
    final = await (await client.get(job["links"]["self"], headers=auth)).json()
    assert final["status"] == "canceled"
    assert final["started_at"] is None


async def test_bad_schedules_are_422(client: Client, auth: dict[str, str]) -> None:
    soon = (datetime.now(tz=UTC) + timedelta(minutes=5)).isoformat()
    for extra in (
        {"run_at": soon, "delay_seconds": 5},
        {"run_at": "tomorrow"},
        {"run_at": "2030-01-01T00:00:00"},  # no offset: ambiguous
        {"delay_seconds": -1},
        {"priority": "urgent"},
    ):
        response = await submit(client, auth, **extra)
        assert response.status == 422, extra


async def test_high_priority_overtakes_a_backlog(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
    run_worker_burst: Callable[..., Awaitable[None]],
) -> None:
    from acceptd.api.app import create_app

    one_at_a_time = make_settings(worker_concurrency=1)
    client = await aiohttp_client(create_app(one_at_a_time))
    backlog = [await (await submit(client, auth)).json() for _ in range(5)]
    urgent = await (await submit(client, auth, priority="high")).json()
    assert urgent["priority"] == "high"
    assert backlog[0]["priority"] == "normal"
    await run_worker_burst(one_at_a_time)
    jobs = [
        await (await client.get(j["links"]["self"], headers=auth)).json()
        for j in [urgent, *backlog]
    ]
    started = [j["started_at"] for j in jobs]
    assert all(j["status"] == "succeeded" for j in jobs)
    assert started[0] == min(started)  # submitted last, ran first


async def test_list_filters_scheduled(client: Client, auth: dict[str, str]) -> None:
    job = await (await submit(client, auth, delay_seconds=60)).json()
    page = await (await client.get("/v1/jobs?status=scheduled", headers=auth)).json()
    assert [i["id"] for i in page["items"]] == [job["id"]]

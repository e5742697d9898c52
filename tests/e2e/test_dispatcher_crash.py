"""SIGKILL the dispatcher process mid-retry: the owed delivery still arrives after a restart."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from standardwebhooks.webhooks import Webhook

from tests.support.cli import ACCEPTD
from tests.support.constants import (
    API_KEY,
    JOB_MODULES,
    MASTER_KEY,
    SECRET,
    TEST_SHARDS,
    subprocess_env,
)
from tests.support.receiver import Answer, Receiver
from tests.support.waiting import wait_until


def dispatcher_env(redis_url: str, **extra: str) -> dict[str, str]:
    return subprocess_env(
        ACCEPTD_REDIS_URL=redis_url,
        ACCEPTD_MASTER_KEY=MASTER_KEY,
        ACCEPTD_BOOTSTRAP_API_KEY=API_KEY,
        ACCEPTD_BOOTSTRAP_SECRET=SECRET,
        ACCEPTD_JOB_MODULES=",".join(JOB_MODULES),
        ACCEPTD_ALLOW_PRIVATE_CALLBACKS="true",
        ACCEPTD_WEBHOOK_RETRY_SCHEDULE="2,2",
        ACCEPTD_WORKER_POLL_DELAY_SECONDS="0.01",
        ACCEPTD_METRICS_PORT="0",
        ACCEPTD_SHARDS=str(TEST_SHARDS),  # the count the suite's roles recorded
        **extra,
    )


async def start_dispatcher(redis_url: str, **extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *ACCEPTD,
        "dispatcher",
        env=dispatcher_env(redis_url, **extra),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


@pytest.mark.timeout(90)
async def test_delivery_survives_sigkill_of_the_dispatcher(
    client: TestClient[Any, Any],
    auth: dict[str, str],
    worker: None,
    redis_url: str,
    receiver: tuple[Receiver, str],
) -> None:
    recording, url = receiver
    recording.then(Answer(500))
    response = await client.post(
        "/v1/jobs",
        json={"type": "demo.echo", "input": {"value": 1}, "callback_url": url},
        headers=auth,
    )
    job = await response.json()
    first = await start_dispatcher(redis_url)
    try:
        # The first attempt failed and is recorded; its retry is owed in about 2 s.
        await wait_until(_attempts(client, auth, job, 1), timeout=20)
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    await asyncio.sleep(3)  # past the retry's time, with no dispatcher running
    assert len(recording.received) == 1  # nobody sent the retry while no dispatcher ran

    second = await start_dispatcher(redis_url)
    try:
        await wait_until(recording.got(2), timeout=20)
        deliveries = _deliveries(client, auth, job)
        [delivery] = await wait_until(deliveries, timeout=10)
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 15)
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
    retried = recording.received[1]
    Webhook(SECRET).verify(retried.body, retried.headers)
    assert retried.headers["webhook-id"] == recording.received[0].headers["webhook-id"]
    assert second.returncode == 0  # SIGTERM is a clean stop


@pytest.mark.timeout(90)
async def test_attempt_cut_short_by_sigkill_is_sent_again(
    client: TestClient[Any, Any],
    auth: dict[str, str],
    worker: None,
    redis_url: str,
    receiver: tuple[Receiver, str],
) -> None:
    """Killed while the receiver holds the request: nothing was recorded, and the attempt
    (a first one, sent inline) holds an inline lease the dead dispatcher no longer renews.
    Once it lapses (INLINE_LEASE_SECONDS, 10 s, plus a sweep) the attempt is queued again."""
    recording, url = receiver
    recording.then(Answer(stall_seconds=5))
    response = await client.post(
        "/v1/jobs",
        json={"type": "demo.echo", "input": {"value": 2}, "callback_url": url},
        headers=auth,
    )
    job = await response.json()
    first = await start_dispatcher(redis_url)
    try:
        await wait_until(recording.got(1), timeout=20)
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    second = await start_dispatcher(redis_url)
    try:
        [delivery] = await wait_until(_deliveries(client, auth, job), timeout=45)
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 15)
    assert [a["status_code"] for a in delivery["attempts"]] == [200]
    assert len(recording.received) == 2
    assert (
        recording.received[0].headers["webhook-id"] == recording.received[1].headers["webhook-id"]
    )
    Webhook(SECRET).verify(recording.received[1].body, recording.received[1].headers)


def _attempts(
    client: TestClient[Any, Any], auth: dict[str, str], job: dict[str, Any], count: int
) -> Callable[[], Any]:
    async def check() -> bool:
        items = (
            await (await client.get(f"{job['links']['self']}/deliveries", headers=auth)).json()
        )["items"]
        return bool(items) and len(items[0]["attempts"]) >= count

    return check


def _deliveries(
    client: TestClient[Any, Any], auth: dict[str, str], job: dict[str, Any]
) -> Callable[[], Any]:
    async def check() -> Any:
        items = (
            await (await client.get(f"{job['links']['self']}/deliveries", headers=auth)).json()
        )["items"]
        return items if items and items[0]["status"] == "succeeded" else None

    return check

"""The three roles on a Sentinel-managed primary (`redis+sentinel://…`), as separate
processes: the primary is SIGKILLed under load, the sentinels promote a replica, and every
role follows with no restart. With ACCEPTD_DURABILITY=replica no acknowledged job is lost:
each ends and its webhook arrives, and no request is answered 500 meanwhile."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from acceptd.cli.topologies import EmbeddedSentinelGroup
from tests.e2e.test_faults import running_count, settle, submit_many
from tests.support.cluster import Cluster
from tests.support.constants import API_KEY
from tests.support.waiting import wait_until


async def _submit_once(
    cluster: Cluster, index: int, key: str | None = None
) -> tuple[int, str | None]:
    """One POST without the SDK's retries: what a caller sees during the failover. The
    contract's client retries a 503 under the same Idempotency-Key (`key`)."""
    key = key or str(uuid.uuid4())
    body = {
        "type": "demo.echo",
        "input": {"value": index, "delay_ms": 200},
        "callback_url": cluster.receiver.url(),
    }
    headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": key}
    timeout = aiohttp.ClientTimeout(total=15)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(f"{cluster.api_url}/v1/jobs", json=body, headers=headers) as answer,
    ):
        job = await answer.json(content_type=None)
        return answer.status, job.get("id") if answer.status == 202 else None


@pytest.mark.timeout(240)
async def test_the_roles_follow_a_sentinel_failover_and_lose_no_acknowledged_job(
    tmp_path: Path,
) -> None:
    group = EmbeddedSentinelGroup(tmp_path / "sentinel", replicas=2, sentinels=3)
    cluster = Cluster(tmp_path, ACCEPTD_DURABILITY="replica", ACCEPTD_WORKER_CONCURRENCY="32")
    cluster.store = group
    async with cluster:
        before = await submit_many(cluster, 30, delay_ms=2000)

        async def most_running() -> bool:
            return await running_count(cluster, before) >= 20

        await wait_until(most_running, timeout=30, interval=0.2)
        group.kill_primary()
        killed = time.monotonic()
        answers: Counter[int] = Counter()
        during: list[str] = []
        while time.monotonic() - killed < 12:  # through the failover and a little after
            status, job_id = await _submit_once(cluster, len(answers))
            answers[status] += 1
            if job_id is not None:
                during.append(job_id)
            await asyncio.sleep(0.1)  # a submit every 100 ms through the failover
        await asyncio.to_thread(group.wait_for_failover, 30)
        after = await submit_many(cluster, 10, delay_ms=100)
        took = await settle(cluster, before + during + after, killed, limit=120)
        statuses = await cluster.statuses(before + during + after)
    print(
        f"\nSentinel failover: answers during it {dict(answers)}; all settled {took:.1f} s "
        "after the kill"
    )
    assert set(answers) <= {202, 503}, answers  # never a 500
    assert answers[202] > 0  # the API served again before the test stopped asking
    assert statuses == {"succeeded": len(before) + len(during) + len(after)}
    assert cluster.receiver.forged == 0


async def _post_until(
    cluster: Cluster, key: str, index: int, answers: Counter[int], deadline: float
) -> str | None:
    """POSTs one job under `key` until it is acknowledged (its id) or the deadline passes,
    counting every answer."""
    while time.monotonic() < deadline:
        status, job_id = await _submit_once(cluster, index, key)
        answers[status] += 1
        if job_id is not None:
            return job_id
        await asyncio.sleep(0.3)  # retried, as a client would
    return None


@pytest.mark.timeout(240)
async def test_a_replica_cut_off_then_promoted_loses_no_acknowledged_job(
    tmp_path: Path,
) -> None:
    """The failover that loses acknowledged writes: the replica stops taking the primary's
    stream while the primary goes on answering, then the primary dies and the lagging
    replica is promoted. With ACCEPTD_DURABILITY=replica, what the primary took alone was
    never acknowledged (503, retried under its Idempotency-Key): every job that got a 202
    runs to its end with its webhook."""
    group = EmbeddedSentinelGroup(tmp_path / "sentinel", replicas=1, sentinels=3)
    cluster = Cluster(tmp_path, ACCEPTD_DURABILITY="replica", ACCEPTD_DURABILITY_TIMEOUT_MS="300")
    cluster.store = group
    async with cluster:
        before = await submit_many(cluster, 10, delay_ms=100)
        primary, replica = group.servers
        replica.pause()  # it takes nothing more from the primary, which goes on answering
        answers: Counter[int] = Counter()
        keys = [str(uuid.uuid4()) for _ in range(5)]
        for index, key in enumerate(keys):
            status, job_id = await _submit_once(cluster, index, key)
            answers[status] += 1
            assert job_id is None, "a job only the primary holds was acknowledged"
        group.kill_primary()
        replica.resume()
        await asyncio.to_thread(group.wait_for_failover, 60)
        primary.start()  # back, and made a replica of the promoted one by the sentinels
        deadline = time.monotonic() + 60
        during = [
            await _post_until(cluster, key, i, answers, deadline) for i, key in enumerate(keys)
        ]
        assert None not in during, answers
        acknowledged = before + [job_id for job_id in during if job_id is not None]
        took = await settle(cluster, acknowledged, time.monotonic(), limit=120)
        statuses = await cluster.statuses(acknowledged)
    print(f"\nlagging replica promoted: answers {dict(answers)}; all settled in {took:.1f} s")
    assert set(answers) <= {202, 503}, answers
    assert statuses == {"succeeded": len(acknowledged)}

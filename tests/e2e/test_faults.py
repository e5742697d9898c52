"""Faults with real processes and a real Valkey: a worker killed mid-job, Redis restarted
under load, Redis refusing writes (out of memory, read-only after a failover). In each,
every accepted job ends, every owed webhook arrives, and recovery takes seconds, not a
job timeout. Job timeouts are the production default (300 s) throughout."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from acceptd.cli.embedded import EmbeddedValkey
from acceptd.webhooks.signing import verify
from tests.support.cluster import Cluster, on_test_topology
from tests.support.constants import API_KEY, SECRET, TEST_TOPOLOGY
from tests.support.hooks import serve_hook
from tests.support.redis_faults import out_of_memory, read_only, replicate
from tests.support.waiting import wait_until

SUBMIT = {"type": "demo.echo", "input": {"value": 0}}


# Faults of one Valkey (its restart, its memory, its replica): a cluster's are
# tests/e2e/test_cluster_failover.py's.
one_server = pytest.mark.skipif(
    TEST_TOPOLOGY == "cluster", reason="a fault of one Valkey; the cluster's are tested apart"
)


async def submit_many(cluster: Cluster, count: int, delay_ms: int) -> list[str]:
    jobs = await asyncio.gather(
        *(
            cluster.client.submit(
                "demo.echo",
                {"value": i, "delay_ms": delay_ms},
                callback_url=cluster.receiver.url(),
            )
            for i in range(count)
        )
    )
    return [job.id for job in jobs]


async def running_count(cluster: Cluster, job_ids: list[str]) -> int:
    return (await cluster.statuses(job_ids))["running"]


async def raw_submit(cluster: Cluster) -> tuple[int, dict[str, str], dict[str, Any]]:
    """One POST without the client's retries: what a caller sees during the outage."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{cluster.api_url}/v1/jobs",
            json=SUBMIT,
            headers={"Authorization": f"Bearer {API_KEY}"},
        ) as response,
    ):
        return response.status, dict(response.headers), await response.json(content_type=None)


async def settle(cluster: Cluster, job_ids: list[str], since: float, limit: float) -> float:
    """Seconds from `since` until every job is terminal and its webhook arrived."""

    async def settled() -> bool:
        done = await cluster.all_terminal(job_ids)
        return done and not cluster.missing_webhooks(job_ids)

    try:
        await wait_until(settled, timeout=limit, interval=0.25)
    except AssertionError as exc:
        statuses = await cluster.statuses(job_ids)
        missing = cluster.missing_webhooks(job_ids)
        logs = "\n".join(
            f"--- {name}\n{cluster.roles.log_tail(name, 15)}" for name in cluster.roles.processes
        )
        raise AssertionError(
            f"{exc}: statuses {dict(statuses)}, {len(missing)} webhooks missing\n{logs}"
        ) from exc
    return time.monotonic() - since


@pytest.mark.timeout(120)
async def test_a_job_whose_worker_is_killed_runs_again_within_30_s(tmp_path: Path) -> None:
    async with on_test_topology(Cluster(tmp_path)) as cluster:
        job = await cluster.client.submit(
            "demo.echo", {"value": 1, "delay_ms": 3000}, callback_url=cluster.receiver.url()
        )

        async def running() -> bool:
            return bool((await cluster.client.get(job.id)).status == "running")

        await wait_until(running, timeout=20)
        killed = time.monotonic()
        await cluster.roles.signal("worker", signal.SIGKILL)
        cluster.roles.start("worker-2", "worker")
        took = await settle(cluster, [job.id], killed, limit=60)
        done = await cluster.client.get(job.id)
    print(f"\nworker SIGKILL mid-job (300 s job timeout): succeeded {took:.1f} s after the kill")
    assert done.status == "succeeded"
    assert done.attempts == 2  # the killed attempt counts
    assert took < 30


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("attempt", "within"),
    [("first", 15), ("retry", 25)],
    ids=["first attempt (inline lease)", "retry (arq's marker as a lease)"],
)
async def test_a_webhook_whose_dispatcher_is_killed_mid_attempt_is_sent_again_soon(
    tmp_path: Path, attempt: str, within: float
) -> None:
    """A first attempt goes out inline under a lease the dispatcher renews (10 s); a retry
    is an arq job whose marker is a lease the dispatcher renews (15 s). Killed while the
    receiver holds the request, the lease lapses and another dispatcher sends it again,
    not after the attempt's timeout."""
    started, answered = asyncio.Event(), asyncio.Event()
    arrivals: list[float] = []
    held = 1 if attempt == "first" else 2  # the arrival that is held

    async def hook(request: web.Request) -> web.Response:
        verify(SECRET, request.headers, await request.read())
        arrivals.append(time.monotonic())
        if len(arrivals) < held:
            return web.Response(status=503)  # the first attempt fails: a retry follows
        if len(arrivals) == held:
            started.set()
            await asyncio.sleep(60)  # held until the sender is gone
        answered.set()
        return web.Response(status=204)

    runner, receiver_port = await serve_hook(hook, cancel_on_disconnect=True)
    try:
        async with on_test_topology(Cluster(tmp_path)) as cluster:
            job = await cluster.client.submit(
                "demo.echo", {"value": 1}, callback_url=f"http://127.0.0.1:{receiver_port}/hook"
            )
            await asyncio.wait_for(started.wait(), 20)
            await cluster.roles.signal("dispatcher", signal.SIGKILL)
            killed = time.monotonic()
            cluster.roles.start("dispatcher-2", "dispatcher")
            await asyncio.wait_for(answered.wait(), 60)
            took = time.monotonic() - killed

            async def recorded() -> bool:
                deliveries = await cluster.client.deliveries(job.id)
                return [d.status for d in deliveries] == ["succeeded"]

            await wait_until(recorded, timeout=10)
    finally:
        await runner.cleanup()
    print(f"\ndispatcher SIGKILL mid-{attempt}: webhook sent again {took:.1f} s after the kill")
    assert len(arrivals) == held + 1
    assert took < within


@one_server
@pytest.mark.timeout(180)
async def test_redis_restarted_while_60_jobs_run(tmp_path: Path) -> None:
    async with Cluster(tmp_path, ACCEPTD_WORKER_CONCURRENCY="64") as cluster:
        job_ids = await submit_many(cluster, 60, delay_ms=3000)

        async def most_running() -> bool:
            return await running_count(cluster, job_ids) >= 50

        await wait_until(most_running, timeout=30, interval=0.2)
        cluster.valkey.stop()  # SIGTERM: Valkey fsyncs its AOF
        await asyncio.sleep(1)  # down a second
        cluster.valkey.start()
        answering = time.monotonic()
        took = await settle(cluster, job_ids, answering, limit=60)
        statuses = await cluster.statuses(job_ids)
    print(f"\nRedis restart under 60 running jobs: all terminal, all webhooks in {took:.1f} s")
    assert statuses == {"succeeded": 60}
    assert cluster.receiver.forged == 0


@one_server
@pytest.mark.timeout(180)
async def test_redis_out_of_memory_refuses_submits_and_strands_nothing(tmp_path: Path) -> None:
    async with Cluster(tmp_path) as cluster:
        job_ids = await submit_many(cluster, 20, delay_ms=1500)

        async def some_running() -> bool:
            return await running_count(cluster, job_ids) >= 10

        await wait_until(some_running, timeout=30, interval=0.1)
        async with out_of_memory(cluster.valkey.url):
            status, headers, problem = await raw_submit(cluster)
            assert status == 503
            assert headers["Content-Type"] == "application/problem+json"
            assert int(headers["Retry-After"]) >= 1
            assert "out of memory" in problem["detail"]
            await asyncio.sleep(3)  # the running jobs finish meanwhile: their verdicts wait
        freed = time.monotonic()
        took = await settle(cluster, job_ids, freed, limit=60)
        assert (await raw_submit(cluster))[0] == 202
        statuses = await cluster.statuses(job_ids)
    print(f"\nRedis at maxmemory: 503 while full; all 20 jobs and webhooks {took:.1f} s after")
    assert statuses == {"succeeded": 20}


@one_server
@pytest.mark.timeout(180)
async def test_redis_read_only_after_a_failover_refuses_submits_and_strands_nothing(
    tmp_path: Path,
) -> None:
    async with Cluster(tmp_path) as cluster:
        replica = EmbeddedValkey(tmp_path / "replica", persistent=False)
        replica.start()
        try:
            await replicate(replica, cluster.valkey)
            job_ids = await submit_many(cluster, 20, delay_ms=1500)

            async def some_running() -> bool:
                return await running_count(cluster, job_ids) >= 10

            await wait_until(some_running, timeout=30, interval=0.1)
            # Our Valkey turns replica and answers READONLY to every write the roles send.
            async with read_only(cluster.valkey, replica):
                status, headers, problem = await raw_submit(cluster)
                assert status == 503
                assert "Retry-After" in headers
                assert "read-only" in problem["detail"]
                await asyncio.sleep(3)  # the running jobs finish meanwhile
            back = time.monotonic()
            took = await settle(cluster, job_ids, back, limit=60)
            statuses = await cluster.statuses(job_ids)
        finally:
            replica.stop()
    print(f"\nRedis read-only for a failover: all 20 jobs and webhooks {took:.1f} s after")
    assert statuses == {"succeeded": 20}

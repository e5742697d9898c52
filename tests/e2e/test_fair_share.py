"""Fair share between tenants, with real processes (API.md, "Fair share between tenants";
store/fairshare.py): a tenant's backlog delays its own jobs only, weights share the
workers in proportion, a running cap and a concurrency key are never exceeded, across
workers and through a worker's SIGKILL.

Overlap is read from the jobs' own records: a job holds its slot from its pickup until its
run ended for good, so its `started_at`..`finished_at` covers every moment it counted
against a limit (a killed attempt included)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest

from acceptd.client import Client
from acceptd.core.clock import parse_rfc3339
from tests.support.cli import cli_json
from tests.support.cluster import Cluster, on_test_topology
from tests.support.waiting import wait_until


async def acceptd(cluster: Cluster, *args: str) -> Any:
    """`acceptd ARGS --json` against the cluster's store, as an operator runs it."""
    return await cli_json(*args, env=cluster.roles.env, within=60)


async def tenant_client(cluster: Cluster, name: str) -> Client:
    made = await acceptd(cluster, "tenants", "create", name)
    return Client(cluster.api_url, made["api_key"], max_retries=8, backoff_cap=2)


def most_at_once(jobs: list[Any]) -> int:
    """The most of these jobs whose started_at..finished_at overlap at one moment."""
    edges: list[tuple[float, int]] = []
    for job in jobs:
        edges += [(parse_rfc3339(job.started_at), 1), (parse_rfc3339(job.finished_at), -1)]
    most = running = 0
    for _, step in sorted(edges):  # an end sorts before a start at the same instant
        running += step
        most = max(most, running)
    return most


async def finished(client: Client, job_ids: list[str], within: float) -> list[Any]:
    async def done() -> bool:
        for job_id in job_ids:
            if (await client.get(job_id)).status not in ("succeeded", "failed"):
                return False
        return True

    await wait_until(done, timeout=within, interval=0.25)
    return [await client.get(job_id) for job_id in job_ids]


@pytest.mark.timeout(180)
async def test_another_tenants_jobs_run_within_seconds_behind_a_backlog(tmp_path: Path) -> None:
    """Tenant A queues 1,000 jobs of 200 ms (16 slots: about 12 s of work); tenant B's 10
    jobs submitted after it are done within seconds, while A still has hundreds queued."""
    async with on_test_topology(Cluster(tmp_path, ACCEPTD_WORKER_CONCURRENCY="16")) as cluster:
        items = [{"type": "demo.echo", "input": {"value": i, "delay_ms": 200}} for i in range(1000)]
        backlog = await cluster.client.submit_batch(items)
        other = await tenant_client(cluster, "b")
        try:
            submitted = asyncio.get_running_loop().time()
            jobs = [await other.submit("demo.echo", {"value": i}) for i in range(10)]
            done = await finished(other, [job.id for job in jobs], within=30)
            took = asyncio.get_running_loop().time() - submitted
            a_left = (await cluster.client.get_batch(backlog.id)).counts.queued
        finally:
            await other.close()
    waits = sorted(parse_rfc3339(j.started_at) - parse_rfc3339(j.created_at) for j in done)
    print(
        f"\nB's 10 jobs done {took:.2f} s after submit (queue wait max {waits[-1]:.0f} ms); "
        f"A still had {a_left} queued"
    )
    assert all(job.status == "succeeded" for job in done)
    assert took < 5
    assert a_left >= 300


@pytest.mark.timeout(180)
async def test_a_tenant_capped_at_two_never_runs_three(tmp_path: Path) -> None:
    async with on_test_topology(Cluster(tmp_path, ACCEPTD_WORKER_CONCURRENCY="8")) as cluster:
        cluster.roles.start("worker-2", "worker")
        limits = await acceptd(cluster, "tenants", "limits", "default", "--max-running", "2")
        assert limits["max_running"] == 2
        jobs = [
            await cluster.client.submit("demo.echo", {"value": i, "delay_ms": 300})
            for i in range(12)
        ]
        done = await finished(cluster.client, [job.id for job in jobs], within=60)
        shown = await acceptd(cluster, "tenants", "limits", "default", "--max-running", "none")
    assert all(job.status == "succeeded" for job in done)
    assert most_at_once(done) == 2
    assert shown["max_running"] is None


@pytest.mark.timeout(180)
async def test_a_concurrency_key_limited_to_one_never_overlaps_through_a_sigkill(
    tmp_path: Path,
) -> None:
    """Two workers take jobs of one key (limit 1); while one runs, both are killed and
    another starts. The killed run's job keeps the key's slot until a worker runs it
    again (one lease later): no job of the key starts meanwhile, and none is lost."""
    async with on_test_topology(
        Cluster(tmp_path, ACCEPTD_JOB_LEASE_SECONDS="3", ACCEPTD_WORKER_CONCURRENCY="4")
    ) as cluster:
        cluster.roles.start("worker-2", "worker")
        jobs = [
            await cluster.client.submit(
                "demo.echo", {"value": i, "delay_ms": 400}, concurrency_key="customer-7"
            )
            for i in range(8)
        ]
        free = await cluster.client.submit("demo.echo", {"value": -1})  # no key: not held back

        async def one_running() -> bool:
            statuses = [(await cluster.client.get(job.id)).status for job in jobs]
            return "running" in statuses

        await wait_until(one_running, timeout=20, interval=0.05)
        # Both: whichever ran it dies holding the key's slot.
        await cluster.roles.signal("worker", signal.SIGKILL)
        await cluster.roles.signal("worker-2", signal.SIGKILL)
        cluster.roles.start("worker-3", "worker")
        done = await finished(cluster.client, [job.id for job in jobs], within=90)
        unkeyed = await cluster.client.get(free.id)
    assert all(job.status == "succeeded" for job in done)
    assert most_at_once(done) == 1
    assert sum(job.attempts for job in done) == len(jobs) + 1  # the killed run's, again
    assert unkeyed.status == "succeeded"
    assert done[0].concurrency_key == "customer-7"
    assert done[0].concurrency_limit == 1


@pytest.mark.timeout(240)
async def test_weights_three_to_one_share_the_workers_three_to_one(tmp_path: Path) -> None:
    async with on_test_topology(Cluster(tmp_path, ACCEPTD_WORKER_CONCURRENCY="8")) as cluster:
        other = await tenant_client(cluster, "light")
        try:
            await acceptd(cluster, "tenants", "limits", "default", "--weight", "3")
            items = [
                {"type": "demo.echo", "input": {"value": i, "delay_ms": 50}} for i in range(400)
            ]
            heavy, light = await asyncio.gather(
                cluster.client.submit_batch(items), other.submit_batch(items)
            )

            async def counts() -> tuple[int, int]:
                a = await cluster.client.get_batch(heavy.id)
                b = await other.get_batch(light.id)
                return a.counts.succeeded, b.counts.succeeded

            async def under_way() -> bool:
                return sum(await counts()) >= 320

            await wait_until(under_way, timeout=120, interval=0.2)
            a_done, b_done = await counts()
        finally:
            await other.close()
    print(f"\nweights 3:1 under contention: {a_done} : {b_done} ({a_done / max(1, b_done):.2f})")
    assert a_done < 400  # both still had a backlog: the ratio is the share under contention
    assert 2.2 <= a_done / b_done <= 4.0

"""Recurring schedules with real processes (issue #27; API.md, "Recurring schedules"): the
API, two workers and the dispatcher as subprocesses on the test topology's store. Each tick
makes exactly one job, whatever the number of workers, and through a worker's SIGKILL in
the middle of a burst of ticks; pause, resume, trigger and overlap skip.

A tick is made due now by moving the schedule's next tick in its record and due index
(tests/support/schedules.py: what a tick looks like to the workers when it comes), except in
the first test, which waits for a real minute to turn."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.exceptions import RedisError

from acceptd.core.clock import now_ms
from acceptd.core.settings import Settings
from acceptd.store import keys
from acceptd.store.bootstrap import BOOTSTRAP_TENANT
from acceptd.store.connection import open_shards
from acceptd.store.shards import Shards
from tests.support import topologies
from tests.support.cluster import Cluster, on_test_topology
from tests.support.constants import API_KEY, TEST_SHARDS, TEST_TOPOLOGY
from tests.support.schedules import make_due
from tests.support.waiting import wait_until

AUTH = {"Authorization": f"Bearer {API_KEY}"}


class Api:
    """Plain HTTP against the cluster's API: the wire as any client sees it."""

    def __init__(self, cluster: Cluster, session: aiohttp.ClientSession) -> None:
        self.base = cluster.api_url
        self.session = session

    async def call(self, method: str, path: str, expect: int, **body: Any) -> Any:
        async with self.session.request(
            method, self.base + path, json=body or None, headers=AUTH
        ) as response:
            text = await response.text()
            assert response.status == expect, (method, path, response.status, text)
            return await response.json() if text else None

    async def create(self, **body: Any) -> dict[str, Any]:
        found: dict[str, Any] = await self.call("POST", "/v1/schedules", 201, **body)
        return found

    async def jobs_of(self, schedule_id: str) -> list[dict[str, Any]]:
        page = await self.call("GET", f"/v1/jobs?schedule={schedule_id}&limit=100", 200)
        return list(page["items"])


@asynccontextmanager
async def two_workers(tmp_path: Path) -> AsyncIterator[tuple[Cluster, Api, Shards]]:
    async with on_test_topology(Cluster(tmp_path)) as cluster:
        cluster.roles.start("worker2", "worker")
        shards = await open_shards(Settings(redis_url=cluster.store.url, shards=TEST_SHARDS))
        try:
            async with aiohttp.ClientSession() as session:
                yield cluster, Api(cluster, session), shards
        finally:
            await shards.aclose()


def echo(callback: str | None = None, delay_ms: int = 0) -> dict[str, Any]:
    job: dict[str, Any] = {"type": "demo.echo", "input": {"value": "tick", "delay_ms": delay_ms}}
    if callback:
        job["callback_url"] = callback
    return job


@pytest.mark.timeout(150)
async def test_each_minute_makes_one_job_with_two_workers(tmp_path: Path) -> None:
    """A real tick: `* * * * *` with two workers, through the turn of a minute; its job
    runs and its webhook arrives, signed."""
    async with two_workers(tmp_path) as (cluster, api, _):
        schedule = await api.create(cron="* * * * *", job=echo(cluster.receiver.url()))

        async def ticked() -> list[dict[str, Any]]:
            return await api.jobs_of(schedule["id"])

        jobs = await wait_until(ticked, timeout=75, interval=0.5)
        await asyncio.sleep(2)  # room for a second job, were a second worker to make one
        jobs = await api.jobs_of(schedule["id"])
        assert len(jobs) == 1, jobs
        assert jobs[0]["schedule_id"] == schedule["id"]
        assert jobs[0]["created_at"][:16] == schedule["next_run_at"][:16]  # that minute's
        await wait_until(lambda: cluster.all_terminal([jobs[0]["id"]]), timeout=20)

        async def webhook_arrived() -> bool:
            return not cluster.missing_webhooks([jobs[0]["id"]])

        await wait_until(webhook_arrived, timeout=20)
        after = await api.call("GET", f"/v1/schedules/{schedule['id']}", 200)
        assert after["last_job_id"] == jobs[0]["id"]
        assert after["next_run_at"] > schedule["next_run_at"]


async def jobs_made(shards: Shards) -> int:
    """The bootstrap tenant's jobs, counted in every shard's index (a few commands)."""
    counts = [
        await shards.of(shard).zcard(keys.tenant_jobs(BOOTSTRAP_TENANT, shard))
        for shard in range(shards.count)
    ]
    return sum(counts)


@pytest.mark.timeout(240)
async def test_a_worker_killed_in_a_burst_of_ticks_still_gives_one_job_each(
    tmp_path: Path,
) -> None:
    """1,000 schedules fall due at once; one of the two workers is SIGKILLed once the first
    of their jobs exist, while the rest are being written. Every tick still makes exactly
    one job: those the dead worker had claimed but not written are taken by the other once
    their claim lapses (store/schedules.py CLAIM_LEASE_MS)."""
    async with two_workers(tmp_path) as (cluster, api, shards):
        schedules = await due_at_once(api, shards, 1000)
        await wait_until(lambda: jobs_made(shards), timeout=10, interval=0.002)
        await cluster.roles.signal("worker", signal.SIGKILL)
        made_before_the_kill = await jobs_made(shards)
        killed = asyncio.get_running_loop().time()
        took = await each_tick_once(api, shards, schedules, killed, within=60)
        print(
            f"\n{made_before_the_kill} of {len(schedules)} ticks written at the kill; "
            f"all {took:.1f} s after it"
        )
        # And the survivor runs them.
        job_ids = [(await api.jobs_of(s))[0]["id"] for s in schedules[:20]]
        await wait_until(lambda: cluster.all_terminal(job_ids), timeout=60, interval=0.5)


async def make_many(api: Api, count: int) -> list[str]:
    schedules: list[str] = []
    for _ in range(count // 100):
        made = await asyncio.gather(*(api.create(cron="0 0 1 1 *", job=echo()) for _ in range(100)))
        schedules += [s["id"] for s in made]
    return schedules


async def one_job_each(api: Api, schedules: list[str]) -> None:
    counts = Counter({s: len(await api.jobs_of(s)) for s in schedules})
    assert set(counts.values()) == {1}, {s: n for s, n in counts.items() if n != 1}


async def due_at_once(api: Api, shards: Shards, count: int) -> list[str]:
    """`count` schedules, every one's tick due at the same instant now."""
    schedules = await make_many(api, count)
    tick = now_ms()
    await asyncio.gather(*(make_due(shards, s, tick) for s in schedules))
    return schedules


async def each_tick_once(
    api: Api, shards: Shards, schedules: list[str], since: float, within: float
) -> float:
    """Waits until every tick has its job (reading through a restart or a failover's slot
    map refresh), then holds that each has exactly one, a second later too. Returns the
    seconds from `since` (the loop's clock) to the last job."""

    async def every_tick_made() -> bool:
        try:
            return await jobs_made(shards) >= len(schedules)
        except RedisError:  # the server restarting, or the slot map being refreshed
            return False

    await wait_until(every_tick_made, timeout=within, interval=0.2)
    took = asyncio.get_running_loop().time() - since
    await asyncio.sleep(1)  # a late second job would show now
    await one_job_each(api, schedules)
    assert await jobs_made(shards) == len(schedules)
    return took


@pytest.mark.skipif(TEST_TOPOLOGY == "cluster", reason="a crash of one Valkey")
@pytest.mark.timeout(240)
async def test_a_redis_crash_in_a_burst_of_ticks_still_gives_one_job_each(
    tmp_path: Path,
) -> None:
    """Valkey is SIGKILLed while 1,000 ticks are being written, and started again: what it
    had not fsynced of them is lost, each tick's job with its claim (one script), so those
    ticks are due again and made once more. Every tick ends with exactly one job."""
    async with two_workers(tmp_path) as (cluster, api, shards):
        schedules = await due_at_once(api, shards, 1000)
        # The ticks are due, durably: the crash below is the only thing that loses writes.
        async with shards.of(0).pipeline(transaction=False) as pipe:
            pipe.incr(keys.durability_mark(0))  # after them all in the one AOF: fsynced last
            pipe.waitaof(1, 0, 5000)
            (_, (fsynced, _)) = await pipe.execute()
        assert fsynced == 1
        await wait_until(lambda: jobs_made(shards), timeout=10, interval=0.002)
        made_at_the_crash = await jobs_made(shards)
        cluster.valkey.kill()  # SIGKILL: no fsync of what came since the last one
        await asyncio.sleep(0.5)  # down a moment, as after a crash
        cluster.valkey.start()
        started_again = asyncio.get_running_loop().time()
        took = await each_tick_once(api, shards, schedules, started_again, within=90)
        print(
            f"\n{made_at_the_crash} of {len(schedules)} ticks written when Valkey was "
            f"killed; all {took:.1f} s after it came back"
        )


async def replicated(shards: Shards) -> None:
    """Waits until a replica of each shard's primary holds every write made so far."""
    for shard in range(shards.count):
        async with shards.of(shard).pipeline(transaction=False) as pipe:
            pipe.incr(keys.durability_mark(shard))
            pipe.wait(1, 5000)
            (_, replicas) = await pipe.execute()
        assert replicas >= 1


@pytest.mark.skipif(TEST_TOPOLOGY == "cluster", reason="builds a cluster of its own")
@pytest.mark.timeout(300)
async def test_a_primary_killed_in_a_burst_of_ticks_still_gives_one_job_each(
    tmp_path: Path,
) -> None:
    """On a Valkey Cluster (three primaries with a replica each, four shards), the primary
    of a shard holding schedules is SIGKILLed while 1,000 ticks are being written, and its
    replica is promoted: what the replica had not received is lost, each tick's job with
    its claim (one script), so those ticks are made again. The roles follow the failover
    with no restart, and every tick ends with exactly one job."""
    topology = topologies.cluster(tmp_path / "topology")
    cluster = Cluster(tmp_path, ACCEPTD_SHARDS="4")
    cluster.store = topology
    async with cluster:
        cluster.roles.start("worker2", "worker")
        shards = await open_shards(Settings(redis_url=topology.url, shards=4))
        try:
            async with aiohttp.ClientSession() as session:
                api = Api(cluster, session)
                schedules = await due_at_once(api, shards, 1000)
                await replicated(shards)  # due on the replicas too: the kill loses only ticks
                spared = {
                    topology.primary_for_key(keys.TENANTS).node_id,  # the control plane
                    topology.nodes[0].node_id,  # the roles' seed
                }
                victim = next(
                    node
                    for shard in range(4)
                    if (node := topology.primary_for_key(keys.schedules_due(shard))).node_id
                    not in spared
                )
                await wait_until(lambda: jobs_made(shards), timeout=10, interval=0.002)
                topology.kill(victim)
                killed = asyncio.get_running_loop().time()
                await asyncio.to_thread(topology.wait_for_failover, victim, 30)
                took = await each_tick_once(api, shards, schedules, killed, within=120)
                print(f"\nprimary killed in a burst of 1,000 ticks: all made {took:.1f} s after")
        finally:
            await shards.aclose()


@pytest.mark.timeout(150)
async def test_pause_resume_trigger_and_overlap_skip(tmp_path: Path) -> None:
    async with two_workers(tmp_path) as (cluster, api, shards):
        # Long enough that the tick made while it runs cannot come after it ended, however
        # slow the machine.
        slow = await api.create(cron="0 0 1 1 *", overlap="skip", job=echo(delay_ms=6000))
        path = f"/v1/schedules/{slow['id']}"
        await make_due(shards, slow["id"])
        [first] = await wait_until(lambda: api.jobs_of(slow["id"]), timeout=15)

        async def running() -> bool:
            job = await api.jobs_of(slow["id"])
            return bool(job[0]["status"] == "running")

        await wait_until(running, timeout=15)
        await make_due(shards, slow["id"])  # while the first still runs: skipped

        async def skipped() -> bool:
            return bool((await api.call("GET", path, 200))["skipped_ticks"] == 1)

        await wait_until(skipped, timeout=15)
        assert len(await api.jobs_of(slow["id"])) == 1
        await wait_until(lambda: cluster.all_terminal([first["id"]]), timeout=20)
        await make_due(shards, slow["id"])  # the last job ended: this tick runs
        await wait_until(lambda: _count(api, slow["id"], 2), timeout=15)

        # Paused: a tick that comes makes nothing; a trigger runs it all the same.
        paused = await api.call("PATCH", path, 200, paused=True)
        assert paused["next_run_at"] is None
        await make_due(shards, slow["id"])
        await asyncio.sleep(1.5)  # room for the tick's job, which must not be made
        assert len(await api.jobs_of(slow["id"])) == 2
        triggered = await api.call("POST", f"{path}/trigger", 202)
        assert triggered["schedule_id"] == slow["id"]
        await wait_until(lambda: cluster.all_terminal([triggered["id"]]), timeout=20)
        resumed = await api.call("PATCH", path, 200, paused=False)
        assert resumed["next_run_at"] is not None
        assert resumed["last_job_id"] == triggered["id"]
        await make_due(shards, slow["id"])
        await wait_until(lambda: _count(api, slow["id"], 4), timeout=15)
        await api.call("DELETE", path, 204)
        await make_due(shards, slow["id"])  # the index entry of a deleted schedule: dropped
        await asyncio.sleep(1.5)  # room for a job, which must not be made
        assert len(await api.jobs_of(slow["id"])) == 4


async def _count(api: Api, schedule_id: str, expected: int) -> bool:
    return len(await api.jobs_of(schedule_id)) == expected

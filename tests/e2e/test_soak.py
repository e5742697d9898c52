"""The fault suite: jobs with callbacks flow through real processes while everything breaks.

`make test` runs the short form; `make soak` the long one (SOAK_JOBS=3000). Faults, one
after another while jobs are submitted: a worker SIGKILLed mid-job, a dispatcher SIGKILLed
mid-delivery, the receiver away, Redis restarted (AOF), Redis out of memory, Redis read-only
through a failover and back, and a rolling SIGTERM of every role. Job timeouts are the
production default (300 s): recovery must come from leases, not timeouts.

At the end it prints and asserts: jobs accepted = jobs terminal (lost 0, stuck 0), every
owed webhook received (duplicates counted and allowed), every signature valid, every batch
completed with counts that match its items; and per fault, the recovery: seconds from the
fault's end until every job accepted before it had ended and its webhook had arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis as sync_redis

from acceptd.cli.embedded import EmbeddedValkey
from acceptd.client import AcceptdError
from acceptd.core import ids
from tests.support.cluster import TERMINAL, Cluster
from tests.support.redis_faults import out_of_memory, read_only, replicate
from tests.support.waiting import wait_until

JOBS = int(os.environ.get("SOAK_JOBS", "300"))
SUBMIT_SECONDS = float(os.environ.get("SOAK_SECONDS", "14"))
HANG_SHARE = 0.05
BATCH_EVERY = 25  # one batch of BATCH_ITEMS beside every 25th job
BATCH_ITEMS = 10
FAULTS = 7


async def _explain_stuck(cluster: Cluster, job_ids: list[str]) -> str:
    """For a failure message: each unfinished job's record and queue state, and whether
    each role process is still alive."""
    from acceptd.store import keys

    conn = sync_redis.Redis.from_url(cluster.valkey.url, decode_responses=True)
    lines = [f"{name}: exit code {p.poll()}" for name, p in cluster.roles.processes.items()]
    try:
        for job_id in job_ids:
            record: dict[str, str] = conn.hgetall(keys.job(job_id))  # type: ignore[assignment]
            if record.get("status") in TERMINAL:
                continue
            lines.append(
                f"{job_id}: {record.get('status')} attempts={record.get('attempts')} "
                f"queued={conn.zscore(keys.job_queue(ids.shard_of(job_id)), job_id)} "
                f"arq_job={conn.exists(keys.arq_job(job_id))} "
                f"lease_ttl={conn.pttl(keys.arq_in_progress(job_id))}"
            )
    finally:
        conn.close()
    return "\n".join([*lines, cluster.roles.log_tail("worker", 20)])


def _p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(len(values) * 0.99))]


class Faults:
    """Each fault, and when it ended (monotonic), for the recovery figures."""

    def __init__(self, cluster: Cluster, replica: EmbeddedValkey) -> None:
        self.cluster = cluster
        self.replica = replica
        self.ended: dict[str, float] = {}
        self.drained: dict[str, float] = {}

    async def _timed(self, name: str, fault: Callable[[], Awaitable[None]]) -> None:
        await fault()
        self.ended[name] = time.monotonic()

    async def worker_killed(self) -> None:
        await self.cluster.roles.signal("worker", signal.SIGKILL)
        self.cluster.roles.start("worker", "worker")

    async def dispatcher_killed(self) -> None:
        await self.cluster.roles.signal("dispatcher", signal.SIGKILL)
        self.cluster.roles.start("dispatcher", "dispatcher")

    async def receiver_away(self, seconds: float) -> None:
        await self.cluster.receiver.down()
        await asyncio.sleep(seconds)
        await self.cluster.receiver.up()

    async def redis_restarted(self) -> None:
        self.cluster.valkey.stop()  # SIGTERM: Valkey fsyncs its AOF
        await asyncio.sleep(1)  # down a second
        self.cluster.valkey.start()

    async def redis_out_of_memory(self, seconds: float) -> None:
        async with out_of_memory(self.cluster.valkey.url):
            await asyncio.sleep(seconds)

    async def redis_read_only(self, seconds: float) -> None:
        await replicate(self.replica, self.cluster.valkey)
        async with read_only(self.cluster.valkey, self.replica):
            await asyncio.sleep(seconds)

    async def rolling_sigterm(self) -> None:
        for name in ("api", "worker", "dispatcher"):
            self.drained[name] = await self.cluster.roles.signal(name, signal.SIGTERM)
            self.cluster.roles.start(name, name)

    async def run(self, step: float) -> None:
        plan: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("worker SIGKILL", self.worker_killed),
            ("dispatcher SIGKILL", self.dispatcher_killed),
            ("receiver away", lambda: self.receiver_away(step)),
            ("Redis restart", self.redis_restarted),
            ("Redis out of memory", lambda: self.redis_out_of_memory(step)),
            ("Redis read-only", lambda: self.redis_read_only(step)),
            ("rolling SIGTERM", self.rolling_sigterm),
        ]
        assert len(plan) == FAULTS
        for name, fault in plan:
            await asyncio.sleep(step)  # the faults spread over the load
            await self._timed(name, fault)


@pytest.mark.timeout(300 if JOBS <= 300 else 1800)
async def test_nothing_is_lost_while_everything_breaks(tmp_path: Path) -> None:
    replica = EmbeddedValkey(tmp_path / "replica", persistent=False)
    replica.start()
    accepted: dict[str, float] = {}  # job id -> when the 202 came back
    batches: dict[str, float] = {}
    refused = 0
    async with Cluster(tmp_path, ACCEPTD_WORKER_CONCURRENCY="32") as cluster:
        client, receiver = cluster.client, cluster.receiver
        receiver.hang_remaining = 5
        faults = Faults(cluster, replica)

        async def submit(index: int) -> None:
            nonlocal refused
            path = "/hang" if random.random() < HANG_SHARE else "/ok"
            try:
                job = await client.submit(
                    "demo.echo",
                    {"value": index, "delay_ms": random.randint(0, 400)},
                    callback_url=receiver.url(path),
                )
                accepted[job.id] = time.monotonic()
            except AcceptdError:
                refused += 1  # never acknowledged: not owed anything

        async def submit_batch(index: int) -> None:
            nonlocal refused
            items = [
                {
                    "type": "demo.echo",
                    "input": {"value": f"{index}.{i}", "delay_ms": random.randint(0, 400)},
                }
                for i in range(BATCH_ITEMS)
            ]
            try:
                batch = await client.submit_batch(items, callback_url=receiver.url())
                batches[batch.id] = time.monotonic()
            except AcceptdError:
                refused += 1

        async def load() -> None:
            tasks = []
            for index in range(JOBS):
                tasks.append(asyncio.create_task(submit(index)))
                if index % BATCH_EVERY == 0:
                    tasks.append(asyncio.create_task(submit_batch(index)))
                await asyncio.sleep(SUBMIT_SECONDS / JOBS)  # the load's pace
            await asyncio.gather(*tasks)

        started = time.monotonic()
        await asyncio.gather(load(), faults.run(SUBMIT_SECONDS / (FAULTS + 1)))
        owed = {**accepted, **batches}

        async def settled() -> bool:
            return set(receiver.by_subject) >= set(owed)

        with_timeout = 150 if JOBS <= 300 else 900
        with contextlib.suppress(AssertionError):  # reported below as missing webhooks
            await wait_until(settled, timeout=with_timeout, interval=1)
        statuses = await cluster.statuses(list(accepted))
        terminal = sum(statuses[s] for s in TERMINAL)
        stuck = await _explain_stuck(cluster, list(accepted)) if terminal < len(accepted) else ""
        # Counts kept by the status scripts through every crash must match the items.
        batch_mismatches = []
        for batch_id in batches:
            batch = await client.get_batch(batch_id)
            items = Counter(
                [j.status async for j in client.iter_jobs(batch=batch_id, page_size=100)]
            )
            counted = {status: n for status, n in batch.counts.model_dump().items() if n}
            if batch.status != "completed" or counted != dict(items):
                batch_mismatches.append((batch_id, batch.status, counted, dict(items)))
        elapsed = time.monotonic() - started
    replica.stop()

    missing = set(owed) - set(receiver.by_subject)

    def recovered(ended: float) -> float:
        """How long after a fault ended the last webhook owed by then arrived (0: none late)."""
        owed_then = [s for s, at in owed.items() if at <= ended and s in receiver.arrived_at]
        return max([0.0, *(receiver.arrived_at[s] - ended for s in owed_then)])

    recovery = {name: recovered(ended) for name, ended in faults.ended.items()}
    times = sorted(recovery.values())
    # Each job, from its 202 to its webhook: what a user waited, faults included.
    waits = sorted(
        receiver.arrived_at[s] - at for s, at in owed.items() if s in receiver.arrived_at
    )
    print(
        f"\nsoak: {JOBS} submitted, {len(accepted)} accepted, {len(batches)} batches of "
        f"{BATCH_ITEMS}, {refused} refused; lost {len(accepted) - terminal}, "
        f"stuck {len(accepted) - terminal}; webhooks: {len(missing)} missing, "
        f"{receiver.duplicates} duplicates, {receiver.forged} forged; {elapsed:.0f} s\n"
        f"recovery after each fault (s): "
        + ", ".join(f"{name} {seconds:.1f}" for name, seconds in recovery.items())
        + f"\n(each an upper bound: the faults follow each other every few seconds)"
        f"\nrecovery p50 {statistics.median(times):.1f} s, p99 {_p99(times):.1f} s; "
        f"202 to webhook per job: p50 {statistics.median(waits):.1f} s, "
        f"p99 {_p99(waits):.1f} s, max {waits[-1]:.1f} s; "
        f"SIGTERM to exit: {', '.join(f'{k} {v:.1f} s' for k, v in faults.drained.items())}"
    )
    assert terminal == len(accepted), f"{statuses}\n{stuck}"
    assert batch_mismatches == []
    assert not missing
    assert receiver.forged == 0
    assert len(accepted) >= JOBS * 0.9  # the client's retries carried submissions through
    # Each role drains within its grace (3 s) plus the slowest in-flight step (2 s webhooks).
    assert all(seconds < 15 for seconds in faults.drained.values()), faults.drained
    assert max(times) < 60, recovery

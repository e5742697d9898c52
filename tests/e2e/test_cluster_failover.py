"""The three roles on a Valkey Cluster (three primaries, ACCEPTD_SHARDS=16), as separate
processes: under a steady stream of submissions with a callback, a primary holding a third of
the shards is SIGKILLed, one of its replicas is promoted, and every role follows it with no
restart. With ACCEPTD_DURABILITY=replica no acknowledged job is lost: each ends, its webhook
arrives verified (duplicates counted, and allowed), and no request is answered 500.

Two replicas per primary, not one: after the failover the promoted replica must itself have a
replica for `WAIT 1` to confirm anything, and with one replica per primary it has none until
the dead primary comes back (every submit on its shards is a 503 till then, by design)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from acceptd.api.idempotency import IDEMPOTENCY_LOCK_SECONDS
from acceptd.cli.topologies import ClusterNode, EmbeddedCluster
from acceptd.core import ids
from acceptd.queue.wakeable import MAX_BACKOFF_SECONDS
from acceptd.store import keys
from acceptd.store.placement import job_shard
from tests.support import topologies
from tests.support.cluster import Cluster, VerifyingReceiver, listening_port
from tests.support.constants import API_KEY
from tests.support.waiting import wait_until

SHARDS = 16
REPLICAS_PER_PRIMARY = 2
NODES = 3 * (1 + REPLICAS_PER_PRIMARY)
SUBMITTERS = 8
# Between one client's acknowledged job and its next: ~40 jobs/s from all of them, so that a
# few hundred are submitted over the test and a dozen or two run at any time.
PAUSE_SECONDS = 0.15
JOB_DELAY_MS = 400
BEFORE_KILL = 120  # acknowledged jobs before the primary dies
AFTER_FAILOVER_ON_VICTIM = 60  # acknowledged after the promotion, on the dead primary's shards
# A request the failover cuts off between claiming its Idempotency-Key and creating the job
# leaves the claim ('in progress') on the promoted replica, and nothing can release it on the
# dead primary: retries under that key are answered 409 idempotency-in-progress until the
# claim lapses, IDEMPOTENCY_LOCK_SECONDS later. A client (the SDK too) retries those; the test
# counts the keys and the time they were held, and waits the lock out rather than give up.
HELD_KEY_SECONDS = IDEMPOTENCY_LOCK_SECONDS + 5
SUBMIT_DEADLINE_SECONDS = HELD_KEY_SECONDS + 10
# The bounds of "recovered without restart". A worker or dispatcher backs off while Redis is
# away (up to MAX_BACKOFF_SECONDS between polls), and its first poll after the promotion may
# still fail once (a new connection to the dead node is not retried once the slot map has
# found the promoted one): two backoffs, then the job and its delivery.
API_RECOVERY_SECONDS = 15.0  # from the promotion until the last 503
WEBHOOK_AFTER_ACK_SECONDS = 2 * MAX_BACKOFF_SECONDS + 5  # from a 202 after the promotion
SETTLE_SECONDS = 30.0  # from the kill until the webhook of every job acknowledged before it

NO_ANSWER = 0  # in the answer counts: the connection failed or timed out
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=20)


@dataclass
class Submission:
    """One job as a client sees it: every answer (when, status) to its POSTs, all under one
    Idempotency-Key, until one is a 202."""

    index: int
    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    answers: list[tuple[float, int]] = field(default_factory=list)
    job_id: str | None = None
    acknowledged_at: float = 0.0


async def post(
    session: aiohttp.ClientSession, cluster: Cluster, submission: Submission
) -> tuple[int, float, str | None]:
    """One POST of the submission's job, without retries: (status, seconds to wait before a
    retry, the job's id on a 202)."""
    body = {
        "type": "demo.echo",
        "input": {"value": submission.index, "delay_ms": JOB_DELAY_MS},
        "callback_url": cluster.receiver.url(),
    }
    headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": submission.key}
    try:
        async with session.post(f"{cluster.api_url}/v1/jobs", json=body, headers=headers) as answer:
            job = await answer.json(content_type=None)
            if answer.status in (503, 409) and "Retry-After" not in answer.headers:
                return -answer.status, 0, None  # an outage answered without Retry-After
            retry_after = float(answer.headers.get("Retry-After", "0"))
            return answer.status, retry_after, job["id"] if answer.status == 202 else None
    except (aiohttp.ClientError, TimeoutError):
        return NO_ANSWER, 0.5, None


async def submit(session: aiohttp.ClientSession, cluster: Cluster, submission: Submission) -> None:
    """Posts the submission until it is acknowledged, as the contract's client does: under
    its one Idempotency-Key, after the Retry-After of a 503 or of a 409
    idempotency-in-progress, and soon after a connection that failed; for at most
    SUBMIT_DEADLINE_SECONDS. Records every answer."""
    deadline = time.monotonic() + SUBMIT_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        status, retry_after, job_id = await post(session, cluster, submission)
        submission.answers.append((time.monotonic(), status))
        if job_id is not None:
            submission.job_id, submission.acknowledged_at = job_id, time.monotonic()
            return
        if status not in (503, 409, NO_ANSWER):
            return  # not retried: the assertion on the answers reports it
        await asyncio.sleep(retry_after)  # as the answer asks


def answers_of(submissions: list[Submission]) -> Counter[int]:
    return Counter(status for s in submissions for _, status in s.answers)


class Load:
    """SUBMITTERS clients, each submitting one job after another (`submit`)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.submissions: list[Submission] = []
        self.stopping = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=CLIENT_TIMEOUT)
        self._tasks = [asyncio.create_task(self._client(self._session)) for _ in range(SUBMITTERS)]

    async def stop(self) -> None:
        """Lets each client finish the job it is on (bounded by SUBMIT_DEADLINE_SECONDS)."""
        self.stopping.set()
        try:
            await asyncio.wait_for(asyncio.gather(*self._tasks), SUBMIT_DEADLINE_SECONDS + 25)
        finally:
            for task in self._tasks:
                task.cancel()
            if self._session is not None:
                await self._session.close()

    @property
    def acknowledged(self) -> list[Submission]:
        return [s for s in self.submissions if s.job_id is not None]

    async def _client(self, session: aiohttp.ClientSession) -> None:
        while not self.stopping.is_set():
            submission = Submission(len(self.submissions))
            self.submissions.append(submission)
            await submit(session, self.cluster, submission)
            await asyncio.sleep(PAUSE_SECONDS)


async def delivered(
    cluster: Cluster,
    job_ids: list[str],
    timeout: float,  # noqa: ASYNC109 - a deadline for polling, not a cancel scope
    victim_shards: set[int],
) -> None:
    """Waits until every job's webhook has arrived; fails naming the missing, the roles'
    exit codes (None: running) and their last log lines."""

    async def all_arrived() -> bool:
        return not cluster.missing_webhooks(job_ids)

    try:
        await wait_until(all_arrived, timeout=timeout, interval=0.25)
    except AssertionError as exc:
        missing = sorted(cluster.missing_webhooks(job_ids))
        exits = {name: process.poll() for name, process in cluster.roles.processes.items()}
        logs = "\n".join(
            f"--- {name}\n{cluster.roles.log_tail(name, 20)}" for name in cluster.roles.processes
        )
        raise AssertionError(
            f"{exc}: {len(missing)} of {len(job_ids)} webhooks missing, e.g. {missing[:5]} "
            f"(shards {sorted({ids.shard_of(m) for m in missing})}, the dead primary's "
            f"{sorted(victim_shards)}); roles' exit codes {exits}\n{logs}"
        ) from exc


def _build(tmp_path: Path, **env: str) -> tuple[EmbeddedCluster, Cluster]:
    """The topology (not started) and the roles on it, ACCEPTD_DURABILITY=replica. Every
    port a server binds later is picked below the ephemeral range: with nine nodes talking
    to each other and three roles holding a client per shard, one picked by free_port() is
    soon the local port of some connection, and the server cannot bind it."""
    ports: list[int] = []
    while len(ports) < 2 * NODES + 2:
        if (port := listening_port()) not in ports:
            ports.append(port)
    pairs = list(zip(ports[: 2 * NODES : 2], ports[1 : 2 * NODES : 2], strict=True))
    topology = topologies.cluster(
        tmp_path / "topology", replicas_per_primary=REPLICAS_PER_PRIMARY, ports=pairs
    )
    cluster = Cluster(tmp_path, ACCEPTD_SHARDS=str(SHARDS), ACCEPTD_DURABILITY="replica", **env)
    cluster.store = topology
    cluster.api_port, cluster.receiver = ports[-2], VerifyingReceiver(ports[-1])
    return topology, cluster


def _shards_on(topology: EmbeddedCluster, node: ClusterNode) -> set[int]:
    return {
        shard
        for shard in range(SHARDS)
        if topology.primary_for_key(keys.job_queue(shard)).node_id == node.node_id
    }


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    "victim_key",
    [keys.job_queue(0), keys.TENANTS],
    ids=["seed-node", "control-plane-node"],
)
async def test_the_roles_follow_a_cluster_failover_and_lose_no_acknowledged_job(
    tmp_path: Path, victim_key: str
) -> None:
    """`victim_key`: a key of the primary to kill. Shard 0's is the URL's own node (the
    roles' seed); the control plane's holds tenants, API keys and the pub/sub of wake-ups."""
    topology, cluster = _build(tmp_path, ACCEPTD_WORKER_CONCURRENCY="32")
    async with cluster:
        victim = topology.primary_for_key(victim_key)
        victim_shards = _shards_on(topology, victim)
        load = Load(cluster)
        load.start()
        try:

            async def under_way() -> bool:
                return len(load.acknowledged) >= BEFORE_KILL

            await wait_until(under_way, timeout=30, interval=0.1)
            topology.kill(victim)
            killed = time.monotonic()
            promoted = await asyncio.to_thread(topology.wait_for_failover, victim, 30)
            promoted_at = time.monotonic()

            def on_victim_after_promotion() -> list[Submission]:
                return [
                    s
                    for s in load.acknowledged
                    if s.acknowledged_at > promoted_at
                    and s.job_id is not None
                    and ids.shard_of(s.job_id) in victim_shards
                ]

            async def victim_shards_serve_again() -> bool:
                return len(on_victim_after_promotion()) >= AFTER_FAILOVER_ON_VICTIM

            await wait_until(victim_shards_serve_again, timeout=API_RECOVERY_SECONDS + 20)
        finally:
            await load.stop()
        acknowledged = load.acknowledged
        job_ids = [s.job_id for s in acknowledged if s.job_id is not None]

        await delivered(cluster, job_ids, SETTLE_SECONDS + 15, victim_shards)
        statuses = await cluster.statuses(job_ids)
        alive = {name: process.poll() for name, process in cluster.roles.processes.items()}

    answers = answers_of(load.submissions)
    not_accepted = [s for s in load.submissions if s.job_id is None]
    refused_at = [at for s in load.submissions for at, st in s.answers if st not in (202, 409)]
    api_recovered = max(refused_at, default=killed) - promoted_at
    held = {
        s.key: max(at for at, st in s.answers if st == 409) - killed
        for s in load.submissions
        if any(st == 409 for _, st in s.answers)
    }
    arrived = cluster.receiver.arrived_at
    # The jobs the failover caught (queued, running, or their webhook owed), and those after.
    caught = [s.job_id for s in acknowledged if s.job_id and s.acknowledged_at <= promoted_at]
    settled = max(arrived[job_id] for job_id in caught) - killed
    latencies = {
        s.job_id: arrived[s.job_id] - s.acknowledged_at
        for s in acknowledged
        if s.job_id and s.acknowledged_at > promoted_at
    }
    after = on_victim_after_promotion()
    # Acknowledged while the primary was down: on the surviving primaries' shards.
    meanwhile = [
        arrived[s.job_id] - s.acknowledged_at
        for s in acknowledged
        if s.job_id and killed < s.acknowledged_at <= promoted_at
    ]
    retried = sum(1 for s in acknowledged if len(s.answers) > 1)
    print(
        f"\nCluster failover (node {victim.index} -> {promoted.index}, shards "
        f"{sorted(victim_shards)} of {SHARDS}): promoted {promoted_at - killed:.1f} s after the "
        f"kill; {len(acknowledged)} jobs acknowledged ({retried} after retries), "
        f"{len(not_accepted)} given up; answers {dict(answers)}; last refusal "
        f"{api_recovered:+.1f} s from the promotion; {len(held)} keys held in progress by the "
        f"failover, the last till {max(held.values(), default=0):.1f} s after the kill; on "
        "the victim's shards after the promotion "
        f"{len(after)} jobs; every webhook after it within {max(latencies.values()):.1f} s of "
        f"its 202; the {len(caught)} caught by the failover settled {settled:.1f} s after the "
        f"kill; {len(meanwhile)} acknowledged on the other shards while the primary was down "
        f"got their webhooks {min(meanwhile, default=0):.1f}-{max(meanwhile, default=0):.1f} s "
        f"after their 202; {cluster.receiver.duplicates} duplicate webhooks"
    )
    assert set(answers) <= {202, 409, 503}, answers  # never a 500, nor an outage unannounced
    assert not_accepted == [], [(s.key, s.answers) for s in not_accepted]
    assert statuses == {"succeeded": len(job_ids)}, statuses
    assert cluster.receiver.forged == 0
    # Recovered without a restart, within bounds.
    assert set(alive.values()) == {None}, alive
    assert api_recovered < API_RECOVERY_SECONDS
    assert max(held.values(), default=0) < HELD_KEY_SECONDS, held  # the lock lapsed, no more
    assert max(latencies.values()) < WEBHOOK_AFTER_ACK_SECONDS, latencies
    assert settled < SETTLE_SECONDS


def _keys_landing(where: set[int], count: int) -> list[Submission]:
    """`count` submissions whose Idempotency-Key places the job on one of the shards `where`
    (store/placement.py: a keyed create lands on its key's shard, the bootstrap tenant's)."""
    found: list[Submission] = []
    while len(found) < count:
        submission = Submission(len(found))
        if job_shard("default", SHARDS, idempotency=submission.key) in where:
            found.append(submission)
    return found


@pytest.mark.timeout(240)
async def test_a_job_only_its_shards_primary_holds_is_not_acknowledged_and_none_is_lost(
    tmp_path: Path,
) -> None:
    """WAIT goes to the primary of the job's own shard. The replicas of one primary stop
    taking its stream (SIGSTOP) while it goes on answering: a submit on its shards is made
    there but not acknowledged (503), while the other shards' are (their replicas confirm).
    The primary is then killed and a replica promoted: each submit it refused, retried under
    its Idempotency-Key, is acknowledged, and every acknowledged job ends with its webhook."""
    topology, cluster = _build(tmp_path, ACCEPTD_DURABILITY_TIMEOUT_MS="300")
    async with cluster, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        victim = topology.primary_for_key(keys.job_queue(0))
        victim_shards = _shards_on(topology, victim)
        replicas = [node for node in topology.nodes if node.primary_id == victim.node_id]
        on_victim = _keys_landing(victim_shards, 6)
        elsewhere = _keys_landing(set(range(SHARDS)) - victim_shards, 6)
        for node in replicas:
            node.server.pause()
        try:
            for submission in on_victim + elsewhere:
                status, _, job_id = await post(session, cluster, submission)
                submission.answers.append((time.monotonic(), status))
                submission.job_id = job_id
        finally:
            topology.kill(victim)
            killed = time.monotonic()
            for node in replicas:
                node.server.resume()
        refused = answers_of(on_victim)
        confirmed = answers_of(elsewhere)
        assert refused == {503: len(on_victim)}, "a job only the primary held was acknowledged"
        assert confirmed == {202: len(elsewhere)}, confirmed
        promoted = await asyncio.to_thread(topology.wait_for_failover, victim, 30)
        promoted_at = time.monotonic()
        await asyncio.gather(*(submit(session, cluster, s) for s in on_victim))
        acknowledged = [s for s in on_victim + elsewhere if s.job_id is not None]
        job_ids = [s.job_id for s in acknowledged if s.job_id is not None]
        assert len(acknowledged) == len(on_victim + elsewhere), answers_of(on_victim)
        assert {ids.shard_of(s.job_id) for s in on_victim if s.job_id} <= victim_shards
        await delivered(cluster, job_ids, SETTLE_SECONDS, victim_shards)
        statuses = await cluster.statuses(job_ids)
    retried = answers_of(on_victim)
    last = max(s.acknowledged_at for s in on_victim) - promoted_at
    print(
        f"\nreplicas of node {victim.index} stopped, then it died (node {promoted.index} "
        f"promoted {promoted_at - killed:.1f} s after): its shards' submits answered "
        f"{dict(retried)} in all, the last acknowledged {last:.1f} s after the promotion; "
        f"{cluster.receiver.duplicates} duplicate webhooks"
    )
    assert set(retried) <= {202, 409, 503}, retried
    assert statuses == {"succeeded": len(job_ids)}, statuses
    assert cluster.receiver.forged == 0

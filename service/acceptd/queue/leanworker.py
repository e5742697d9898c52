"""arq's bookkeeping per job, kept to what arq needs: Redis is the one part that does not
scale out, and arq's own steps were a third of the commands of a job.

Kept from arq: the queue (a sorted set by due time), the job key (its serialized call),
the in-progress marker that makes one worker the runner, the poll loop, timeouts, retries
and the worker's lifecycle. Changed, with the commands each saved per job:
- pickup is one script (`arq_pickup.lua`): SET NX of the marker replaces WATCH, EXISTS,
  MULTI and EXEC, and the job key is read in the same step (-7);
- no retry counter key (INCR and EXPIRE on every run): the try number travels in the
  payload (arq's own `t` field), raised when a run asks for a retry (-2 per run);
- no abort set (aborts are off) and no result key (results live in our records): finishing
  is DEL of the job key and the marker, and ZREM from the queue, without MULTI/EXEC (-3):
  a crash between them leaves a queue entry whose job key is gone, which the next pickup
  drops;
- the marker is the run's lease (`lease_seconds`, ACCEPTD_JOB_LEASE_SECONDS), renewed
  every third of it while the run goes on: a run whose process died is taken again by the
  next poll after its lease lapsed, whatever its own timeout (BullMQ's lock and stalled
  check, Temporal's heartbeat timeout), and a job costs no lease bookkeeping of its own;
- the poll reads the queue's head with its scores, so an idle loop can sleep until the next
  deferred entry falls due (queue/wakeable.py) instead of polling every 0.25 s.
- a job whose wake-up announced it (queue/wakeable.py) is started with its pickup, in the
  same round trip, by what the role that runs it gives (`pickup_companion`: the worker's
  start of the job's record, which happens only if the pickup took the job); any other
  job's start waits for its pickup's reply, one round trip more on its way.
One behaviour differs on purpose: a function that raises something unforeseen (our
functions record their jobs' own failures, so this is a bug or a store error) is not
dropped, as arq would, but run again one lease later, its try counted.
What this leans on in arq beyond its documented API is named in queue/arqseams.py.

The job queue is a fair-share queue (`fair_share`; store/fairshare.py): its scores are
tags, not due times, so every entry is due, and its pickup, retry and finish are the
`fair_*` scripts, which also hold and free the run's slot of its tenant's cap and its
concurrency key (a retry's delay is waited out in the retrying set). The dispatcher's
webhook queue stays a queue by due time.

Sharded (store/keys.py): each shard has its own queue, and every key of a job (arq's job
key, its marker) carries its shard's tag, so each step runs on the client of that shard
(`shards`, opened when the loop starts). A poll reads every shard's queue head, one round
trip per node, and takes the due entries oldest first whatever their shard. arq's own
pool is then only the one arq keeps for its health check and log lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from acceptd.core import ids
from acceptd.queue.arqseams import (
    ArqRedis,
    Function,
    Retry,
    SerializationError,
    Worker,
    deserialize_job_raw,
    ms_to_datetime,
    poll,
    serialize_job,
    timestamp_ms,
)
from acceptd.queue.runscripts import (
    ArqPickup,
    ArqRetry,
    ArqRun,
    FairFinish,
    FairHandback,
    FairPickup,
    FairRenew,
    FairRetry,
    FairRun,
    RunScripts,
    arq_run,
    fair_run,
)
from acceptd.store import keys
from acceptd.store.connection import StoreClient
from acceptd.store.outages import describe
from acceptd.store.shards import Shards

log = logging.getLogger(__name__)

# The key of a fair-share run's ctx that holds its ender (LeanWorker._run_ender).
END_RUN = "acceptd_end_run"
# The key of a run's ctx that holds the reply of what its pickup companion sent with its
# pickup (PickupCompanion), when it sent something and the pickup took the job.
WITH_PICKUP = "acceptd_with_pickup"


class PickupCompanion(Protocol):
    """What a role sends with the pickup of a job its wake-up announced, in the pickup's
    round trip: `send` gets the job's id, its function and arguments (as the announcement
    gave them) and the run's token, and returns what to await, or None to send nothing.
    Both go out on a client of `shards` (a client batches only its own commands)."""

    @property
    def shards(self) -> Shards: ...

    def send(
        self, job_id: str, function: str, args: Sequence[Any], token: str
    ) -> Awaitable[Any] | None: ...


# misc: mypy compares redis-py's own command mixins anew in a class with two Redis bases.
class ArqStoreClient(StoreClient, ArqRedis):  # type: ignore[misc]
    """arq's pool (its health check, its log lines): arq's client, its outages raised as
    StoreUnavailable like every client of the store (store/connection.py)."""


class LeanWorker(Worker):
    def __init__(
        self,
        *args: Any,
        open_shards: Callable[[], Awaitable[Shards]],
        queue_of: Callable[[int], str],
        lease_seconds: float | None = None,
        fair_share: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fair_share = fair_share
        self._open_shards = open_shards
        self._shards: Shards | None = None
        # The queue of each shard (keys.job_queue or keys.webhook_queue).
        self.queue_of = queue_of
        # With a lease, arq's in-progress marker of each run lives that long and is renewed
        # every third of it while the run goes on: a run whose process died is taken again
        # about one lease later, whatever its function's timeout (a job's 300 s, a
        # recovery's hour). Without, the marker lives arq's default (the timeout + 10 s).
        self.lease_seconds = lease_seconds
        if lease_seconds is not None:
            self.in_progress_timeout_s = lease_seconds
        self._closing = asyncio.Event()
        # What the last poll saw of the queue's head: "empty", "later" (the first entry
        # falls due at next_due_ms) or "busy" (due entries it could not take: running
        # elsewhere, or no slot free). The caller paces its next poll on it.
        self.queue_head = "empty"
        # Whether the last poll left due entries for want of a free slot here: a run that
        # ends then wakes the loop (queue/wakeable.py). Entries running elsewhere do not.
        self.waiting_for_a_slot = False
        self.next_due_ms = 0
        self._payloads: dict[str, bytes | str | None] = {}
        self._runs: RunScripts | None = None
        # Fair share: each run's token, which its marker holds (the scripts that end or renew
        # a run check it: a run whose lease lapsed and whose job runs elsewhere since
        # touches nothing), and the shard the next poll looks at first.
        self._tokens: dict[str, str] = {}
        self._first_shard = 0
        # Fair share: runs ended with their job's outcome (END_RUN), whose finish is done.
        self._ended: set[str] = set()
        # Fair share: the payloads the wake-ups of this poll announced, by job id, and what
        # the companion's reply was for each run it went with (WITH_PICKUP).
        self.pickup_companion: PickupCompanion | None = None
        self.announced: dict[str, str] = {}
        self._with_pickup: dict[str, Any] = {}

    @property
    def shards(self) -> Shards:
        assert self._shards is not None, "the worker's loop has not started"
        return self._shards

    @property
    def _scripts(self) -> RunScripts:
        if self._runs is None:
            self._runs = RunScripts(self.shards)
        return self._runs

    def _arq_run(self, job_id: str) -> ArqRun:
        """What a job's pickup and retry take first: all in its shard's slot."""
        return arq_run(job_id, self.queue_of(ids.shard_of(job_id)))

    def _fair_run(self, job_id: str) -> FairRun:
        """What a job's fair-share pickup, retry, finish and hand-back take first."""
        return fair_run(job_id, self.queue_of(ids.shard_of(job_id)))

    def _client(self, job_id: str, shards: Shards | None = None) -> Any:
        """The client of the job's shard: this worker's, or that of `shards`."""
        return (shards or self.shards).for_key(keys.arq_job(job_id))

    async def main(self) -> None:
        """arq's, with the store's shards opened first and burst mode's "is anything left"
        asked of every shard's queue. arq's pool is the control plane's client (its health
        check key carries the control tag: store/keys.py)."""
        if self._shards is None:
            self._shards = await self._open_shards()
        if self._pool is None:
            self._pool = ArqStoreClient(connection_pool=self.shards.control.connection_pool)
        log.info(
            "Starting worker for %d functions: %s", len(self.functions), ", ".join(self.functions)
        )
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        renewer = None
        if self.lease_seconds is not None:
            renewer = asyncio.get_running_loop().create_task(self._renew_leases())
        try:
            async for _ in poll(self.poll_delay_s):
                await self._poll_iteration()
                if self.burst and (
                    0 <= self.max_burst_jobs <= self._jobs_started() or await self._queued() == 0
                ):
                    await asyncio.gather(*self.tasks.values())
                    return
        finally:
            if renewer is not None:
                # Stopped between commands, never in one (worker/scheduler.py says why).
                self._closing.set()
                await asyncio.wait([renewer], timeout=5)

    async def _queued(self) -> int:
        """Entries left: in the queue, and (fair share) runs waiting out a retry's delay or
        running (one whose worker died comes back)."""

        def count(pipe: Any, shard: int) -> None:
            pipe.zcard(self.queue_of(shard))
            if self.fair_share:
                pipe.zcard(keys.retrying_jobs(shard))
                pipe.zcard(keys.running_jobs(shard))

        counts = await self.shards.across(count)
        return sum(sum(found) for found in counts)

    async def close(self) -> None:
        await super().close()
        if self._shards is not None:
            await self._shards.aclose()
            self._shards = None

    async def _renew_leases(self) -> None:
        """One round trip per third of a lease for every run going on here; none idle."""
        assert self.lease_seconds is not None
        lease_ms = int(self.lease_seconds * 1000)
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.lease_seconds / 3)
            # Not a run already ended with its outcome (_run_ender), its function returning.
            running = [
                job_id
                for job_id, task in self.tasks.items()
                if not task.done() and job_id not in self._ended
            ]
            if not running or self._closing.is_set():
                continue
            try:
                await self._renew(running, lease_ms)
            except Exception:
                log.warning("could not renew the leases of %d runs", len(running), exc_info=True)

    async def _renew(self, job_ids: list[str], lease_ms: int) -> None:
        markers = [keys.arq_in_progress(job_id) for job_id in job_ids]
        if not self.fair_share:
            await self.shards.pipelined(markers, lambda pipe, i: pipe.pexpire(markers[i], lease_ms))
            return
        scripts = self._scripts

        def renew(pipe: Any, i: int) -> Any:  # queued in the pipeline when awaited
            job_id = job_ids[i]
            call = FairRenew(
                in_progress=markers[i],
                running=keys.running_jobs(ids.shard_of(job_id)),
                job_id=job_id,
                token=self._tokens.get(job_id, ""),
                lease_ms=lease_ms,
            )
            return scripts.fair_renew(call, client=pipe)

        renewed = await self.shards.pipelined(markers, renew)
        for job_id, (held,) in zip(job_ids, renewed, strict=True):
            if not held:
                log.warning(
                    "job %s: this run's lease lapsed and the job runs elsewhere now; "
                    "its outcome here will not end that run",
                    job_id,
                )

    async def _poll_iteration(self) -> None:
        """arq's, reading the queue's head with its scores (ZRANGE … WITHSCORES, as cheap as
        arq's ZRANGEBYSCORE) so that an idle worker knows when the next deferred job falls
        due instead of polling for it."""
        count = self.queue_read_limit
        if self.burst and self.max_burst_jobs >= 0:
            remaining = self.max_burst_jobs - self._jobs_started()
            if remaining < 1:
                return
            count = min(remaining, count)
        named = self._named_by_wakeups()
        free = self.max_jobs - self.job_counter
        if self.allow_pick_jobs and 0 < len(named) <= min(free, count):
            # Jobs each queued alone, whose wake-ups named them: what a read of the queue
            # would find, taken without it, when there is a slot for each (with fewer, a
            # read takes the high lane of every shard first). What the last read saw of
            # the head stands.
            await self.start_jobs(named)  # type: ignore[arg-type]
        elif self.allow_pick_jobs and self.job_counter < self.max_jobs:
            start = self._queue_read_offset
            heads, failures = await self._queue_heads(start, count)
            if failures and all(found is None for found in heads):
                raise failures[0]  # the store is down: the caller backs off
            due, later = self._due(heads, count)
            await self.start_jobs(due)  # type: ignore[arg-type]
            # Its own running jobs wake it when they end: only due entries it does not
            # run (held elsewhere, or no slot was free) make it poll soon.
            # A node that failed (a failover under way) is asked again soon: its shards'
            # jobs wait, the others' are taken meanwhile.
            busy = bool(failures) or any(self._not_running_here(job_id) for job_id in due)
            if failures:
                log.warning("polling without some shards for now: %s", describe(failures[0]))
            self.queue_head = "busy" if busy else "later" if later else "empty"
            self.next_due_ms = later[0] if later else 0
        else:
            self.queue_head = "busy"
            self.waiting_for_a_slot = self.allow_pick_jobs
        if self.allow_abort_jobs:
            await self._cancel_aborted_jobs()
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                task.result()  # an error in run_job propagates, as in arq
        await self.heart_beat()

    def _named_by_wakeups(self) -> list[str]:
        """The jobs this poll may take without reading the queue (queue/wakeable.py); none
        here: every poll reads it."""
        return []

    def _due(self, heads: list[list[Any] | None], count: int) -> tuple[list[str], list[int]]:
        """(the entries to take, up to `count`; the due times of the later ones, soonest
        first) of the shards' queue heads. By due time across shards; a fair-share queue's
        entries are all due, and its scores are tags of each shard's own virtual time, not
        comparable across shards: its shards' heads are taken in turn."""
        found = [entries for entries, *_ in (h for h in heads if h is not None)]
        if self.fair_share:
            # Each poll starts at the next shard: a shard first in every poll would get every
            # slot that frees one at a time. The high lane (scores below 0) of every shard
            # goes before the normal lane of any.
            first = self._first_shard % max(1, len(found))
            self._first_shard += 1
            found = found[first:] + found[:first]
            taken: list[str] = []
            for high in (True, False):
                lanes = [[e for e in entries if (e[1] < 0) == high] for entries in found]
                in_turn = itertools.chain.from_iterable(itertools.zip_longest(*lanes))
                taken += [_text(entry[0]) for entry in in_turn if entry is not None]
            return taken[:count], []
        head = sorted(itertools.chain.from_iterable(found), key=lambda e: e[1])
        now = timestamp_ms()
        due = [_text(job_id) for job_id, score in head if score <= now][:count]
        return due, [int(score) for _, score in head if score > now]

    async def _queue_heads(
        self, start: int, count: int
    ) -> tuple[list[list[Any] | None], list[Exception]]:
        """Each shard's queue head, with scores (None for a shard whose node failed)."""
        if self.shards.count == 1:  # one shard: one command, no pipeline (every poll)
            only = await self.shards.of(0).zrange(
                self.queue_of(0), start, start + count - 1, withscores=True
            )
            return [[only]], []
        return await self.shards.across_reachable(
            lambda pipe, shard: pipe.zrange(
                self.queue_of(shard), start, start + count - 1, withscores=True
            )
        )

    def _not_running_here(self, job_id: str) -> bool:
        task = self.tasks.get(job_id)
        return task is None or task.done()

    async def start_jobs(self, job_ids: list[bytes | str]) -> None:  # type: ignore[override]
        """arq's, with the pickups of the jobs a poll found sent together (one pipeline:
        store/batching.py) rather than one round trip after another: a slot is taken for
        each first, as in arq, and what was taken so far goes out before waiting for one."""
        taking: list[tuple[str, str]] = []  # (job id, its run's token)
        self.waiting_for_a_slot = False
        for job_id_given in job_ids:
            if taking and self.sem.locked():
                await self._take(taking)
                taking = []
            await self.sem.acquire()
            if self.job_counter >= self.max_jobs:
                self.sem.release()
                # Set before any run can end: the first to end wakes the loop.
                self.waiting_for_a_slot = True
                break
            job_id = _text(job_id_given)
            if job_id in self.tasks and not self.tasks[job_id].done():
                self.sem.release()  # running here: no need to ask Redis
                continue
            self.job_counter += 1
            taking.append((job_id, secrets.token_hex(8)))
        if taking:
            await self._take(taking)

    async def _take(self, taking: list[tuple[str, str]]) -> None:
        """Pick the jobs up, all at once, and start the runs of those taken; the slot of
        each one not taken (not due, running elsewhere, no room in its limits) is given
        back."""
        lease_ms = int(self.in_progress_timeout_s * 1000)
        try:
            replies = await asyncio.gather(
                *(self._pickup(job_id, lease_ms, token) for job_id, token in taking),
                return_exceptions=True,
            )
        except BaseException:  # cancelled (the worker stops): every slot taken goes back
            self.job_counter -= len(taking)
            for _ in taking:
                self.sem.release()
            raise
        failed: BaseException | None = None
        for (job_id, token), taken in zip(taking, replies, strict=True):
            if isinstance(taken, BaseException) or not taken or taken == "parked":
                failed = failed or (taken if isinstance(taken, BaseException) else None)
                self.job_counter -= 1
                self.sem.release()
                continue
            score, self._payloads[job_id] = taken
            if self.fair_share:
                self._tokens[job_id] = token
            task = self.loop.create_task(self.run_job(job_id, int(float(score))))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task
        if failed is not None:
            raise failed

    def _pickup(self, job_id: str, lease_ms: int, token: str) -> Awaitable[Any]:
        """The pickup of one queued job (its reply: queue/lua/*_pickup.lua)."""
        if self.fair_share:
            call = FairPickup(run=self._fair_run(job_id), lease_ms=lease_ms, token=token)
            announced = self.announced.pop(job_id, None)
            if announced is not None and self.pickup_companion is not None:
                return self._pickup_with(self.pickup_companion, call, announced)
            return self._scripts.fair_pickup(call, client=self._client(job_id))
        arq_call = ArqPickup(run=self._arq_run(job_id), now_ms=timestamp_ms(), lease_ms=lease_ms)
        return self._scripts.arq_pickup(arq_call, client=self._client(job_id))

    async def _pickup_with(
        self, companion: PickupCompanion, call: FairPickup, announced: str
    ) -> Any:
        """The pickup, and what the companion sends with it for the payload announced, in
        one round trip; the companion's reply is kept for the run if the job was taken.
        Its error is not the pickup's: the run goes on without it (the role's function
        then does the step itself)."""
        job_id = call.run.job_id
        picking = self._scripts.fair_pickup(call, client=self._client(job_id, companion.shards))
        try:
            function, args, *_ = deserialize_job_raw(
                announced,  # type: ignore[arg-type]  # our deserializer reads str too
                deserializer=self.job_deserializer,
            )
            sending = companion.send(job_id, function, args, call.token)
        except Exception:  # an announcement it cannot read: the pickup goes alone
            log.warning("job %s: its wake-up's payload could not be read", job_id, exc_info=True)
            sending = None
        if sending is None:
            return await picking
        replies: tuple[Any, Any] = await asyncio.gather(picking, sending, return_exceptions=True)
        taken, sent = replies
        if isinstance(taken, BaseException):
            raise taken
        if taken and taken != "parked" and not isinstance(sent, BaseException):
            self._with_pickup[job_id] = sent
        return taken

    async def run_job(self, job_id: str, score: int) -> None:
        with_pickup = self._with_pickup.pop(job_id, None)
        payload = self._payloads.pop(job_id, None)
        if payload is None:
            log.warning("job %s expired: its queue entry had no job key", job_id)
            self.jobs_failed += 1
            return await asyncio.shield(self._finish(job_id))
        try:
            name, args, kwargs, job_try, enqueued_ms = deserialize_job_raw(
                payload,  # type: ignore[arg-type]  # our deserializer reads str too
                deserializer=self.job_deserializer,
            )
        except SerializationError:
            log.exception("deserializing job %s failed", job_id)
            self.jobs_failed += 1
            return await asyncio.shield(self._finish(job_id))
        function = self.functions.get(name)
        job_try = job_try or 1
        if not isinstance(function, Function) or job_try > (function.max_tries or self.max_tries):
            log.warning("job %s: function %r not found or out of tries", job_id, name)
            self.jobs_failed += 1
            return await asyncio.shield(self._finish(job_id))
        ctx = {
            **self.ctx,
            "job_id": job_id,
            "job_try": job_try,
            "score": score,
            "enqueue_time": ms_to_datetime(enqueued_ms),
        }
        if self.fair_share:
            ctx[END_RUN] = self._run_ender(job_id)
        if with_pickup is not None:
            ctx[WITH_PICKUP] = with_pickup
        timeout = self.job_timeout_s if function.timeout_s is None else function.timeout_s

        def again() -> bytes:  # its payload for another run: the one read above, try raised
            return serialize_job(
                name, args, kwargs, job_try + 1, enqueued_ms, serializer=self.job_serializer
            )

        task = self.loop.create_task(function.coroutine(ctx, *args, **kwargs))
        self.job_tasks[job_id] = task
        try:
            await asyncio.wait_for(task, timeout)
        except Retry as retry:
            self.jobs_retried += 1
            await asyncio.shield(self._again(job_id, again(), retry.defer_score or 0))
            return None
        except asyncio.CancelledError:
            # The worker is stopping: the job stays queued and runs again (as in arq).
            self.jobs_retried += 1
            await asyncio.shield(self._give_back([job_id], None))
            return None
        except Exception:
            # Not the job's failure (our functions record those): a bug, a store error, or
            # arq's timeout (a backstop behind the functions' own).
            # arq would drop the job; it runs again one lease later, its try counted.
            log.exception("job %s (%s) raised; running it again later", job_id, name)
            self.jobs_failed += 1
            delay_ms = int(self.in_progress_timeout_s * 1000)
            await asyncio.shield(self._again(job_id, again(), delay_ms))
            return None
        else:
            self.jobs_complete += 1
        finally:
            self.job_tasks.pop(job_id, None)
        return await asyncio.shield(self._finish(job_id))

    async def _again(self, job_id: str, again: bytes, delay_ms: int) -> None:
        """Queue the job again `delay_ms` from now with `again`, its next payload."""
        now, client = timestamp_ms(), self._client(job_id)
        if self.fair_share:
            shard = ids.shard_of(job_id)
            call = FairRetry(
                run=self._fair_run(job_id),
                retrying=keys.retrying_jobs(shard),
                due_ms=now + delay_ms,
                payload=again,
                now_ms=now,
                jobs_wakeup=keys.wakeup(keys.JOBS_WAKEUP, shard),
                scheduler_wakeup=keys.wakeup(keys.SCHEDULED_WAKEUP, shard),
                token=self._tokens.get(job_id, ""),
            )
            await self._scripts.fair_retry(call, client=client)
        else:
            arq_call = ArqRetry(run=self._arq_run(job_id), score_ms=now + delay_ms, payload=again)
            await self._scripts.arq_retry(arq_call, client=client)
        self._tokens.pop(job_id, None)
        self._ended.discard(job_id)

    async def _give_back(self, job_ids: list[str], wakeup_kind: str | None) -> None:
        """Runs of this worker that it stops (shutting down, or cut off by an outage) run
        again on the next worker that takes them, not one lease later: their markers go
        (fair share: back from the running set into the queue, in their slots), and the
        workers of `wakeup_kind` hear of them. One round trip per node."""
        markers = [keys.arq_in_progress(job_id) for job_id in job_ids]
        scripts = self._scripts

        def give_back(pipe: Any, i: int) -> Any:
            wakeup = keys.wakeup(wakeup_kind or keys.JOBS_WAKEUP, ids.shard_of(job_ids[i]))
            if self.fair_share:  # queued in the pipeline when awaited (Shards.pipelined)
                token = self._tokens.get(job_ids[i], "")
                call = FairHandback(run=self._fair_run(job_ids[i]), wakeup=wakeup, token=token)
                return scripts.fair_handback(call, client=pipe)
            pipe.delete(markers[i])
            if wakeup_kind is not None:
                pipe.spublish(wakeup, "1")
            return None

        await self.shards.pipelined(markers, give_back)
        for job_id in job_ids:
            self._tokens.pop(job_id, None)
            self._ended.discard(job_id)

    def _fair_finish(
        self, job_id: str, *, only_if_ended: bool, on: Shards | None = None
    ) -> Awaitable[Any]:
        call = FairFinish(
            run=self._fair_run(job_id),
            wakeup=keys.wakeup(keys.JOBS_WAKEUP, ids.shard_of(job_id)),
            token=self._tokens.get(job_id, ""),
            only_if_ended=int(only_if_ended),
        )
        return self._scripts.fair_finish(call, client=self._client(job_id, on))

    def _run_ender(self, job_id: str) -> Callable[[Shards], Awaitable[bool]]:
        """What a run's function calls as it writes the job's outcome, in the same turn of
        the loop and on the client the outcome goes out on (`on`: a client batches only its
        own commands), so that both leave in one round trip (store/batching.py): ends the
        run once the record has ended (fair_finish.lua), and True if it did; the run's own
        finish is then not sent again. Any other reply, or an error, leaves the run to
        end as before."""

        async def end_run(on: Shards) -> bool:
            if await self._fair_finish(job_id, only_if_ended=True, on=on) != 0:
                return False
            self._ended.add(job_id)
            return True

        return end_run

    async def _finish(self, job_id: str) -> None:
        if self.fair_share:
            if job_id in self._ended:
                self._ended.discard(job_id)
            else:
                await self._fair_finish(job_id, only_if_ended=False)
            self._tokens.pop(job_id, None)
            return
        # Keys first: a crash before the ZREM leaves an entry the next pickup drops.
        async with self._client(job_id).pipeline(transaction=False) as pipe:
            pipe.delete(keys.arq_job(job_id), keys.arq_in_progress(job_id))
            pipe.zrem(self.queue_of(ids.shard_of(job_id)), job_id)
            await pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

"""An arq Worker that picks up new work as soon as it is queued, without a tight poll loop.

arq polls its queue every `poll_delay`: idle pickup then costs half that delay on average,
and a short delay keeps an idle worker busy. Here the scripts that queue work SPUBLISH on
their shard's channel (store/shardchannels.py); between iterations the worker waits for
that message (or a freed job slot), or until the next deferred job falls due, and polls on
its own at least every second as the fallback (a deferral made by another process, a lost
message). A job queued alone is named by its wake-up, and the next poll takes it without
reading the queue when it has a slot for each job named (one round trip less between a
submit and the job's start); any other message has it read the queue.
Built on arq's `_poll_iteration` and `run_job`: seams named in queue/arqseams.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from acceptd.core import ids
from acceptd.queue.arqseams import timestamp_ms
from acceptd.queue.leanworker import LeanWorker
from acceptd.store.outages import StoreUnavailable
from acceptd.store.shardchannels import ANYTHING

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 5.0
IDLE_MAX_SECONDS = 1.0
MIN_WAIT_SECONDS = 0.005
# Jobs named by wake-ups that one poll takes without reading the queue; past this many,
# it reads the queue (it takes queue_read_limit at once).
MAX_NAMED = 16


class WakeableWorker(LeanWorker):
    def __init__(
        self, *args: Any, idle_poll: float, wakeup_kind: str | None = None, **kwargs: Any
    ) -> None:
        burst = kwargs.get("burst", False)
        # Burst runs (tests) keep arq's plain polling; otherwise the wait below paces the loop.
        super().__init__(*args, **{**kwargs, "poll_delay": kwargs["poll_delay"] if burst else 0})
        self._idle_poll = idle_poll
        self._wakeup = asyncio.Event()
        # Since the last poll: the jobs the wake-ups named (with the payloads they
        # announced), and whether one said more.
        self._named: list[str] = []
        self._announcing: dict[str, str] = {}
        self._read_queue = False
        self._outage = 0
        # Jobs whose run here died on a Redis outage, handed back once Redis answers again.
        self._lost: set[str] = set()
        self._wakeup_kind = wakeup_kind

    def wake(self, said: str = ANYTHING) -> None:
        """Its channel's message: a job queued alone names it, with its payload after a
        space (store/lua/_new_job.lua), and the next poll takes it without reading the
        queue; anything else (work queued behind other work, a slot freed, a reconnection)
        has the next poll read the queue, and so do more named jobs than one poll takes."""
        job_id, _, payload = said.partition(" ")
        if ids.looks_like("job", job_id) and not self._read_queue and len(self._named) < MAX_NAMED:
            self._named.append(job_id)
            if payload:
                self._announcing[job_id] = payload
        else:
            self._read_queue = True
        self._wakeup.set()

    def _named_by_wakeups(self) -> list[str]:
        named, self._named = self._named, []
        read_queue, self._read_queue = self._read_queue, False
        # What a read of the queue takes may have been announced too.
        self.announced, self._announcing = self._announcing, {}
        return [] if read_queue or self.burst else named

    async def run_job(self, job_id: str, score: int) -> None:
        # A run cut off by an outage so early or late that arq's own bookkeeping failed
        # too (its retry or finish could not be written) would end arq's loop, and nothing
        # would run the job again until its in-progress marker expired. Note it instead,
        # and hand it back once Redis answers.
        try:
            await super().run_job(job_id, score)
        except StoreUnavailable as exc:
            log.warning("job %s was cut off by an outage (%s)", job_id, exc.reason)
            self._lost.add(job_id)

    async def _again(self, job_id: str, again: bytes, delay_ms: int) -> None:
        await super()._again(job_id, again, delay_ms)
        if not self.fair_share:
            # Its own deferral, in its own queue, which nothing announces: the loop reads
            # the queue and sleeps until it falls due, not until its fallback poll. (A
            # fair-share retry waits in the retrying set, announced to the scheduler.)
            self.wake()

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        # A slot freed: due work the last poll left for want of one is taken now, not one
        # idle poll later (the wake-ups of many runs ending together make one poll). Not
        # for entries another process runs: each run ending would poll for them again.
        if self.waiting_for_a_slot:
            self.wake()

    def _restore_slots(self) -> None:
        """arq's start_jobs takes a slot (its counter and its semaphore) before its Redis
        calls and gives it back only on the errors it expects: a connection dropped during
        a pickup would leak one slot each time, until the worker takes no job at all."""
        running = sum(1 for task in self.tasks.values() if not task.done())
        self.job_counter = running
        self.sem = asyncio.BoundedSemaphore(self.max_jobs + 1)
        self.sem._value -= running  # the running jobs' completions give theirs back

    async def _hand_back(self, job_ids: list[str]) -> None:
        """Runs here that died on a Redis outage, once Redis answers: any process may take
        them now, not when their lease lapses (their queue entries are intact: our finish
        never ran). One this process runs again meanwhile is left alone."""
        lost = [job_id for job_id in job_ids if self._not_running_here(job_id)]
        if not lost:
            return
        await self._give_back(lost, self._wakeup_kind)  # other workers may take them at once
        for job_id in lost:
            log.warning("job %s was interrupted by a Redis outage; queued it again", job_id)

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
            self._outage = 0
            if self._lost:
                lost, self._lost = list(self._lost), set()
                try:
                    await self._hand_back(lost)
                except StoreUnavailable:
                    self._lost.update(lost)
                    raise
        except StoreUnavailable as exc:
            self._restore_slots()
            # arq's loop would end the process here. Redis restarting, failing over or
            # refusing writes is routine: back off and poll again, no operator needed.
            self._outage += 1
            delay = min(MAX_BACKOFF_SECONDS, 0.1 * 2**self._outage)
            log.warning("%s (try %d); polling again in %.1f s", exc.reason, self._outage, delay)
            await asyncio.sleep(delay)
            return
        if self.burst:
            return
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
        # that arrives as the event is set (a wake-up at the moment a stop begins), and the
        # worker's loop would then never end.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._idle_wait()):
                await self._wakeup.wait()
        self._wakeup.clear()

    def _idle_wait(self) -> float:
        """Until the next poll. Due work it could not take (running elsewhere, no free
        slot): the idle poll. Otherwise until the next deferred entry falls due, at most
        IDLE_MAX_SECONDS: new work wakes it at once (an SPUBLISH, or its own runs ending),
        and that bound is all a deferral made by another process can be late by."""
        if self.queue_head == "busy":
            return self._idle_poll
        if self.queue_head == "later":
            until_due = (self.next_due_ms - timestamp_ms()) / 1000
            return max(MIN_WAIT_SECONDS, min(IDLE_MAX_SECONDS, until_due))
        return max(self._idle_poll, IDLE_MAX_SECONDS)

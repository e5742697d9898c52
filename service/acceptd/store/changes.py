"""Live job changes for long-polls and SSE streams: one pub/sub connection per API process,
subscribed only to the jobs somebody is waiting on, so a waiting client costs no polling.

Status scripts PUBLISH a job's changes only while it is marked watched (a time in its
record): a job nobody waits on costs no PUBLISH. A watcher marks the job after its
subscription is confirmed and before it reads the job, and the mark is renewed while
anyone here still waits on it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from redis.asyncio.client import PubSub

from acceptd.core.clock import now_ms
from acceptd.store import keys
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards

log = logging.getLogger(__name__)

# How long a watcher waits for Redis to confirm its subscription before reading the job.
# Confirmation is what makes "subscribe, then read" race-free; the bound only keeps a
# request from hanging on a sick connection (it then reads, and relies on the long-poll).
SUBSCRIBE_CONFIRM_SECONDS = 2.0
# How long a mark lasts, and how often the marks of jobs still waited on are renewed.
WATCH_MARK_MS = 60_000
RENEW_MARKS_SECONDS = 20.0


class JobChanges:
    def __init__(self, shards: Shards, scripts: Scripts) -> None:
        # Pub/sub on the control plane's client: a script's PUBLISH reaches every node of
        # a cluster, so one subscription hears the jobs of every shard.
        self._shards = shards
        self._redis = shards.control
        self._scripts = scripts
        self._marks_renewed = 0.0
        self._watched_jobs: dict[str, str] = {}  # channel -> job id, while watched here
        self._pubsub: PubSub | None = None
        self._watchers: dict[str, set[asyncio.Queue[str]]] = {}
        # Per subscribed channel: set once Redis confirmed the subscription.
        self._confirmed: dict[str, asyncio.Event] = {}
        # The PubSub object is not safe for concurrent commands: two first subscribes racing
        # would each open a connection, and one connection's subscriptions would be lost.
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self._has_subscriptions = asyncio.Event()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[asyncio.Queue[str]]:
        """A queue that receives a note ('running', 'progress', a terminal status...) for
        each change of the job while the block runs. Subscribed (and confirmed by Redis)
        before the block starts: read the job inside it, and no change can slip between
        that read and the wait."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=100)
        channel = keys.job_changes(job_id)
        async with self._lock:
            if self._pubsub is None:
                self._pubsub = self._redis.pubsub()
            watchers = self._watchers.setdefault(channel, set())
            if not watchers:
                self._confirmed[channel] = asyncio.Event()
                self._watched_jobs[channel] = job_id
                await self._pubsub.subscribe(channel)
                self._has_subscriptions.set()
            watchers.add(queue)
            if self._reader is None or self._reader.done():  # after a subscribe: it reads one
                self._reader = asyncio.get_running_loop().create_task(self._read())
            confirmed = self._confirmed[channel]
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(confirmed.wait(), SUBSCRIBE_CONFIRM_SECONDS)
            await self._mark([job_id])
            yield queue
        finally:
            watchers.discard(queue)  # at once: this must happen even if we are cancelled below
            if not watchers:
                async with self._lock:
                    if not watchers and self._watchers.get(channel) is watchers:
                        del self._watchers[channel]
                        self._confirmed.pop(channel, None)
                        self._watched_jobs.pop(channel, None)
                        with contextlib.suppress(Exception):
                            await self._pubsub.unsubscribe(channel)

    async def _mark(self, job_ids: list[str]) -> None:
        until = now_ms() + WATCH_MARK_MS
        if len(job_ids) == 1:  # a new watcher: no pipeline (it would add a SCRIPT EXISTS)
            await self._scripts.mark_watched(keys=[keys.job(job_ids[0])], args=[until])
            return
        job_keys = [keys.job(job_id) for job_id in job_ids]
        await self._shards.pipelined(
            job_keys,
            lambda pipe, i: self._scripts.mark_watched(
                keys=[job_keys[i]], args=[until], client=pipe
            ),
        )

    async def _renew_marks(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._marks_renewed < RENEW_MARKS_SECONDS:
            return
        self._marks_renewed = loop.time()
        watched = list(self._watched_jobs.values())
        try:
            if watched:
                await self._mark(watched)
        except Exception:
            log.warning("could not renew the marks of watched jobs", exc_info=True)

    async def _read(self) -> None:
        assert self._pubsub is not None
        while True:
            if not self._watchers:
                self._has_subscriptions.clear()
                await self._has_subscriptions.wait()
            await self._renew_marks()
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("job-changes subscription interrupted; resubscribing", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if message is None:
                continue
            channel = message["channel"]
            if message.get("type") == "subscribe":
                confirmed = self._confirmed.get(channel)
                if confirmed is not None:
                    confirmed.set()
                continue
            if message.get("type") != "message":
                continue
            note = message["data"]
            for queue in list(self._watchers.get(channel, ())):
                with contextlib.suppress(asyncio.QueueFull):  # a slow reader only needs the latest
                    queue.put_nowait(note)

"""Live job changes for long-polls and SSE streams: per API process, one sharded pub/sub
connection per node (store/shardchannels.py), subscribed only to the jobs somebody is
waiting on, so a waiting client costs no polling.

Status scripts SPUBLISH a job's changes on its channel (in its shard's slot) only while it
is marked watched (a time in its record): a job nobody waits on costs no publish. A watcher
marks the job after its subscription is confirmed and before it reads the job, and the mark
is renewed while anyone here still waits on it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Hashable

from acceptd.core.clock import now_ms
from acceptd.core.tasks import cancel_until_done
from acceptd.store import keys
from acceptd.store.scriptcalls import MarkWatched
from acceptd.store.scripts import Scripts
from acceptd.store.shardchannels import ShardPubSub, by_node, open_pubsub
from acceptd.store.shards import Shards

log = logging.getLogger(__name__)

# How long a watcher waits for Redis to confirm its subscription before reading the job.
# Confirmation is what makes "subscribe, then read" race-free; the bound only keeps a
# request from hanging on a sick connection (it then reads, and relies on the long-poll).
SUBSCRIBE_CONFIRM_SECONDS = 2.0
# How long a mark lasts, and how often the marks of jobs still waited on are renewed.
WATCH_MARK_MS = 60_000
RENEW_MARKS_SECONDS = 20.0
# What a watcher is told after its subscription was lost and made again: read the job, a
# change may have gone by meanwhile.
RESUBSCRIBED = "resubscribed"


class JobChanges:
    def __init__(self, shards: Shards, scripts: Scripts) -> None:
        self._shards = shards
        self._scripts = scripts
        self._marks_renewed = 0.0
        self._watched_jobs: dict[str, str] = {}  # channel -> job id, while watched here
        # Per node: its connection and the task reading it.
        self._pubsubs: dict[Hashable, ShardPubSub] = {}
        self._readers: dict[Hashable, asyncio.Task[None]] = {}
        self._watchers: dict[str, set[asyncio.Queue[str]]] = {}
        # Per subscribed channel: set once Redis confirmed the subscription.
        self._confirmed: dict[str, asyncio.Event] = {}
        # A PubSub object is not safe for concurrent commands: two first subscribes racing
        # would each open a connection, and one connection's subscriptions would be lost.
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        readers, self._readers = list(self._readers.values()), {}
        for reader in readers:
            if not await cancel_until_done(reader):
                log.warning("a job-changes reader did not stop")
        pubsubs, self._pubsubs = list(self._pubsubs.values()), {}
        for pubsub in pubsubs:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[asyncio.Queue[str]]:
        """A queue that receives a note ('running', 'progress', a terminal status...) for
        each change of the job while the block runs. Subscribed (and confirmed by Redis)
        before the block starts: read the job inside it, and no change can slip between
        that read and the wait."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=100)
        channel = keys.job_changes(job_id)
        async with self._lock:
            watchers = self._watchers.setdefault(channel, set())
            if not watchers:
                self._confirmed[channel] = asyncio.Event()
                self._watched_jobs[channel] = job_id
                await self._subscribe([channel])
            watchers.add(queue)
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
                        await self._unsubscribe(channel)

    async def _subscribe(self, channels: list[str]) -> None:
        """Subscribes each channel on its node's connection (opened, with its reader, on
        first use). Called under the lock."""
        for node, names in by_node(self._shards, channels).items():
            pubsub = self._pubsubs.get(node)
            opened = pubsub is None
            if pubsub is None:
                pubsub = self._pubsubs[node] = open_pubsub(
                    self._shards, names[0], confirm=True, on_reconnect=self._told_again(node)
                )
            try:
                await pubsub.ssubscribe(*names)
            except Exception:
                # The reader finds the connection broken and subscribes these again.
                log.warning("could not subscribe to job changes (retrying)", exc_info=True)
            if opened:  # read once connected (or found broken)
                self._readers[node] = asyncio.get_running_loop().create_task(
                    self._read(node, pubsub)
                )

    def _told_again(self, node: Hashable) -> Callable[[], None]:
        """What a node's connection does when it was made again within a read: its
        watchers read their jobs again."""

        def tell() -> None:
            pubsub = self._pubsubs.get(node)
            for channel in pubsub.shard_channels if pubsub is not None else ():
                self._tell(channel, RESUBSCRIBED)

        return tell

    async def _unsubscribe(self, channel: str) -> None:
        for pubsub in self._pubsubs.values():
            if channel in pubsub.shard_channels:
                with contextlib.suppress(Exception):
                    await pubsub.sunsubscribe(channel)

    async def _mark(self, job_ids: list[str]) -> None:
        until = now_ms() + WATCH_MARK_MS
        if len(job_ids) == 1:  # a new watcher: no pipeline (it would add a SCRIPT EXISTS)
            await self._scripts.mark_watched(MarkWatched(job=keys.job(job_ids[0]), until_ms=until))
            return
        job_keys = [keys.job(job_id) for job_id in job_ids]
        await self._shards.pipelined(
            job_keys,
            lambda pipe, i: self._scripts.mark_watched(
                MarkWatched(job=job_keys[i], until_ms=until), client=pipe
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

    async def _read(self, node: Hashable, pubsub: ShardPubSub) -> None:
        """Reads one node's connection until it fails (a dropped connection, a slot that
        moved: SlotMovedError); then its channels are subscribed again where their slots
        are now, and their watchers told to read their jobs again."""
        while self._pubsubs.get(node) is pubsub:
            await self._renew_marks()
            try:
                message = await pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("job-changes subscription interrupted; resubscribing", exc_info=True)
                await asyncio.sleep(0.5)
                await self._resubscribe(node, pubsub)
                return
            if message is None:
                continue
            channel = message["channel"]
            if message.get("type") == "ssubscribe":
                confirmed = self._confirmed.get(channel)
                if confirmed is not None:
                    confirmed.set()
                continue
            if message.get("type") != "smessage":
                continue
            self._tell(channel, message["data"])

    def _tell(self, channel: str, note: str) -> None:
        for queue in list(self._watchers.get(channel, ())):
            with contextlib.suppress(asyncio.QueueFull):  # a slow reader only needs the latest
                queue.put_nowait(note)

    async def _resubscribe(self, node: Hashable, broken: ShardPubSub) -> None:
        async with self._lock:
            if self._pubsubs.get(node) is broken:
                del self._pubsubs[node]
            with contextlib.suppress(Exception):
                await broken.aclose()  # type: ignore[no-untyped-call]
            channels = [c for c in broken.shard_channels if c in self._watchers]
            await self._subscribe(channels)
        for channel in channels:
            self._tell(channel, RESUBSCRIBED)

"""Live job changes for long-polls and SSE streams: one pub/sub connection per API process,
subscribed only to the jobs somebody is waiting on, so a waiting client costs no polling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from service.store import keys

log = logging.getLogger(__name__)


class JobChanges:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._pubsub: PubSub | None = None
        self._watchers: dict[str, set[asyncio.Queue[str]]] = {}
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
        each change of the job while the block runs. Subscribed before the block starts:
        read the job inside it, and no change can slip between that read and the wait."""
        if self._pubsub is None:
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read())
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=100)
        channel = keys.job_changes(job_id)
        watchers = self._watchers.setdefault(channel, set())
        if not watchers:
            await self._pubsub.subscribe(channel)
            self._has_subscriptions.set()
        watchers.add(queue)
        try:
            yield queue
        finally:
            watchers.discard(queue)
            if not watchers:
                del self._watchers[channel]
                with contextlib.suppress(Exception):
                    await self._pubsub.unsubscribe(channel)

    async def _read(self) -> None:
        assert self._pubsub is not None
        while True:
            if not self._watchers:
                self._has_subscriptions.clear()
                await self._has_subscriptions.wait()
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("job-changes subscription interrupted; resubscribing", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") != "message":
                continue
            note = message["data"]
            for queue in list(self._watchers.get(message["channel"], ())):
                with contextlib.suppress(asyncio.QueueFull):  # a slow reader only needs the latest
                    queue.put_nowait(note)

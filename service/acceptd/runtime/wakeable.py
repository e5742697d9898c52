"""An arq Worker that picks up new work as soon as it is queued, without a tight poll loop.

arq polls its queue every `poll_delay`: idle pickup then costs half that delay on average,
and a short delay keeps an idle worker busy. Here the scripts that queue work PUBLISH on a
channel; between iterations the worker waits for that message (or a freed job slot), and
polls on its own only every `idle_poll` as the fallback (deferred jobs, a lost message).
Built on arq's `_poll_iteration`, so it is pinned to the arq versions pyproject allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from arq import Worker
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 5.0


class WakeableWorker(Worker):
    def __init__(self, *args: Any, idle_poll: float, **kwargs: Any) -> None:
        burst = kwargs.get("burst", False)
        # Burst runs (tests) keep arq's plain polling; otherwise the wait below paces the loop.
        super().__init__(*args, **{**kwargs, "poll_delay": kwargs["poll_delay"] if burst else 0})
        self._idle_poll = idle_poll
        self._wakeup = asyncio.Event()
        self._outage = 0

    def wake(self) -> None:
        self._wakeup.set()

    def _forget_jobs_lost_to_redis(self) -> None:
        # A job task that died on a Redis error (an outage mid-job) would be re-raised by
        # arq's own loop and again at close. Its queue entry is intact: arq runs it again
        # once the in-progress marker expires, so drop the task and carry on.
        for job_id, task in list(self.tasks.items()):
            if task.done() and not task.cancelled():
                error = task.exception()
                if isinstance(error, (RedisConnectionError, RedisTimeoutError, OSError)):
                    log.warning("job %s lost its Redis connection; it will run again", job_id)
                    del self.tasks[job_id]

    async def _poll_iteration(self) -> None:
        self._forget_jobs_lost_to_redis()
        try:
            await super()._poll_iteration()
            self._outage = 0
        except (RedisConnectionError, RedisTimeoutError, OSError):
            # arq's loop would end the process here. Redis restarting or failing over is
            # routine: wait with backoff and poll again, with no operator action needed.
            self._outage += 1
            delay = min(MAX_BACKOFF_SECONDS, 0.1 * 2**self._outage)
            log.warning("Redis unreachable (try %d); polling again in %.1f s", self._outage, delay)
            await asyncio.sleep(delay)
            return
        if self.burst:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), self._idle_poll)
        self._wakeup.clear()


async def listen_for_wakeups(redis: Redis, channel: str, worker: WakeableWorker) -> None:
    """Runs for the worker's life; resubscribes after a dropped connection."""
    failures = 0
    while True:
        try:
            async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(channel)
                failures = 0
                worker.wake()  # anything queued while we were not listening
                async for _message in pubsub.listen():
                    worker.wake()
        except asyncio.CancelledError:
            raise
        except Exception:
            failures += 1
            log.warning("wake-up subscription lost; polling until it is back", exc_info=True)
            await asyncio.sleep(min(5.0, 0.1 * 2**failures))

"""The worker's cancel watcher: a cancel asked for a job running here reaches its handler,
and one the handler ignores past ACCEPTD_CANCEL_GRACE_SECONDS stops it by force."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from acceptd.core.settings import Settings
from acceptd.store.jobs import JobStore
from acceptd.worker.attempt import RunningJob

log = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 0.2


@dataclass
class CancelWatcher:
    settings: Settings
    store: JobStore
    running: dict[str, RunningJob]
    stopping: asyncio.Event

    async def _pause(self, seconds: float) -> bool:
        """Sleeps between rounds; False once the worker is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
        return not self.stopping.is_set()

    async def run(self) -> None:
        """One pipelined read per round for every job running here; nothing when idle."""
        loop = asyncio.get_running_loop()
        while await self._pause(CANCEL_POLL_SECONDS):
            if not self.running:
                continue
            job_ids = list(self.running)
            try:
                flags = await self.store.cancel_flags(job_ids)
            except Exception:
                log.warning("could not read cancel flags", exc_info=True)
                continue
            now = loop.time()
            for job_id, wanted in zip(job_ids, flags, strict=True):
                running = self.running.get(job_id)
                if running is None or not wanted:
                    continue
                if running.cancel_seen_at is None:
                    running.cancel_seen_at = now
                    running.context._mark_canceled()
                elif now - running.cancel_seen_at >= self.settings.cancel_grace_seconds:
                    log.info("job %s ignored cancel for the grace period; forcing it", job_id)
                    running.forced = True
                    running.task.cancel()

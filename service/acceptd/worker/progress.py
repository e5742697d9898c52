"""Coalesces a handler's progress reports into few Redis writes and at most one event a second."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from acceptd.store.job_record import JobRef
from acceptd.store.jobs import JobStore

log = logging.getLogger(__name__)

RECORD_INTERVAL_SECONDS = 0.1
EVENT_INTERVAL_SECONDS = 1.0


class ProgressReporter:
    """Leading-edge writes, then one every RECORD_INTERVAL; `job.progress` events at most once
    per EVENT_INTERVAL, with a trailing event so the last report is never silently dropped."""

    def __init__(self, store: JobStore, ref: JobRef) -> None:
        self._store = store
        self._ref = ref
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._pending: dict[str, Any] | None = None
        self._latest: dict[str, Any] | None = None
        self._event_owed = False
        self._last_event_at = float("-inf")
        self._task: asyncio.Task[None] | None = None

    @property
    def latest(self) -> dict[str, Any] | None:
        return self._latest

    def report(self, fraction: float, message: str | None) -> None:
        value = {"fraction": fraction, "message": message}
        if threading.get_ident() == self._loop_thread:
            self._accept(value)
        else:
            self._loop.call_soon_threadsafe(self._accept, value)

    def _accept(self, value: dict[str, Any]) -> None:
        self._pending = self._latest = value
        if self._task is None or self._task.done():
            self._task = self._loop.create_task(self._flush())

    async def _flush(self) -> None:
        while True:
            now = self._loop.time()
            if self._pending is not None:
                value, self._pending = self._pending, None
                emit = now - self._last_event_at >= EVENT_INTERVAL_SECONDS
                self._event_owed = not emit
                if emit:
                    self._last_event_at = now
                await self._write(value, emit)
                await asyncio.sleep(RECORD_INTERVAL_SECONDS)
            elif self._event_owed and self._latest is not None:
                wait = self._last_event_at + EVENT_INTERVAL_SECONDS - now
                if wait > 0:
                    await asyncio.sleep(min(wait, RECORD_INTERVAL_SECONDS))
                    continue
                self._event_owed = False
                self._last_event_at = now
                await self._write(self._latest, True)
            else:
                return

    async def _write(self, value: dict[str, Any], emit: bool) -> None:
        try:
            await self._store.set_progress(self._ref, value, emit_event=emit)
        except Exception:  # progress is advisory: never fail a job over it
            log.warning("progress write failed for %s", self._ref.id, exc_info=True)

    async def close(self) -> None:
        """Stop writing; the terminal write that follows carries the latest progress."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

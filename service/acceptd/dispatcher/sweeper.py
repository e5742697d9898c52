"""Finds pending deliveries whose queue entry was lost and queues them again."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from acceptd.core.clock import now_ms
from acceptd.store.deliveries import DeliveryStore

log = logging.getLogger(__name__)

SWEEP_EVERY_SECONDS = 30.0
# A pending delivery this far past due with no queue entry was lost: queue it again.
SWEEP_GRACE_MS = 60_000
SWEEP_BATCH = 500


class DeliverySweeper:
    def __init__(self, deliveries: DeliveryStore, stopping: asyncio.Event) -> None:
        self._deliveries = deliveries
        self._stopping = stopping

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), SWEEP_EVERY_SECONDS)
            if self._stopping.is_set():
                return
            try:
                await self.sweep()
            except Exception:
                log.warning("sweep failed (will try again)", exc_info=True)

    async def sweep(self) -> int:
        """Re-queue pending deliveries overdue by SWEEP_GRACE_MS whose queue entry is gone."""
        requeued = 0
        for delivery_id in await self._deliveries.overdue(now_ms() - SWEEP_GRACE_MS, SWEEP_BATCH):
            delivery = await self._deliveries.get(delivery_id)
            if delivery is not None and await self._deliveries.requeue(delivery, manual=False):
                log.warning("re-queued delivery %s: its queue entry was lost", delivery_id)
                requeued += 1
        return requeued

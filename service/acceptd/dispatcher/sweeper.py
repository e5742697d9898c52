"""Finds pending deliveries whose way to a dispatcher was lost and queues them again: a
lost queue entry, or the lapsed inline lease of a dispatcher that died mid-attempt."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from acceptd.core.clock import now_ms
from acceptd.dispatcher.inline import RENEW_EVERY_SECONDS, InlineDispatch
from acceptd.store.deliveries import DeliveryStore
from acceptd.store.endpoints import EndpointStore
from acceptd.store.ordering import OrderQueues

log = logging.getLogger(__name__)

SWEEP_EVERY_SECONDS = 30.0
ORDER_SWEEP_EVERY_SECONDS = 1.0
# A pending delivery this far past due with no queue entry was lost: queue it again.
SWEEP_GRACE_MS = 60_000
SWEEP_BATCH = 500


class DeliverySweeper:
    def __init__(
        self,
        deliveries: DeliveryStore,
        stopping: asyncio.Event,
        order: OrderQueues | None = None,
        inline: InlineDispatch | None = None,
        endpoints: EndpointStore | None = None,
    ) -> None:
        self._deliveries = deliveries
        self._endpoints = endpoints
        self._stopping = stopping
        self._order = order
        self._inline = inline

    async def run(self) -> None:
        """Every second: order queues (a head waiting on an older event starts as soon as
        that event is fanned out, also after a crash) and lapsed inline leases; this
        process's own leases every few seconds; lost queue entries every 30 s."""
        next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS
        next_renewal = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), ORDER_SWEEP_EVERY_SECONDS)
            if self._stopping.is_set():
                return
            try:
                if self._inline is not None and time.monotonic() >= next_renewal:
                    next_renewal = time.monotonic() + RENEW_EVERY_SECONDS
                    await self._inline.renew_leases()
                await self.sweep_leases()
                if self._order is not None:
                    await self._order.sweep()
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS
                    await self.sweep()
                    if self._endpoints is not None:
                        # Subscription counts a role died before copying to every shard.
                        await self._endpoints.resync_pending()
            except Exception:
                log.warning("sweep failed (will try again)", exc_info=True)

    async def sweep_leases(self) -> int:
        """Queue the first attempts whose inline sender died (its lease lapsed)."""
        requeued = 0
        for delivery_id in await self._deliveries.lapsed_leases(SWEEP_BATCH):
            delivery = await self._deliveries.view(delivery_id)
            if delivery is None:
                await self._deliveries.drop_lease(delivery_id)
            elif await self._deliveries.requeue(delivery, manual=False):
                log.warning("queued delivery %s: its inline sender stopped", delivery_id)
                requeued += 1
        return requeued

    async def sweep(self) -> int:
        """Re-queue pending deliveries overdue by SWEEP_GRACE_MS whose queue entry is gone."""
        requeued = 0
        for delivery_id in await self._deliveries.overdue(now_ms() - SWEEP_GRACE_MS, SWEEP_BATCH):
            delivery = await self._deliveries.view(delivery_id)
            if delivery is not None and await self._deliveries.requeue(delivery, manual=False):
                log.warning("re-queued delivery %s: its queue entry was lost", delivery_id)
                requeued += 1
        return requeued

"""First attempts sent at once by the dispatcher that created the delivery, when it has
room: no queue round trip before a fresh webhook leaves. The delivery's queue entry is
leased meanwhile, so it re-sends the attempt only if this process dies."""

from __future__ import annotations

import asyncio
import logging

from acceptd.dispatcher.attempts import Attempts
from acceptd.store.deliveries import DeliveryRecord

log = logging.getLogger(__name__)


class InlineDispatch:
    """What the fan-out calls: claim a slot, send, or give the slot back."""

    def __init__(self, attempts: Attempts, max_in_flight: int, lease_ms: int) -> None:
        self._attempts = attempts
        self._max_in_flight = max_in_flight
        self.lease_ms = lease_ms
        self.tasks: set[asyncio.Task[None]] = set()

    def try_claim(self, tenant: str, url: str, endpoint_id: str | None) -> bool:
        if len(self.tasks) >= self._max_in_flight:
            return False
        return self._attempts.slots.try_take(tenant, url, endpoint_id)

    def unclaim(self, tenant: str, url: str, endpoint_id: str | None) -> None:
        self._attempts.slots.give_back(tenant, url, endpoint_id)

    def send(self, delivery: DeliveryRecord) -> None:
        task = asyncio.get_running_loop().create_task(self._send(delivery))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send(self, delivery: DeliveryRecord) -> None:
        try:
            await self._attempts.run(delivery, 1)
        except Exception:
            # Nothing is lost: the attempt's lease in the queue sends it again.
            log.warning(
                "inline attempt of %s failed; its lease will retry", delivery.id, exc_info=True
            )
        finally:
            self.unclaim(delivery.tenant, delivery.url, delivery.endpoint_id)

    async def drain(self, grace: float) -> None:
        """Let attempts in flight finish within `grace`; cancel the rest (leases cover them)."""
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=grace)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

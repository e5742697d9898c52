"""First attempts made by the dispatcher that created the delivery: no queue round trip
before a fresh webhook leaves, and no arq job at all when it succeeds.

The delivery holds a lease meanwhile (the inline lease set), renewed here every few
seconds: if this process dies, the lease lapses and the sweeper of any dispatcher queues
the attempt (dispatcher/sweeper.py). A destination whose slots are all taken does not send
its new deliveries to the queue (an arq job, and a retry each time the slots are still
taken when it runs): they wait here, in order, for a slot of their own destination, so a
burst to one receiver costs no more Redis work than a trickle, and other destinations are
never held up by it. The wait is bounded (BACKLOG_PER_IN_FLIGHT); past it, the fan-out
queues deliveries as before."""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from acceptd.dispatcher.attempts import Attempts, landed
from acceptd.dispatcher.caps import destination_key
from acceptd.store.deliveries import DeliveryRecord, DeliveryStore, Persisted
from acceptd.store.endpoints import EndpointRecord

log = logging.getLogger(__name__)

# How long an inline lease lasts unless renewed, and how often it is renewed: a dispatcher
# that dies mid-attempt has that attempt queued again within about this long (+1 s sweep).
INLINE_LEASE_SECONDS = 10.0
RENEW_EVERY_SECONDS = INLINE_LEASE_SECONDS / 3
# Deliveries that may wait here for a slot, per request this process may have in flight.
BACKLOG_PER_IN_FLIGHT = 20


class InlineDispatch:
    """What the fan-out calls: may this process take a new delivery (`accepts`), then
    `send` it once it is persisted with an inline lease."""

    def __init__(
        self,
        attempts: Attempts,
        deliveries: DeliveryStore,
        max_in_flight: int,
        lease_ms: int = int(INLINE_LEASE_SECONDS * 1000),
    ) -> None:
        self._attempts = attempts
        self._deliveries = deliveries
        self._max_in_flight = max_in_flight
        self._backlog_limit = BACKLOG_PER_IN_FLIGHT * max_in_flight
        self.lease_ms = lease_ms
        self.tasks: set[asyncio.Task[None]] = set()
        self._sending: dict[asyncio.Task[None], str] = {}  # task -> delivery id
        # Per destination, in the order they were made: deliveries waiting for a slot, each
        # with its creation when that may still be under way (`send`). An endpoint's record
        # is kept only for the moment of `send`: one that waited is read again.
        self._waiting: dict[
            str, deque[tuple[DeliveryRecord, Persisted, EndpointRecord | None]]
        ] = {}
        self._waiting_count = 0
        # A slot freed by any attempt (a queued retry too) may start one that waits here.
        attempts.slots.on_release = self._pump_if_waiting
        # A queued attempt does not wait for a receiver whose slots go to these first.
        attempts.slots.inline_backlog = self._waiting.__contains__

    def accepts(self) -> bool:
        return self._waiting_count < self._backlog_limit

    def held(self) -> list[str]:
        """Ids of the deliveries this process holds a lease on (sending or waiting)."""
        ids = list(self._sending.values())
        for waiting in self._waiting.values():
            ids.extend(delivery.id for delivery, _, _ in waiting)
        return ids

    async def renew_leases(self) -> None:
        """One command for every delivery held here; none when idle."""
        await self._deliveries.renew_leases(self.held(), self.lease_ms)

    def send(
        self,
        delivery: DeliveryRecord,
        persisted: Persisted = None,
        endpoint: EndpointRecord | None = None,
    ) -> None:
        """`persisted`: the delivery's creation, if it may still be under way: the attempt
        is sent meanwhile, and recorded once it landed (never, if it did not: its event
        is then handled again, and the delivery made and sent anew). `endpoint`: its
        endpoint as the fan-out read it a moment ago; an attempt that starts now uses it
        instead of reading it again (one round trip sooner), one that must wait for a
        slot reads it when it starts (it may be disabled by then)."""
        destination = destination_key(delivery.url, delivery.endpoint_id)
        waiting = self._waiting.setdefault(destination, deque())
        waiting.append((delivery, persisted, endpoint))
        self._waiting_count += 1
        self._pump([destination])  # only its own destination's chances changed
        if endpoint is not None and waiting and waiting[-1][0] is delivery:
            waiting[-1] = (delivery, persisted, None)

    def _pump(self, destinations: list[str] | None = None) -> None:
        """Start what waits, destination by destination (all, or those given), while
        slots allow."""
        slots = self._attempts.slots
        for destination in list(self._waiting) if destinations is None else destinations:
            waiting = self._waiting.get(destination)
            if waiting is None:
                continue
            while waiting and len(self.tasks) < self._max_in_flight:
                head, persisted, endpoint = waiting[0]
                if not slots.try_take(head.tenant, head.url, head.endpoint_id):
                    break
                waiting.popleft()
                self._waiting_count -= 1
                self._start(head, persisted, endpoint)
            if not waiting:
                del self._waiting[destination]

    def _start(
        self, delivery: DeliveryRecord, persisted: Persisted, endpoint: EndpointRecord | None
    ) -> None:
        task = asyncio.get_running_loop().create_task(self._send(delivery, persisted, endpoint))
        self.tasks.add(task)
        self._sending[task] = delivery.id
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self._sending.pop(task, None)
        self._pump_if_waiting()

    def _pump_if_waiting(self) -> None:
        if self._waiting:
            self._pump()

    async def _send(
        self, delivery: DeliveryRecord, persisted: Persisted, endpoint: EndpointRecord | None
    ) -> None:
        try:
            await self._attempts.run(delivery, 1, endpoint, persisted)
        except Exception:
            # Nothing is lost: its lease lapses, and a sweeper queues the attempt.
            log.warning(
                "inline attempt of %s failed; its lease will retry", delivery.id, exc_info=True
            )
        finally:
            self._attempts.slots.give_back(delivery.tenant, delivery.url, delivery.endpoint_id)

    async def drain(self, grace: float) -> None:
        """Queue what still waits (another dispatcher sends it now, not when its lease
        lapses), let attempts in flight finish within `grace`, cancel the rest (their
        leases cover them)."""
        waiting = [entry for queue in self._waiting.values() for entry in queue]
        self._waiting.clear()
        self._waiting_count = 0
        for delivery, persisted, _ in waiting:
            try:
                if not await landed(persisted):
                    continue  # not made: its event is handled again, by another dispatcher
                await self._deliveries.requeue(delivery, manual=False)
            except Exception:
                log.warning("could not queue %s at shutdown; its lease will", delivery.id)
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=grace)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

"""A dispatcher's slots per destination and per tenant: full means "come back shortly", or
for a few queued attempts "wait here a little", so one slow receiver or tenant cannot
occupy every slot."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from yarl import URL

from acceptd.core.caps import ConcurrencyCaps


def destination_key(url: str, endpoint_id: str | None) -> str:
    """A registered endpoint is its own destination; a callback URL's is its origin."""
    if endpoint_id:
        return endpoint_id
    parsed = URL(url)
    return f"{parsed.scheme}://{parsed.host}:{parsed.port}"


@dataclass(eq=False)
class Waiter:
    """A queued attempt waiting for a slot; `handed` gets True once a slot is taken for it."""

    tenant: str
    handed: asyncio.Future[bool]


@dataclass
class Slots:
    """A dispatcher's request slots, shared fairly: at most so many in flight to one
    receiver, and at most so many for one tenant, so a tenant with many slow receivers
    cannot hold every slot while another tenant's webhooks wait. A full cap means "come
    back shortly" (the attempt is deferred, uncounted).

    A queued attempt whose receiver is full may instead wait here a little
    (`take_within`): the slot freed next is handed to it, in order, without another trip
    through the queue. Waiting holds one of the queue's run slots, so few may wait: at most
    `max_waiting` in all, `waiting_per_tenant` of one tenant, as many per receiver as it
    may have in flight, and none for a tenant at its own cap (only the receiver's cap is
    worth waiting out: a tenant's own slots free only as its own receivers answer)."""

    per_destination: ConcurrencyCaps
    per_tenant: ConcurrencyCaps
    waiting_per_tenant: ConcurrencyCaps
    max_waiting: int
    # Called after every release: deliveries waiting for a slot start (dispatcher/inline.py).
    on_release: Callable[[], None] | None = None
    # Per destination, the attempts waiting in take_within, oldest first.
    _waiters: dict[str, deque[Waiter]] = field(default_factory=dict)
    _waiting: int = 0

    @classmethod
    def build(cls, per_destination: int, per_tenant: int, max_waiting: int = 0) -> Slots:
        return cls(
            ConcurrencyCaps(per_destination),
            ConcurrencyCaps(per_tenant),
            ConcurrencyCaps(max(1, per_tenant // 5)),
            max_waiting,
        )

    def try_take(self, tenant: str, url: str, endpoint_id: str | None) -> bool:
        return self._take(tenant, destination_key(url, endpoint_id))

    def _take(self, tenant: str, destination: str) -> bool:
        if not self.per_tenant.try_acquire(tenant):
            return False
        if not self.per_destination.try_acquire(destination):
            self.per_tenant.release(tenant)
            return False
        return True

    def give_back(self, tenant: str, url: str, endpoint_id: str | None) -> None:
        self.per_destination.release(destination_key(url, endpoint_id))
        self.per_tenant.release(tenant)
        if self.on_release is not None:
            self.on_release()  # first attempts waiting inline go first
        if self._waiters:
            self._hand_over()

    async def take_within(
        self, tenant: str, url: str, endpoint_id: str | None, seconds: float
    ) -> bool:
        """A slot now, or one handed over within `seconds`; False when none was, or when
        this attempt may not wait (see the class)."""
        destination = destination_key(url, endpoint_id)
        if self._take(tenant, destination):
            return True
        waiting = self._waiters.get(destination)
        if (
            self._waiting >= self.max_waiting
            or self.per_tenant.in_flight.get(tenant, 0) >= self.per_tenant.limit
            or (waiting is not None and len(waiting) >= self.per_destination.limit)
            or not self.waiting_per_tenant.try_acquire(tenant)
        ):
            return False
        waiter = Waiter(tenant, asyncio.get_running_loop().create_future())
        self._waiters.setdefault(destination, deque()).append(waiter)
        self._waiting += 1
        try:
            async with asyncio.timeout(seconds):
                await waiter.handed
        except BaseException as cut_off:
            if waiter.handed.done() and not waiter.handed.cancelled():
                # Handed a slot as it was cut off (its time ran out, its worker stops in the
                # same turn): the slot goes on to the next waiter.
                self.give_back(tenant, url, endpoint_id)
            if isinstance(cut_off, TimeoutError):
                return False
            raise
        finally:
            self._waiting -= 1
            self.waiting_per_tenant.release(tenant)
            self._forget(destination, waiter)
        return True

    def _hand_over(self) -> None:
        """Each slot free now to the oldest waiter that may take it. Every waiter is looked
        at (there are few): a slot of its tenant freed at another receiver counts too."""
        for destination in list(self._waiters):
            for waiter in list(self._waiters[destination]):
                if waiter.handed.done():  # cancelled, its task not yet run to forget it
                    self._forget(destination, waiter)
                elif self._take(waiter.tenant, destination):
                    self._forget(destination, waiter)
                    waiter.handed.set_result(True)
                elif (
                    self.per_destination.in_flight.get(destination, 0) >= self.per_destination.limit
                ):
                    break  # the receiver is full: nobody behind takes it either

    def _forget(self, destination: str, waiter: Waiter) -> None:
        waiting = self._waiters.get(destination)
        if waiting is None:
            return
        if waiter in waiting:
            waiting.remove(waiter)
        if not waiting:
            del self._waiters[destination]

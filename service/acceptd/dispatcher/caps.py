"""A dispatcher's slots per destination and per tenant: full means "come back shortly", or
wait here a little, as many waiting as may be in flight, so one slow receiver or tenant
cannot occupy every slot."""

from __future__ import annotations

import asyncio
import contextlib
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


@dataclass
class Slots:
    """A dispatcher's request slots, shared fairly: at most so many in flight to one
    receiver, and at most so many for one tenant, so a tenant with many slow receivers
    cannot hold every slot while another tenant's webhooks wait. A full cap means "come
    back shortly" (the attempt is deferred, uncounted), or (`take_within`) a short wait
    here, for at most as many waiting attempts per destination and per tenant as may be in
    flight."""

    per_destination: ConcurrencyCaps
    per_tenant: ConcurrencyCaps
    waiting_per_destination: ConcurrencyCaps
    waiting_per_tenant: ConcurrencyCaps
    # Called after every release: deliveries waiting for a slot start (dispatcher/inline.py).
    on_release: Callable[[], None] | None = None
    # Per destination, the attempts waiting in take_within, woken one per slot released.
    _waiters: dict[str, deque[asyncio.Future[None]]] = field(default_factory=dict)

    @classmethod
    def build(cls, per_destination: int, per_tenant: int) -> Slots:
        return cls(
            ConcurrencyCaps(per_destination),
            ConcurrencyCaps(per_tenant),
            ConcurrencyCaps(per_destination),
            ConcurrencyCaps(per_tenant),
        )

    def try_take(self, tenant: str, url: str, endpoint_id: str | None) -> bool:
        if not self.per_tenant.try_acquire(tenant):
            return False
        if not self.per_destination.try_acquire(destination_key(url, endpoint_id)):
            self.per_tenant.release(tenant)
            return False
        return True

    def give_back(self, tenant: str, url: str, endpoint_id: str | None) -> None:
        destination = destination_key(url, endpoint_id)
        self.per_destination.release(destination)
        self.per_tenant.release(tenant)
        self._wake(destination)
        if self.on_release is not None:
            self.on_release()

    async def take_within(
        self, tenant: str, url: str, endpoint_id: str | None, seconds: float
    ) -> bool:
        """A slot now, or one freed within `seconds`. What a queued attempt does before it
        goes back to the queue: behind a long backlog to one receiver, each put-back costs
        Redis round trips and comes back no sooner than its delay, while waiting here takes
        the slot the moment it frees. False at once when as many attempts already wait for
        the destination, or for the tenant, as either may have in flight: waiters hold the
        queue's run slots, and one receiver or tenant must not hold them all. A first
        attempt waiting in dispatcher/inline.py takes a freed slot before these do."""
        if self.try_take(tenant, url, endpoint_id):
            return True
        destination = destination_key(url, endpoint_id)
        if not self.waiting_per_tenant.try_acquire(tenant):
            return False
        if not self.waiting_per_destination.try_acquire(destination):
            self.waiting_per_tenant.release(tenant)
            return False
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(seconds):
                while True:
                    woken: asyncio.Future[None] = loop.create_future()
                    self._waiters.setdefault(destination, deque()).append(woken)
                    try:
                        await woken
                    except BaseException:
                        if woken.cancelled():
                            self._forget(destination, woken)
                        else:  # told of a freed slot, then cut off: the next waiter takes it
                            self._wake(destination)
                        raise
                    if self.try_take(tenant, url, endpoint_id):
                        return True
                    # A first attempt took it (they go first), or this tenant is at its
                    # cap: wait for the next. Not passed on: waiters of one capped tenant
                    # would wake each other in a loop; the wait is bounded anyway.
        except TimeoutError:
            return False
        finally:
            self.waiting_per_destination.release(destination)
            self.waiting_per_tenant.release(tenant)

    def _wake(self, destination: str) -> None:
        """The longest waiting attempt for `destination` tries for the slot just freed."""
        waiters = self._waiters.get(destination)
        while waiters:
            woken = waiters.popleft()
            if not woken.done():
                woken.set_result(None)
                break
        if waiters is not None and not waiters:
            del self._waiters[destination]

    def _forget(self, destination: str, woken: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(destination)
        if waiters is None:
            return
        with contextlib.suppress(ValueError):  # already taken off by _wake
            waiters.remove(woken)
        if not waiters:
            del self._waiters[destination]

"""A dispatcher's slots per destination and per tenant: full means "come back shortly", or
for a few queued attempts "wait here a little", so one slow receiver or tenant cannot
occupy every slot."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from yarl import URL

from acceptd.core.caps import ConcurrencyCaps


def destination_key(url: str, endpoint_id: str | None) -> str:
    """A registered endpoint is its own destination; a callback URL's is its origin."""
    if endpoint_id:
        return endpoint_id
    parsed = URL(url)
    return f"{parsed.scheme}://{parsed.host}:{parsed.port}"


# Receivers whose last freed slot is remembered, before the ones that freed none within
# FREED_AT_SECONDS (longer than any wait) are forgotten.
FREED_AT_KEPT = 4096
FREED_AT_SECONDS = 1.0


@dataclass(eq=False)
class Waiter:
    """A queued attempt waiting for a slot; `handed` gets True once a slot is taken for it."""

    tenant: str
    destination: str
    handed: asyncio.Future[bool]


@dataclass
class Slots:
    """A dispatcher's request slots, shared fairly: at most so many in flight to one
    receiver, and at most so many for one tenant, so a tenant with many slow receivers
    cannot hold every slot while another tenant's webhooks wait. A full cap means "come
    back shortly" (the attempt is deferred, uncounted).

    A queued attempt whose receiver is full may instead wait here a little
    (`take_within`): a slot freed at its receiver, or one of its tenant's freed elsewhere,
    is handed to the oldest waiter that may take it, without another trip through the
    queue. Waiting holds one of the queue's run slots, so few may wait: `max_waiting` in
    all; of one tenant, a fifth of its share, and never so many that its requests and
    waiters together pass its share; per receiver, as many as it may have in flight; and
    none while first attempts wait for that receiver in dispatcher/inline.py
    (`inline_backlog`), which take every slot it frees first; and none for a receiver that
    has not freed a slot within the wait (one that stalls would hold the run slot for
    nothing: an attempt for it is put back at once, as before waiting existed)."""

    per_destination: ConcurrencyCaps
    per_tenant: ConcurrencyCaps
    waiting_per_tenant: ConcurrencyCaps
    max_waiting: int
    # Called after every release: deliveries waiting for a slot start (dispatcher/inline.py).
    on_release: Callable[[], None] | None = None
    # Whether first attempts wait for a destination in dispatcher/inline.py.
    inline_backlog: Callable[[str], bool] | None = None
    # The attempts waiting in take_within: per destination, oldest first; per tenant.
    _by_destination: dict[str, deque[Waiter]] = field(default_factory=dict)
    _by_tenant: dict[str, list[Waiter]] = field(default_factory=dict)
    _waiting: int = 0
    # When each receiver last freed a slot (the loop's clock), for the last second or so.
    _freed_at: dict[str, float] = field(default_factory=dict)
    _prune_above: int = FREED_AT_KEPT

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
        destination = destination_key(url, endpoint_id)
        self.per_destination.release(destination)
        self.per_tenant.release(tenant)
        self._note_freed(destination)
        if self.on_release is not None:
            self.on_release()  # first attempts waiting inline go first
        if self._waiting:
            self._hand_over(self._by_destination.get(destination))
            self._hand_over(self._by_tenant.get(tenant))

    async def take_within(
        self, tenant: str, url: str, endpoint_id: str | None, seconds: float
    ) -> bool:
        """A slot now, or one handed over within `seconds`; False when none was, or when
        this attempt may not wait (see the class)."""
        destination = destination_key(url, endpoint_id)
        if self._take(tenant, destination):
            return True
        if not self._may_wait(tenant, destination, seconds):
            return False
        self.waiting_per_tenant.try_acquire(tenant)  # _may_wait saw room
        waiter = Waiter(tenant, destination, asyncio.get_running_loop().create_future())
        self._by_destination.setdefault(destination, deque()).append(waiter)
        self._by_tenant.setdefault(tenant, []).append(waiter)
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
            self._forget(waiter)
        return True

    def _note_freed(self, destination: str) -> None:
        now = asyncio.get_running_loop().time()
        self._freed_at[destination] = now
        if len(self._freed_at) > self._prune_above:
            # Those that freed none lately go. The next pruning waits until the map has
            # doubled again, so that many receivers freeing slots at once do not have every
            # release rebuild it.
            recent = {d: at for d, at in self._freed_at.items() if now - at <= FREED_AT_SECONDS}
            self._freed_at = recent
            self._prune_above = max(FREED_AT_KEPT, 2 * len(recent))

    def _may_wait(self, tenant: str, destination: str, seconds: float) -> bool:
        waiting_here = self._by_destination.get(destination)
        tenant_waiting = self.waiting_per_tenant.in_flight.get(tenant, 0)
        freed_at = self._freed_at.get(destination)
        now = asyncio.get_running_loop().time()
        return not (
            freed_at is None
            or now - freed_at > seconds
            or self._waiting >= self.max_waiting
            or tenant_waiting >= self.waiting_per_tenant.limit
            or self.per_tenant.in_flight.get(tenant, 0) + tenant_waiting >= self.per_tenant.limit
            or (waiting_here is not None and len(waiting_here) >= self.per_destination.limit)
            or (self.inline_backlog is not None and self.inline_backlog(destination))
        )

    def _hand_over(self, waiters: Iterable[Waiter] | None) -> None:
        """The oldest of `waiters` that may take a slot now gets it (one slot was freed):
        those of the freed slot's receiver, then those of its tenant at other receivers,
        which its tenant's cap may have held back."""
        for waiter in list(waiters or ()):
            if waiter.handed.done():  # cancelled, its task not yet run to forget it
                self._forget(waiter)
            elif self._take(waiter.tenant, waiter.destination):
                self._forget(waiter)
                waiter.handed.set_result(True)
                return

    def _forget(self, waiter: Waiter) -> None:
        for index, key in (
            (self._by_destination, waiter.destination),
            (self._by_tenant, waiter.tenant),
        ):
            waiting = index.get(key)
            if waiting is not None and waiter in waiting:
                waiting.remove(waiter)
                if not waiting:
                    del index[key]

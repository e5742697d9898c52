"""A dispatcher's request slots (dispatcher/caps.py): a queued attempt may wait a little for
its receiver's slot, handed over in order the moment one frees, and few may wait: the
waiting hold the queue's run slots. In process: the slots are one process's."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from acceptd.core.statuses import DeliveryStatus
from acceptd.dispatcher.attempts import Attempts
from acceptd.dispatcher.caps import FREED_AT_KEPT, Slots

pytestmark = pytest.mark.timeout(10)

URL = "https://receiver.example/hook"
OTHER_URL = "https://other.example/hook"


def _slots(per_destination: int = 1, per_tenant: int = 10, max_waiting: int = 25) -> Slots:
    return Slots.build(per_destination, per_tenant, max_waiting=max_waiting)


def _fill(slots: Slots, url: str = URL, tenant: str = "holder") -> None:
    """Every slot of the receiver taken, one of them just freed and taken again: a receiver
    that answers (one that has not freed a slot lately is not waited for)."""
    while slots.try_take(tenant, url, None):
        pass
    slots.give_back(tenant, url, None)
    assert slots.try_take(tenant, url, None)


def _wait(slots: Slots, tenant: str, url: str = URL, seconds: float = 5) -> asyncio.Task[bool]:
    return asyncio.create_task(slots.take_within(tenant, url, None, seconds))


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _nothing_left(slots: Slots) -> None:
    assert not slots._by_destination
    assert not slots._by_tenant
    assert slots._waiting == 0
    assert not slots.waiting_per_tenant.in_flight


async def test_a_waiter_is_handed_the_slot_the_moment_it_frees() -> None:
    slots = _slots()
    _fill(slots)
    waiting = _wait(slots, "t1")
    await _settle()
    assert not waiting.done()
    slots.give_back("holder", URL, None)
    assert await asyncio.wait_for(waiting, 1) is True
    assert slots.per_tenant.in_flight == {"t1": 1}  # it holds the slot now
    _nothing_left(slots)


async def test_no_slot_within_the_wait_is_false_and_leaves_nothing_behind() -> None:
    slots = _slots()
    _fill(slots)
    assert await slots.take_within("t1", URL, None, 0.05) is False
    _nothing_left(slots)


async def _two_waiting(slots: Slots) -> tuple[asyncio.Task[bool], asyncio.Task[bool]]:
    """t1 waiting for the full receiver, then t2."""
    _fill(slots)
    first = _wait(slots, "t1")
    await _settle()
    second = _wait(slots, "t2")
    await _settle()
    return first, second


async def test_the_oldest_waiter_goes_first_even_against_a_newcomer() -> None:
    slots = _slots(per_destination=2)
    oldest, next_one = await _two_waiting(slots)
    slots.give_back("holder", URL, None)
    # A run arriving in the same turn finds the slot already handed over.
    assert slots.try_take("t3", URL, None) is False
    assert await asyncio.wait_for(oldest, 1) is True
    assert not next_one.done()
    slots.give_back("t1", URL, None)
    assert await asyncio.wait_for(next_one, 1) is True


async def test_no_more_wait_for_a_receiver_than_it_may_have_in_flight() -> None:
    slots = _slots(per_destination=2)
    _fill(slots)
    waiters = [_wait(slots, f"t{i}") for i in range(2)]
    await _settle()
    # A third is refused at once: it goes back to the queue and leaves its run slot free.
    assert await asyncio.wait_for(slots.take_within("t9", URL, None, 5), 0.5) is False
    for _ in waiters:
        slots.give_back("holder", URL, None)
    assert await asyncio.gather(*waiters) == [True, True]


async def test_one_tenant_may_have_a_fifth_of_its_share_waiting() -> None:
    slots = _slots(per_destination=1, per_tenant=10)
    urls = [f"https://r{i}.example/hook" for i in range(4)]
    for url in urls:
        _fill(slots, url)
    waiters = [_wait(slots, "greedy", url) for url in urls[:2]]
    await _settle()
    assert await asyncio.wait_for(slots.take_within("greedy", urls[2], None, 5), 0.5) is False
    # Another tenant may still wait.
    other = _wait(slots, "other", urls[3])
    await _settle()
    assert not other.done()
    for task in [*waiters, other]:
        task.cancel()
    await asyncio.gather(*waiters, other, return_exceptions=True)
    _nothing_left(slots)


async def test_no_more_than_max_waiting_wait_in_all() -> None:
    slots = _slots(max_waiting=3)
    urls = [f"https://r{i}.example/hook" for i in range(5)]
    for url in urls:
        _fill(slots, url)
    waiters = [_wait(slots, f"t{i}", url) for i, url in enumerate(urls[:3])]
    await _settle()
    assert await asyncio.wait_for(slots.take_within("t9", urls[4], None, 5), 0.5) is False
    for task in waiters:
        task.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    _nothing_left(slots)


async def test_a_tenants_requests_and_waiters_stay_within_its_share() -> None:
    """A tenant whose requests nearly fill its share may wait only for what is left of it:
    it cannot hold more of the queue's run slots by waiting than by sending."""
    slots = _slots(per_destination=1, per_tenant=10)
    for i in range(9):
        assert slots.try_take("t1", f"https://busy{i}.example/hook", None)
    _fill(slots)
    _fill(slots, OTHER_URL)
    first = _wait(slots, "t1")
    await _settle()
    assert not first.done()  # 9 requests and 1 waiting: its share of 10
    assert await asyncio.wait_for(slots.take_within("t1", OTHER_URL, None, 5), 0.5) is False
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    _nothing_left(slots)


async def test_no_wait_while_first_attempts_wait_inline_for_the_receiver() -> None:
    """They take every slot it frees first: waiting would hold a run slot for nothing."""
    slots = _slots()
    _fill(slots)
    slots.inline_backlog = {"https://receiver.example:443"}.__contains__
    assert await asyncio.wait_for(slots.take_within("t1", URL, None, 5), 0.5) is False
    _fill(slots, OTHER_URL)
    other = _wait(slots, "t1", OTHER_URL, 0.05)  # another receiver: it waits
    await _settle()
    assert not other.done()
    assert await other is False
    _nothing_left(slots)


async def test_no_wait_for_a_receiver_that_has_not_freed_a_slot_lately() -> None:
    """One that stalls would have the waiter hold a run slot for nothing."""
    slots = _slots()
    assert slots.try_take("holder", URL, None)  # taken, never freed
    assert await asyncio.wait_for(slots.take_within("t1", URL, None, 5), 0.5) is False
    _nothing_left(slots)


async def test_the_receivers_remembered_are_those_that_freed_a_slot_lately() -> None:
    slots = _slots()
    slots._freed_at = {f"https://old{i}.example:443": -100.0 for i in range(FREED_AT_KEPT)}
    assert slots.try_take("t", URL, None)
    slots.give_back("t", URL, None)  # one past the bound: those of long ago go
    assert list(slots._freed_at) == ["https://receiver.example:443"]


async def test_many_receivers_freeing_at_once_do_not_rebuild_the_map_at_every_release() -> None:
    slots = _slots()
    rebuilt = 0
    for i in range(3 * FREED_AT_KEPT):
        url = f"https://r{i}.example/hook"
        assert slots.try_take("t", url, None)
        before = slots._freed_at
        slots.give_back("t", url, None)
        rebuilt += slots._freed_at is not before
    assert len(slots._freed_at) == 3 * FREED_AT_KEPT  # all freed a slot lately: all kept
    assert rebuilt <= 2  # at twice the size each time, not at every release past the bound


async def test_a_tenant_at_its_own_cap_does_not_wait() -> None:
    """Its slots free only as its own receivers answer: waiting would hold a run slot for
    the tenant that already has its share."""
    slots = _slots(per_destination=5, per_tenant=2)
    assert slots.try_take("t1", OTHER_URL, None)
    assert slots.try_take("t1", OTHER_URL, None)
    assert await asyncio.wait_for(slots.take_within("t1", URL, None, 5), 0.5) is False
    _nothing_left(slots)


async def test_a_first_attempt_waiting_inline_takes_a_freed_slot_first() -> None:
    slots = _slots()
    _fill(slots)
    queued = _wait(slots, "t1")
    await _settle()

    def inline_pump() -> None:  # dispatcher/inline.py's, called on every release
        slots.try_take("inline", URL, None)

    slots.on_release = inline_pump
    slots.give_back("holder", URL, None)
    await _settle()
    assert not queued.done()  # the inline delivery took it; this one waits for the next
    slots.on_release = None
    slots.give_back("inline", URL, None)
    assert await asyncio.wait_for(queued, 1) is True


async def test_a_waiter_handed_a_slot_as_it_is_cut_off_passes_it_on() -> None:
    slots = _slots(per_destination=2)
    first, second = await _two_waiting(slots)
    slots.give_back("holder", URL, None)  # handed to the first...
    first.cancel()  # ...which is cancelled before it runs again (its worker stopping)
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, 1) is True  # the slot was not lost
    assert slots.per_tenant.in_flight == {"holder": 1, "t2": 1}


async def test_a_slot_of_its_tenant_freed_elsewhere_reaches_a_waiter() -> None:
    """t1 waits at a shared receiver; it reaches its own cap meanwhile, so the receiver's
    freed slot passes it by for the next waiter; when t1's slot at another receiver frees,
    it takes the receiver's next free slot without waiting out its time."""
    slots = _slots(per_destination=2, per_tenant=2)
    _fill(slots)
    capped = _wait(slots, "t1")
    await _settle()
    assert slots.try_take("t1", OTHER_URL, None)
    assert slots.try_take("t1", "https://third.example/hook", None)  # t1 at its cap now
    behind = _wait(slots, "t2")
    await _settle()
    slots.give_back("holder", URL, None)
    assert await asyncio.wait_for(behind, 1) is True  # not held up behind the capped one
    assert not capped.done()
    slots.give_back("holder", URL, None)  # free, but t1 is still at its cap
    await _settle()
    assert not capped.done()
    slots.give_back("t1", OTHER_URL, None)
    assert await asyncio.wait_for(capped, 1) is True
    _nothing_left(slots)


async def test_without_max_waiting_nothing_waits() -> None:
    slots = Slots.build(1, 10)
    _fill(slots)
    assert await asyncio.wait_for(slots.take_within("t1", URL, None, 5), 0.5) is False
    _nothing_left(slots)


class _Reads:
    """Stand-ins for the two store reads of a queued attempt (the delivery, its endpoint):
    what is tested is the slot's bookkeeping around them, not Redis. The read after the wait
    raises, or hangs until cancelled."""

    def __init__(self, second: str) -> None:
        self.second = second
        self.calls = 0

    async def get(self, record_id: str) -> SimpleNamespace:
        if record_id.startswith("dlv"):
            self.calls += 1
            if self.calls == 2 and self.second == "raise":
                raise ConnectionError("the store went away")
            if self.calls == 2:
                await asyncio.sleep(30)
            return SimpleNamespace(
                id=record_id,
                tenant="t1",
                url=URL,
                endpoint_id="ep_1",
                status=DeliveryStatus.PENDING,
                attempt_count=0,
            )
        return SimpleNamespace(id=record_id, rate_limit_per_second=None, disabled=False)


@pytest.mark.parametrize("second", ["raise", "cancel"])
async def test_a_slot_taken_by_waiting_goes_back_whatever_ends_the_attempt(second: str) -> None:
    slots = _slots()
    reads = _Reads(second)
    attempts = Attempts(None, None, None, None, slots, reads, reads, None, None, None, None)  # type: ignore[arg-type]
    assert slots.try_take("holder", URL, "ep_1")
    slots.give_back("holder", URL, "ep_1")  # a receiver that answers...
    assert slots.try_take("holder", URL, "ep_1")  # ...and is full
    queued = asyncio.create_task(attempts.run_queued("dlv_1", 1))
    await _settle()
    slots.give_back("holder", URL, "ep_1")  # handed to the queued attempt, which reads again
    await _settle()
    if second == "cancel":
        queued.cancel()  # its arq job timed out, or its worker stops
    with pytest.raises((ConnectionError, asyncio.CancelledError)):
        await queued
    assert not slots.per_destination.in_flight
    assert not slots.per_tenant.in_flight

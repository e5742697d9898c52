"""A dispatcher's request slots (dispatcher/caps.py): a queued attempt waits a little for
its receiver's slot instead of going back to the queue, and waiters stay bounded per
receiver and per tenant. In process: the slots are one process's."""

from __future__ import annotations

import asyncio

import pytest

from acceptd.dispatcher.caps import Slots

pytestmark = pytest.mark.timeout(10)

URL = "https://receiver.example/hook"
OTHER_URL = "https://other.example/hook"


def _full(per_destination: int = 1, per_tenant: int = 10) -> Slots:
    slots = Slots.build(per_destination, per_tenant)
    while slots.try_take("t1", URL, None):
        pass
    return slots


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_waiter_takes_the_slot_the_moment_it_is_given_back() -> None:
    slots = _full()
    waiting = asyncio.create_task(slots.take_within("t1", URL, None, 5))
    await _settle()
    assert not waiting.done()
    slots.give_back("t1", URL, None)
    assert await asyncio.wait_for(waiting, 1) is True
    assert slots.per_destination.in_flight  # it holds the slot now
    assert not slots.waiting_per_destination.in_flight
    assert not slots._waiters


async def test_no_slot_within_the_wait_is_false_and_leaves_nothing_behind() -> None:
    slots = _full()
    assert await slots.take_within("t1", URL, None, 0.05) is False
    assert not slots.waiting_per_destination.in_flight
    assert not slots.waiting_per_tenant.in_flight
    assert not slots._waiters


async def test_no_more_wait_for_a_receiver_than_it_may_have_in_flight() -> None:
    slots = _full(per_destination=2)
    waiters = [asyncio.create_task(slots.take_within("t1", URL, None, 5)) for _ in range(2)]
    await _settle()
    # A third is refused at once: it goes back to the queue and leaves its run slot free.
    assert await asyncio.wait_for(slots.take_within("t2", URL, None, 5), 0.5) is False
    for _ in waiters:
        slots.give_back("t1", URL, None)
    assert await asyncio.gather(*waiters) == [True, True]


async def test_no_more_wait_for_a_tenant_than_it_may_have_in_flight() -> None:
    slots = Slots.build(per_destination=1, per_tenant=2)
    assert slots.try_take("t1", URL, None)
    assert slots.try_take("t1", OTHER_URL, None)
    waiters = [
        asyncio.create_task(slots.take_within("t1", url, None, 5)) for url in (URL, OTHER_URL)
    ]
    await _settle()
    third = "https://third.example/hook"
    assert await asyncio.wait_for(slots.take_within("t1", third, None, 5), 0.5) is False
    # Another tenant still waits for the same receiver.
    other = asyncio.create_task(slots.take_within("t2", third, None, 0.05))
    assert await other is True  # free for t2: nobody holds the third receiver
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    assert not slots.waiting_per_tenant.in_flight
    assert not slots._waiters


async def test_a_first_attempt_waiting_inline_takes_a_freed_slot_first() -> None:
    slots = _full()
    queued = asyncio.create_task(slots.take_within("t1", URL, None, 5))
    await _settle()

    # dispatcher/inline.py's pump: called on every release, it takes the slot at once.
    def inline_pump() -> None:
        slots.try_take("t1", URL, None)

    slots.on_release = inline_pump
    slots.give_back("t1", URL, None)
    await _settle()
    assert not queued.done()  # woken, found it taken, waits for the next
    slots.on_release = None
    slots.give_back("t1", URL, None)
    assert await asyncio.wait_for(queued, 1) is True


async def test_a_waiter_cut_off_as_it_is_woken_passes_the_slot_on() -> None:
    slots = _full(per_destination=2)
    first = asyncio.create_task(slots.take_within("t1", URL, None, 5))
    await _settle()
    second = asyncio.create_task(slots.take_within("t2", URL, None, 5))
    await _settle()
    slots.give_back("t1", URL, None)  # wakes the first...
    first.cancel()  # ...which is cancelled before it runs again (its worker stopping)
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, 1) is True  # the freed slot was not lost

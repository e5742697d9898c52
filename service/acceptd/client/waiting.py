"""One loop for `wait` and `wait_batch`: poll until finished, by long-poll or by backoff."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from acceptd.client.errors import WaitTimeout
from acceptd.wire.models import Batch, Job

T = TypeVar("T", Job, Batch)

# (last state seen or None, seconds the server may hold the request) -> (state, Retry-After)
Fetch = Callable[[T | None, float], Coroutine[Any, Any, tuple[T, float | None]]]


async def settle(
    fetch: Fetch[T],
    finished: Callable[[T], bool],
    *,
    timeout: float,  # noqa: ASYNC109 - a deadline across many polls
    longest_hold: float,
    max_interval: float,
    on_update: Callable[[T], None] | None,
    long_poll: bool,
    early: asyncio.Future[T] | None = None,
) -> T:
    """The state once `finished`. Raises WaitTimeout (with the last state) when `timeout`
    passes. With `long_poll` (and no `on_update`) each request is held by the server until
    the state changes; otherwise polls no faster than Retry-After, backing off toward
    `max_interval`. `early` (a webhook, say) ends the wait when it resolves first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    interval = 0.25
    state: T | None = None
    hint: float | None = None
    holding = long_poll and on_update is None
    while True:
        remaining = deadline - loop.time()
        if state is not None and remaining <= 0:
            raise WaitTimeout(state, timeout)
        polled: asyncio.Task[tuple[T, float | None]]
        if holding and state is not None:
            polled = loop.create_task(fetch(state, min(remaining, longest_hold)))
        else:
            delay = 0.0
            if state is not None:
                delay = min(max_interval, max(hint or 0.0, interval), remaining)
                interval = min(max_interval, interval * 1.5)
            polled = loop.create_task(_after(delay, fetch, state))
        waiting: set[asyncio.Future[Any]] = {polled}
        if early is not None:
            waiting.add(early)
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not polled.done():
                # Awaited, not just cancelled: its request closes its connection before
                # the caller closes the client; left running, the request outlived the
                # session and its connection was never closed (a ResourceWarning).
                polled.cancel()
                await asyncio.gather(polled, return_exceptions=True)
        if early is not None and early.done():
            return early.result()
        state, hint = polled.result()
        if on_update is not None:
            on_update(state)
        if finished(state):
            return state


async def _after(delay: float, fetch: Fetch[T], state: T | None) -> tuple[T, float | None]:
    await asyncio.sleep(delay)
    return await fetch(state, 0.0)

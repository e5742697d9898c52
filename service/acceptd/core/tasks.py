"""Stopping a task for sure: on Python 3.11 a cancellation can be lost (asyncio.wait_for
swallows one that arrives as its awaitable completes; a client that is connecting can lose
one too), and a loop whose cancellation was lost runs forever, with whatever waits for it
(a role's shutdown, `acceptd dev` after SIGTERM)."""

from __future__ import annotations

import asyncio
from typing import Any

CANCELS = 10


async def cancel_until_done(task: asyncio.Task[Any], wait: float = 0.5) -> bool:
    """Cancels `task` until it ends, waiting `wait` seconds after each cancel, CANCELS
    times at most; whether it ended. Its result or error is left in it."""
    for _ in range(CANCELS):
        task.cancel()
        await asyncio.wait([task], timeout=wait)
        if task.done():
            return True
    return False

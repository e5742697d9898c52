"""Which tasks a block of test code makes its event loop run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def tasks_made() -> Iterator[list[asyncio.Task[Any]]]:
    """Every task the running loop makes inside the block, in the order made."""
    loop = asyncio.get_running_loop()
    made: list[asyncio.Task[Any]] = []

    def recording(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        made.append(task)
        return task

    loop.set_task_factory(recording)
    try:
        yield made
    finally:
        loop.set_task_factory(None)

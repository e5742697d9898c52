"""Stopping an arq Worker we run as a task (under `dev`, and in tests) without losing work.

arq's own `close()` cancels in-flight jobs and then gathers them, which re-raises their
CancelledError and cuts its own clean-up short. Here: stop taking jobs, give in-flight ones
a grace period, cancel what is left (our handlers hand their job back to the queue), and
only then let arq close its pool.
"""

from __future__ import annotations

import asyncio
import contextlib

from arq import Worker


async def stop_gracefully(worker: Worker, main: asyncio.Task[None], grace: float) -> None:
    worker.allow_pick_jobs = False
    in_flight = [task for task in worker.tasks.values() if not task.done()]
    if in_flight:
        await asyncio.wait(in_flight, timeout=grace)
    for task in worker.tasks.values():
        task.cancel()
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    worker.tasks.clear()
    await worker.close()
    main.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await main

"""Stopping an arq Worker we run as a task (under `dev`, and in tests) without losing work.

arq's own `close()` cancels in-flight jobs and then gathers them, which re-raises their
CancelledError and cuts its own clean-up short. Here: stop taking jobs, give in-flight ones
a grace period, cancel what is left (our handlers hand their job back to the queue), and
only then let arq close its pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from acceptd.core.tasks import CANCELS, cancel_until_done
from acceptd.queue.arqseams import Worker
from acceptd.runtime.eventloop import install_stop_signals
from acceptd.store.outages import StoreUnavailable

log = logging.getLogger(__name__)


async def stop_gracefully(worker: Worker, main: asyncio.Task[None], grace: float) -> None:
    worker.allow_pick_jobs = False
    in_flight = [task for task in worker.tasks.values() if not task.done()]
    if in_flight:
        await asyncio.wait(in_flight, timeout=grace)
    for task in worker.tasks.values():
        task.cancel()
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    worker.tasks.clear()
    # Cancelled until it ends: a lost cancellation left `dev` running after SIGTERM.
    if not await cancel_until_done(main, wait=1.0):
        log.warning("the worker's loop did not end after %d cancellations", CANCELS)
    with contextlib.suppress(asyncio.CancelledError):
        if main.done():
            main.result()
    try:
        await worker.close()
    except StoreUnavailable as exc:
        log.warning("%s while stopping; queued work is safe in Redis", exc.reason)


async def run_until_signalled(worker: Worker, grace: float) -> None:
    """A role's whole life: run until SIGTERM/SIGINT, then stop gracefully (worker created
    with handle_signals=False, so this one path owns shutdown)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    install_stop_signals(stop)
    main = loop.create_task(worker.async_run())
    stopped = loop.create_task(stop.wait())
    await asyncio.wait([main, stopped], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if main.done():
        main.result()  # the worker ended by itself: surface why
        return
    log.info("stopping: in-flight work has %s s to finish", grace)
    await stop_gracefully(worker, main, grace)

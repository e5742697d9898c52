"""Roles run in-process for a test: started in the background, stopped within a bound
(a stop that hangs fails the test with every task's stack)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from acceptd.core.settings import Settings
from acceptd.dispatcher.assembly import DispatcherRuntime
from acceptd.dispatcher.role import create_dispatcher
from acceptd.runtime.stopping import stop_gracefully
from acceptd.store import keys
from acceptd.store.connection import open_shards
from tests.support.sharded import merged


async def stop_or_explain(running: Any, task: asyncio.Task[None]) -> None:
    """stop_gracefully, bounded: a stop that hangs fails with every task's stack."""
    try:
        await asyncio.wait_for(stop_gracefully(running, task, grace=1.0), 15)
    except TimeoutError as exc:
        import io

        stacks = io.StringIO()
        for pending in asyncio.all_tasks():
            pending.print_stack(file=stacks)
        raise AssertionError(f"worker did not stop within 15 s:\n{stacks.getvalue()}") from exc


async def queue_state(settings: Settings) -> dict[str, Any]:
    """What a stuck burst run leaves behind, for the failure message."""
    shards = await open_shards(settings)
    try:
        queued = await merged(
            shards, lambda pipe, shard: pipe.zrange(keys.job_queue(shard), 0, -1, withscores=True)
        )
        state: dict[str, Any] = {"now_ms": int(time.time() * 1000), "queue": queued}
        for job_id, _score in queued:
            conn = shards.for_key(keys.job(job_id))
            state[job_id] = {
                "arq_job": await conn.get(keys.arq_job(job_id)),
                "in_progress_ttl": await conn.pttl(keys.arq_in_progress(job_id)),
                "record": await conn.hgetall(keys.job(job_id)),  # type: ignore[misc]
            }
        return state
    finally:
        await shards.aclose()


@contextlib.asynccontextmanager
async def running_dispatcher(settings: Settings) -> AsyncIterator[Any]:
    """A dispatcher running in the background while the block runs; yields its runtime."""
    ready: asyncio.Future[DispatcherRuntime] = asyncio.get_running_loop().create_future()

    async def on_ready(runtime: DispatcherRuntime) -> None:
        ready.set_result(runtime)

    running = create_dispatcher(settings, handle_signals=False, on_ready=on_ready)
    task = asyncio.create_task(running.async_run())
    try:
        yield await asyncio.wait_for(ready, 10)
    finally:
        await stop_or_explain(running, task)

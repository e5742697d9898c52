"""GET /v1/jobs/{id}/events: the job's status and progress as Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
from asyncio import FIRST_COMPLETED
from typing import Any

from aiohttp import web
from aiohttp_sse import sse_response

from acceptd.api import state
from acceptd.api.owned import owned_job
from acceptd.api.waiters import waiter_slot
from acceptd.store.job_record import JobRecord
from acceptd.wire.resources import job_resource

# A client whose stream dropped reconnects after this; its first event is the state then.
RECONNECT_MS = 1000


def _event(job: JobRecord, seen: JobRecord | None) -> str | None:
    if seen is None or job.status is not seen.status:
        return "status"
    if job.progress != seen.progress:
        return "progress"
    return None


async def job_events(request: web.Request) -> web.StreamResponse:
    """A `status` event with the job resource now and on every status change, a `progress`
    event on every progress report; the stream ends after the terminal status, when the
    client goes away (found by the keep-alive), or after ACCEPTD_STREAM_MAX_SECONDS (the
    client reconnects; its first event is the state then)."""
    job = await owned_job(request)  # 404 as a problem, before the stream starts
    settings = request.app[state.SETTINGS]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.stream_max_seconds
    with waiter_slot(request):
        async with (
            request.app[state.CHANGES].watch(job.id) as changes,
            sse_response(request, ping_interval=settings.stream_ping_seconds) as stream,
        ):
            gone = asyncio.ensure_future(stream.wait())  # the keep-alive failed: client left
            try:
                seen: JobRecord | None = None
                while True:
                    job = await owned_job(request)
                    kind = _event(job, seen)
                    if kind is not None:
                        await stream.send(
                            json.dumps(job_resource(job)),
                            event=kind,
                            id=str(job.attempts),
                            # Tells EventSource (and our client) how soon to reconnect.
                            retry=RECONNECT_MS if seen is None else None,
                        )
                        seen = job
                    if job.status.terminal or not await _next_change(
                        changes, gone, deadline - loop.time()
                    ):
                        break
            finally:
                gone.cancel()
    return stream


async def _next_change(
    changes: asyncio.Queue[str], gone: asyncio.Future[None], seconds: float
) -> bool:
    """True when the job changed; False when the client left or the stream's time is up."""
    if seconds <= 0 or gone.done():
        return False
    change: asyncio.Future[Any] = asyncio.ensure_future(changes.get())
    try:
        waiting: set[asyncio.Future[Any]] = {change, gone}
        done, _ = await asyncio.wait(waiting, timeout=seconds, return_when=FIRST_COMPLETED)
        return change in done
    finally:
        change.cancel()  # also when this handler is cancelled: no task outlives the stream

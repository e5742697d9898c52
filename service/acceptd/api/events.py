"""GET /v1/jobs/{id}/events: the job's status and progress as Server-Sent Events."""

from __future__ import annotations

import json

from aiohttp import web
from aiohttp_sse import sse_response

from acceptd.api import state
from acceptd.api.owned import owned_job
from acceptd.store.jobs import JobRecord
from acceptd.wire.resources import job_resource


def _event(job: JobRecord, seen: JobRecord | None) -> str | None:
    if seen is None or job.status is not seen.status:
        return "status"
    if job.progress != seen.progress:
        return "progress"
    return None


async def job_events(request: web.Request) -> web.StreamResponse:
    """A `status` event with the job resource now and on every status change, a `progress`
    event on every progress report; the stream ends after the terminal status."""
    job = await owned_job(request)  # 404 as a problem, before the stream starts
    async with (
        request.app[state.CHANGES].watch(job.id) as changes,
        sse_response(request) as stream,
    ):
        seen: JobRecord | None = None
        while True:
            job = await owned_job(request)
            kind = _event(job, seen)
            if kind is not None:
                await stream.send(json.dumps(job_resource(job)), event=kind, id=str(job.attempts))
                seen = job
            if job.status.terminal:
                break
            await changes.get()
    return stream

"""The caller's own resources by id: 404 alike for none and for another tenant's."""

from __future__ import annotations

from aiohttp import web

from acceptd.api import state
from acceptd.api.problems import NotFound
from acceptd.core import ids
from acceptd.store.batches import BatchRecord
from acceptd.store.job_record import JobRecord
from acceptd.store.layouts import JobField


async def owned_job(request: web.Request) -> JobRecord:
    job_id = request.match_info["job_id"]
    job = None
    if ids.looks_like("job", job_id):
        job = await request.app[state.JOBS].get(job_id, request[state.TENANT])
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


async def owned_job_id(request: web.Request) -> str:
    """The caller's job's id, its ownership checked on one field: for reads that return
    none of the record (whose input and result may weigh megabytes)."""
    job_id = request.match_info["job_id"]
    if ids.looks_like("job", job_id):
        [(tenant,)] = await request.app[state.JOBS].fields_of([job_id], JobField.TENANT)
        if tenant == request[state.TENANT]:
            return job_id
    raise NotFound(f"no job {job_id}")


async def find_batch(request: web.Request, batch_id: str) -> BatchRecord:
    """The tenant's batch; 404 for none, and alike for another tenant's."""
    batch = None
    if ids.looks_like("bat", batch_id):
        batch = await request.app[state.BATCHES].get(batch_id, request[state.TENANT])
    if batch is None:
        raise NotFound(f"no batch {batch_id}")
    return batch


async def owned_batch(request: web.Request) -> BatchRecord:
    return await find_batch(request, request.match_info["batch_id"])

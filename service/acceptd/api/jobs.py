"""/v1/jobs: submit, get, cancel (the list: api/joblist.py)."""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any

from aiohttp import web

from acceptd.api import idempotency, state
from acceptd.api.body import read_model
from acceptd.api.owned import owned_job
from acceptd.api.problems import BadRequest, Conflict, NotFound
from acceptd.api.respond import json_response
from acceptd.api.validation import check_callback, check_job
from acceptd.api.waiters import waiter_slot
from acceptd.core import tracing
from acceptd.core.clock import now_ms
from acceptd.core.statuses import JobStatus
from acceptd.jobs.registry import JobDefinition
from acceptd.runtime.metrics import jobs_submitted
from acceptd.store.job_record import JobRecord, NewJob
from acceptd.wire.models import SubmitJob
from acceptd.wire.resources import job_path, job_resource

MAX_SCHEDULED_RETRY_AFTER = 3600


def job_response(request: web.Request, job: JobRecord, *, created: bool = False) -> web.Response:
    """202 + Retry-After while the job is not terminal; 200 once it is (Azure async pattern)."""
    headers: dict[str, str] = {}
    status = 200
    if created or not job.status.terminal:
        status = 202
        retry_after = request.app[state.SETTINGS].retry_after_seconds
        if job.status is JobStatus.SCHEDULED and job.run_at_ms is not None:
            # Nothing happens before the job is due: no point polling sooner.
            until_due = math.ceil((job.run_at_ms - now_ms()) / 1000)
            retry_after = max(retry_after, min(until_due, MAX_SCHEDULED_RETRY_AFTER))
        headers["Retry-After"] = str(retry_after)
    if created:
        headers["Location"] = job_path(job.id)
    return json_response(job_resource(job), status, headers)


async def submit_job(request: web.Request) -> web.Response:
    """A span for the submit (continuing the caller's `traceparent`); the job keeps its id."""
    parent = request.headers.get("traceparent")
    with tracing.span("POST /v1/jobs", parent, kind="server") as own:
        return await _submit_job(request, own)


async def _submit_job(request: web.Request, traceparent: str | None) -> web.Response:
    app = request.app
    settings = app[state.SETTINGS]
    tenant: str = request[state.TENANT]
    submit, raw = await read_model(request, SubmitJob, settings.max_body_bytes)
    definition = check_job(app, (), submit.type, submit.input, submit.metadata)
    store = app[state.JOBS]
    limits = concurrency(definition, submit.concurrency_key, submit.concurrency_limit)
    held, existing_id = await idempotency.claim(request, raw, "", limits.get("concurrency_key"))
    if existing_id is not None:
        existing = await store.get(existing_id, tenant)
        if existing is None:
            raise NotFound("the job this Idempotency-Key created no longer exists")
        await app[state.DURABILITY].confirm(existing.id)  # the first answer may have been a 503
        return job_response(request, existing, created=True)
    try:
        await check_callback(request, submit.callback_url)
        new = _new_job(tenant, submit, limits, traceparent)
        job = await store.create(new, idempotency=held)
    except BaseException:
        await idempotency.release(request, held)
        raise
    jobs_submitted(job.type).inc()
    await app[state.DURABILITY].confirm(job.id)
    return job_response(request, job, created=True)


def _new_job(
    tenant: str, submit: SubmitJob, limits: dict[str, Any], traceparent: str | None
) -> NewJob:
    run_at_ms = None
    if submit.run_at is not None:
        run_at_ms = int(submit.run_at.timestamp() * 1000)
    elif submit.delay_seconds is not None:
        run_at_ms = now_ms() + int(submit.delay_seconds * 1000)
    return NewJob(
        tenant=tenant,
        type=submit.type,
        input=submit.input,
        metadata=submit.metadata or {},
        callback_url=submit.callback_url,
        priority=submit.priority,
        run_at_ms=run_at_ms,
        traceparent=traceparent,
        ordering_key=submit.ordering_key,
        channels=submit.channels or [],
        **limits,
    )


def concurrency(
    definition: JobDefinition, key: str | None = None, limit: int | None = None
) -> dict[str, Any]:
    """The job's concurrency key and limit: the submit's, or its type's default (a limit
    over all of the tenant's jobs of the type)."""
    if key is not None:
        return {
            "concurrency_key": key,
            "concurrency_limit": limit or definition.concurrency_limit or 1,
        }
    if definition.default_concurrency_key is not None:
        return {
            "concurrency_key": definition.default_concurrency_key,
            "concurrency_limit": definition.concurrency_limit,
        }
    return {}


async def get_job(request: web.Request) -> web.Response:
    """The polling endpoint; with ?wait=N (N <= 60) it holds the request until the status
    differs from ?since_status (AIP-151's WaitOperation), answering at once without it."""
    job = await owned_job(request)
    wait = _wait_seconds(request)
    since = request.query.get("since_status")
    if not wait or since is None or job.status.value != since or job.status.terminal:
        return job_response(request, job)
    with waiter_slot(request):
        return await _wait_for_change(request, job, since, wait)


async def _wait_for_change(
    request: web.Request, job: JobRecord, since: str, wait: float
) -> web.Response:
    async with request.app[state.CHANGES].watch(job.id) as changes:
        # Re-read once subscribed: a change between the first read and now is not missed.
        job = await owned_job(request)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                while job.status.value == since:
                    await changes.get()
                    job = await owned_job(request)
    return job_response(request, job)


MAX_WAIT_SECONDS = 60


def _wait_seconds(request: web.Request) -> float:
    raw = request.query.get("wait")
    if raw is None:
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= MAX_WAIT_SECONDS:
        raise BadRequest(f"wait must be a number of seconds from 0 to {MAX_WAIT_SECONDS}")
    return wait


async def cancel_job(request: web.Request) -> web.Response:
    found = await owned_job(request)  # names the job's keys, its batch's included
    outcome, job = await request.app[state.JOBS].cancel(found.ref)
    if job is None:
        raise NotFound(f"no job {found.id}")
    if outcome == "terminal":
        raise Conflict(f"job {job.id} is already {job.status.value}; it cannot be canceled")
    if outcome == "held":
        raise Conflict(
            f"job {job.id} belongs to a batch that is still being created; retry shortly",
            headers={"Retry-After": "1"},
        )
    headers = {"Retry-After": str(request.app[state.SETTINGS].retry_after_seconds)}
    await request.app[state.DURABILITY].confirm(job.id)
    return json_response(job_resource(job), 202, headers)

"""/v1/schedules: recurring schedules (store/schedules.py), and a run of one now."""

from __future__ import annotations

from aiohttp import web

from acceptd.api import state
from acceptd.api.body import read_model
from acceptd.api.jobs import concurrency, job_response
from acceptd.api.paging import decode_cursor, encode_cursor, page_limit
from acceptd.api.problems import Conflict, NotFound
from acceptd.api.respond import json_response
from acceptd.api.validation import check_callback, check_job
from acceptd.core import ids
from acceptd.core.cron import Cron
from acceptd.runtime.metrics import jobs_submitted
from acceptd.store.schedules import (
    JobTemplate,
    ScheduleChange,
    ScheduleLimitError,
    ScheduleRecord,
    ScheduleShardError,
)
from acceptd.wire.models import ScheduleCreate, ScheduleJob, ScheduleUpdate
from acceptd.wire.resources import schedule_path, schedule_resource

_PREFIX = "sch"


async def _template(request: web.Request, job: ScheduleJob) -> JobTemplate:
    """The job a tick submits, checked like a submit (its type, input, metadata and
    callback URL), with its type's default concurrency limit."""
    definition = check_job(request.app, ("job",), job.type, job.input, job.metadata)
    await check_callback(request, job.callback_url, ("job", "callback_url"))
    limits = concurrency(definition)
    return JobTemplate(
        type=job.type,
        input=job.input,
        callback_url=job.callback_url,
        metadata=job.metadata or {},
        priority=job.priority,
        concurrency_key=limits.get("concurrency_key"),
        concurrency_limit=limits.get("concurrency_limit"),
    )


async def create_schedule(request: web.Request) -> web.Response:
    settings = request.app[state.SETTINGS]
    body, _ = await read_model(request, ScheduleCreate, settings.max_body_bytes)
    template = await _template(request, body.job)
    try:
        schedule = await request.app[state.SCHEDULES].create(
            request[state.TENANT],
            Cron.of(body.cron, body.timezone),
            template,
            paused=body.paused,
            overlap=body.overlap,
            limit=settings.max_schedules_per_tenant,
        )
    except ScheduleLimitError as exc:
        raise Conflict(str(exc)) from None
    return json_response(schedule_resource(schedule), 201, {"Location": schedule_path(schedule.id)})


async def list_schedules(request: web.Request) -> web.Response:
    limit = page_limit(request)
    cursor = request.query.get("cursor")
    before = decode_cursor(cursor, _PREFIX) if cursor else None
    found, more = await request.app[state.SCHEDULES].page(request[state.TENANT], before, limit)
    return json_response(
        {
            "items": [schedule_resource(s) for s in found],
            "next_cursor": encode_cursor(found[-1].id) if more and found else None,
        }
    )


async def owned_schedule(request: web.Request) -> ScheduleRecord:
    schedule_id = request.match_info["schedule_id"]
    schedule = None
    if ids.looks_like(_PREFIX, schedule_id):
        schedule = await request.app[state.SCHEDULES].get(schedule_id, request[state.TENANT])
    if schedule is None:
        raise NotFound(f"no schedule {schedule_id}")
    return schedule


async def get_schedule(request: web.Request) -> web.Response:
    return json_response(schedule_resource(await owned_schedule(request)))


async def update_schedule(request: web.Request) -> web.Response:
    schedule = await owned_schedule(request)
    body, _ = await read_model(request, ScheduleUpdate, request.app[state.SETTINGS].max_body_bytes)
    cron = None
    if body.cron is not None or body.timezone is not None:
        # Each checked by the model already (Cron.parse); a stored one was checked when set.
        cron = Cron.of(
            body.cron or schedule.cron.expression, body.timezone or schedule.cron.timezone
        )
    change = ScheduleChange(
        cron=cron,
        job=await _template(request, body.job) if body.job is not None else None,
        paused=body.paused,
        overlap=body.overlap,
    )
    try:
        updated = await request.app[state.SCHEDULES].update(schedule, change)
    except ScheduleShardError as exc:
        raise Conflict(str(exc)) from None
    if updated is None:
        raise NotFound(f"no schedule {schedule.id}")
    return json_response(schedule_resource(updated))


async def delete_schedule(request: web.Request) -> web.Response:
    schedule = await owned_schedule(request)
    await request.app[state.SCHEDULES].delete(schedule)
    return web.Response(status=204)


async def trigger_schedule(request: web.Request) -> web.Response:
    """Submits the schedule's job now: 202 with the job, like a submit."""
    schedule = await owned_schedule(request)
    job = await request.app[state.SCHEDULES].trigger(schedule)
    if job is None:
        raise NotFound(f"no schedule {schedule.id}")
    jobs_submitted(job.type).inc()
    await request.app[state.DURABILITY].confirm(job.id)
    return job_response(request, job, created=True)

"""POST /v1/jobs/{id}/complete and /fail: the outside party of an awaits_input job type (a
reviewer, a partner system) gives its result. The job's one-time completion token is the
credential, so these routes need no API key: the token can be handed to whoever decides."""

from __future__ import annotations

import hmac
from typing import Any, TypeVar

from aiohttp import web
from pydantic import ValidationError

from acceptd.api import state
from acceptd.api.body import keyless_body_limit, parse, read_json
from acceptd.api.problems import (
    Conflict,
    NotFound,
    ValidationFailed,
    field_error,
    validation_failed,
)
from acceptd.api.respond import json_response
from acceptd.core import ids
from acceptd.core.jsonenc import encoded_size
from acceptd.core.statuses import JobStatus
from acceptd.runtime.metrics import JOBS_FINISHED
from acceptd.store.jobs import COMPLETION_TOKEN_PREFIX, CompletionState, token_digest
from acceptd.wire.models import CompleteJob, FailJob
from acceptd.wire.resources import job_resource

EXTERNAL_FAILURE_TYPE = "urn:acceptd:problem:external-failure"
B = TypeVar("B", CompleteJob, FailJob)


async def complete_job(request: web.Request) -> web.Response:
    body, job = await _job_for_token(request, CompleteJob)
    result = body.result
    definition = request.app[state.REGISTRY].get(job.type)
    if definition is not None and definition.awaits_input is not None:
        try:
            checked = definition.awaits_input.model_validate(result)
        except ValidationError as exc:
            raise validation_failed(exc, ("result",), f"result does not match {job.type}") from exc
        result = checked.model_dump(mode="json")
    size = encoded_size(result)
    limit = request.app[state.SETTINGS].max_result_bytes
    if size > limit:
        raise ValidationFailed(
            "result too large", errors=[field_error(("result",), f"{size} bytes; at most {limit}")]
        )
    return await _settle(request, job, body.token, JobStatus.SUCCEEDED, result=result)


async def fail_job(request: web.Request) -> web.Response:
    body, job = await _job_for_token(request, FailJob)
    error = {"type": EXTERNAL_FAILURE_TYPE, "title": body.error.title, "detail": body.error.detail}
    return await _settle(request, job, body.token, JobStatus.FAILED, error=error)


async def _job_for_token(request: web.Request, model: type[B]) -> tuple[B, CompletionState]:
    """The body and the job, if the body's token is the job's completion token.
    404 alike for no job and a wrong token, so a token reveals nothing about other jobs;
    checked on four fields of the record, before the result is validated or the record
    is read whole."""
    job_id = request.match_info["job_id"]
    raw = await read_json(request, keyless_body_limit(request.app[state.SETTINGS]))
    token = raw.get("token") if isinstance(raw, dict) else None
    if not isinstance(token, str):
        # Named without validating the rest: a keyless body of 130,000 unknown keys would
        # cost a second of CPU and a 10 MB answer to learn that the token is missing.
        raise ValidationFailed(
            "the body needs the completion token",
            errors=[field_error(("token",), "a string is required")],
        )
    job = None
    if ids.looks_like("job", job_id) and token.startswith(COMPLETION_TOKEN_PREFIX):
        job = await request.app[state.JOBS].completion_state(job_id)
    stored = job.token_digest if job is not None else None
    if job is None or stored is None or not hmac.compare_digest(stored, token_digest(token)):
        raise NotFound(f"no job {job_id} with this completion token")
    if job.status is not JobStatus.AWAITING_INPUT:
        raise _used(job.ref.id, job.status)
    return parse(model, raw), job


def _used(job_id: str, status: JobStatus) -> Conflict:
    return Conflict(f"the completion token was already used: job {job_id} is {status.value}")


async def _settle(
    request: web.Request,
    job: CompletionState,
    token: str,
    status: JobStatus,
    *,
    result: Any = None,
    error: dict[str, Any] | None = None,
) -> web.Response:
    # The script decides: of two callers racing with the same token, one wins, one gets 409.
    outcome, settled = await request.app[state.JOBS].complete(
        job.ref, token, status, result=result, error=error
    )
    if settled is None:
        raise NotFound(f"no job {job.ref.id} with this completion token")
    if outcome == "used":
        raise _used(settled.id, settled.status)
    JOBS_FINISHED.labels(settled.type, settled.status.value).inc()
    await request.app[state.DURABILITY].confirm(settled.id)
    return json_response(job_resource(settled), 200)

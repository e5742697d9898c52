"""Records rendered as the public JSON resources (shapes: acceptd.wire.models)."""

from __future__ import annotations

from typing import Any

from acceptd.core.clock import to_rfc3339
from acceptd.core.statuses import DeliveryStatus, JobStatus
from acceptd.store.apikeys import ApiKeyRecord
from acceptd.store.batches import BatchRecord
from acceptd.store.deliveries import DeliveryRecord, DeliveryView
from acceptd.store.endpoints import EndpointRecord
from acceptd.store.job_record import JobRecord
from acceptd.store.recoveries import RecoveryRecord
from acceptd.store.schedules import ScheduleRecord

API_PREFIX = "/v1"


def job_path(job_id: str) -> str:
    return f"{API_PREFIX}/jobs/{job_id}"


def job_resource(job: JobRecord) -> dict[str, Any]:
    return {
        "id": job.id,
        "type": job.type,
        "status": job.status.value,
        "progress": job.progress,
        "input": job.input,
        "result": job.result,
        "error": job.error,
        "metadata": job.metadata,
        "callback_url": job.callback_url,
        "attempts": job.attempts,
        "priority": job.priority,
        "run_at": to_rfc3339(job.run_at_ms),
        "batch_id": job.batch_id,
        "awaiting_input": _awaiting_input(job),
        "ordering_key": job.ordering_key,
        "concurrency_key": job.concurrency_key,
        "concurrency_limit": job.concurrency_limit,
        "schedule_id": job.schedule_id,
        "channels": job.channels,
        "created_at": to_rfc3339(job.created_ms),
        "started_at": to_rfc3339(job.started_ms),
        "finished_at": to_rfc3339(job.finished_ms),
        "links": {"self": job_path(job.id)},
    }


# What a list item leaves out unless ?view=full asks for it: the fields that can each hold a
# megabyte (API.md, "Limits and failure behaviour").
LIST_LEFT_OUT = ("input", "result")


def job_summary(job: JobRecord) -> dict[str, Any]:
    """A job as a list item shows it by default: the resource without `input` and `result`
    (the keys are absent, not null: null is a value either can have)."""
    resource = job_resource(job)
    for name in LIST_LEFT_OUT:
        del resource[name]
    return resource


# The status each job event reports: its data shows the job as the event saw it, even when
# the job moved on before the event was fanned out.
_EVENT_STATUS = {
    "job.started": JobStatus.RUNNING,
    "job.progress": JobStatus.RUNNING,
    "job.awaiting_input": JobStatus.AWAITING_INPUT,
    "job.succeeded": JobStatus.SUCCEEDED,
    "job.failed": JobStatus.FAILED,
    "job.canceled": JobStatus.CANCELED,
}
# The one event whose receivers get the completion token: the one saying input is needed.
INPUT_NEEDED_EVENT = "job.awaiting_input"
# Events a job may send many of while it runs (a progress report a second, for hours): their
# data is the job as a list shows it, without input and result, or one accepted submit
# would store its input once per report and endpoint, far past the tenant's byte budget.
RUNNING_EVENTS = frozenset({"job.started", "job.progress"})


def job_event_data(job: JobRecord, event: str) -> dict[str, Any]:
    """The `data` of a job event: the job resource with the status the event reports, and
    the completion token only in job.awaiting_input (an endpoint subscribed to
    job.progress never learns it)."""
    data = job_summary(job) if event in RUNNING_EVENTS else job_resource(job)
    status = _EVENT_STATUS.get(event)
    if status is not None and status is not job.status:
        data["status"] = status.value
    if event != INPUT_NEEDED_EVENT:
        data["awaiting_input"] = None
    return data


def _awaiting_input(job: JobRecord) -> dict[str, Any] | None:
    if job.awaiting is None:
        return None
    return {
        "request": job.awaiting.request,
        "expires_at": to_rfc3339(job.awaiting.deadline_ms),
        "token": job.awaiting.token,
        "complete_url": f"{job_path(job.id)}/complete",
        "fail_url": f"{job_path(job.id)}/fail",
    }


def batch_path(batch_id: str) -> str:
    return f"{API_PREFIX}/batches/{batch_id}"


def batch_resource(batch: BatchRecord) -> dict[str, Any]:
    done = batch.terminal_count
    return {
        "id": batch.id,
        "status": "completed" if batch.completed_ms is not None else "processing",
        "total": batch.total,
        "counts": batch.counts,
        "progress": {
            "fraction": round(done / batch.total, 4) if batch.total else 1.0,
            "message": f"{done} of {batch.total} items finished",
        },
        "callback_url": batch.callback_url,
        "item_events": batch.item_events,
        "metadata": batch.metadata,
        "priority": batch.priority,
        "channels": batch.channels,
        "created_at": to_rfc3339(batch.created_ms),
        "completed_at": to_rfc3339(batch.completed_ms),
        "links": {"self": batch_path(batch.id), "jobs": f"{API_PREFIX}/jobs?batch={batch.id}"},
    }


def schedule_path(schedule_id: str) -> str:
    return f"{API_PREFIX}/schedules/{schedule_id}"


def schedule_resource(schedule: ScheduleRecord) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "cron": schedule.cron.expression,
        "timezone": schedule.cron.timezone,
        "job": schedule.job.shown(),
        "paused": schedule.paused,
        "overlap": schedule.overlap,
        "next_run_at": None if schedule.paused else to_rfc3339(schedule.next_ms),
        "last_run_at": to_rfc3339(schedule.last_run_ms),
        "last_job_id": schedule.last_job_id,
        "skipped_ticks": schedule.skipped,
        "created_at": to_rfc3339(schedule.created_ms),
        "updated_at": to_rfc3339(schedule.updated_ms),
        "links": {
            "self": schedule_path(schedule.id),
            "jobs": f"{API_PREFIX}/jobs?schedule={schedule.id}",
        },
    }


def endpoint_path(endpoint_id: str) -> str:
    return f"{API_PREFIX}/endpoints/{endpoint_id}"


def endpoint_resource(endpoint: EndpointRecord, secret: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.events,
        "description": endpoint.description,
        "disabled": endpoint.disabled,
        "disabled_reason": endpoint.disabled_reason,
        "disabled_at": to_rfc3339(endpoint.disabled_ms),
        "failing_since": to_rfc3339(endpoint.failing_since_ms),
        "created_at": to_rfc3339(endpoint.created_ms),
        "updated_at": to_rfc3339(endpoint.updated_ms),
        "signing": endpoint.signing,
        "payload": endpoint.payload,
        "public_key": endpoint.public_key,
        "rate_limit_per_second": endpoint.rate_limit_per_second,
        "ordering": endpoint.ordering,
        "created_by": endpoint.created_by,
        "headers": dict.fromkeys(endpoint.header_names, "***"),
        "retry_schedule": endpoint.retry_schedule,
        "channels": endpoint.channels,
    }
    if secret is not None:
        body["secret"] = secret
    return body


def delivery_resource(
    delivery: DeliveryRecord | DeliveryView, attempts: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event": delivery.event,
        "url": delivery.url,
        "endpoint_id": delivery.endpoint_id,
        "status": delivery.status.value,
        "next_attempt_at": to_rfc3339(delivery.next_attempt_ms)
        if delivery.status is DeliveryStatus.PENDING
        else None,
        "attempts": attempts,
    }


def api_key_path(key_id: str) -> str:
    return f"{API_PREFIX}/api-keys/{key_id}"


def api_key_resource(record: ApiKeyRecord, key: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record.id,
        "name": record.name,
        "scope": record.scope,
        "created_at": to_rfc3339(record.created_ms),
        "last_used_at": to_rfc3339(record.last_used_ms),
    }
    if key is not None:
        body["key"] = key
    return body


# What a thin payload keeps of a job or a batch (Stripe's thin events): enough to know what
# happened and to fetch the rest with an API key, nothing the receiver must not hold.
THIN_FIELDS = ("id", "type", "status", "created_at", "finished_at", "completed_at", "links")


def thin_data(resource: dict[str, Any]) -> dict[str, Any]:
    return {name: resource[name] for name in THIN_FIELDS if name in resource}


def recovery_path(recovery_id: str) -> str:
    return f"{API_PREFIX}/recoveries/{recovery_id}"


def recovery_resource(recovery: RecoveryRecord) -> dict[str, Any]:
    return {
        "id": recovery.id,
        "endpoint_id": recovery.endpoint_id,
        "status": recovery.status,
        "total": recovery.total,
        "sent": recovery.sent,
        "since": to_rfc3339(recovery.since_ms),
        "until": to_rfc3339(recovery.until_ms),
        "created_at": to_rfc3339(recovery.created_ms),
        "finished_at": to_rfc3339(recovery.finished_ms),
        "links": {"self": recovery_path(recovery.id)},
    }

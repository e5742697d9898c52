"""Records rendered as the public JSON resources (shapes: service.models)."""

from __future__ import annotations

from typing import Any

from service.clock import to_rfc3339
from service.store.deliveries import DeliveryRecord, DeliveryStatus
from service.store.endpoints import EndpointRecord
from service.store.jobs import JobRecord

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
        "created_at": to_rfc3339(job.created_ms),
        "started_at": to_rfc3339(job.started_ms),
        "finished_at": to_rfc3339(job.finished_ms),
        "links": {"self": job_path(job.id)},
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
    }
    if secret is not None:
        body["secret"] = secret
    return body


def delivery_resource(delivery: DeliveryRecord, attempts: list[dict[str, Any]]) -> dict[str, Any]:
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

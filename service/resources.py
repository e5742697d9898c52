"""Records rendered as the public JSON resources (shapes: service.models)."""

from __future__ import annotations

from typing import Any

from service.clock import to_rfc3339
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
        "created_at": to_rfc3339(job.created_ms),
        "started_at": to_rfc3339(job.started_ms),
        "finished_at": to_rfc3339(job.finished_ms),
        "links": {"self": job_path(job.id)},
    }

"""Prometheus metrics of every role (served at the API's /metrics, and on ACCEPTD_METRICS_PORT
by the worker and dispatcher). Label values are bounded: job types, statuses, route patterns."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from redis.asyncio import Redis

from acceptd.store import keys

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_RUN_BUCKETS = (0.005, 0.05, 0.25, 1, 5, 15, 60, 300, 900, 3600)

JOBS_SUBMITTED = Counter("acceptd_jobs_submitted", "Jobs accepted by POST /v1/jobs", ["type"])
JOBS_FINISHED = Counter(
    "acceptd_jobs_finished",
    "Jobs that reached a terminal status in a worker (input timeouts included), or by "
    "/complete and /fail in the API",
    ["type", "status"],
)
JOB_RUN_SECONDS = Histogram(
    "acceptd_job_run_seconds", "Time a handler ran, per attempt", ["type"], buckets=_RUN_BUCKETS
)
JOB_QUEUE_WAIT_SECONDS = Histogram(
    "acceptd_job_queue_wait_seconds",
    "From submit to the first start of a job",
    ["type"],
    buckets=(*_LATENCY_BUCKETS, 60, 300, 3600),
)
QUEUE_DEPTH = Gauge("acceptd_queue_depth", "Entries in a queue, read at scrape time", ["queue"])
DELIVERY_ATTEMPTS = Counter(
    "acceptd_delivery_attempts",
    "Webhook delivery attempts by what followed: succeeded, retrying or failed",
    ["outcome"],
)
DELIVERY_SECONDS = Histogram(
    "acceptd_delivery_attempt_seconds",
    "Duration of one webhook HTTP attempt",
    buckets=_LATENCY_BUCKETS,
)
ENDPOINTS_DISABLED = Counter(
    "acceptd_endpoints_disabled", "Endpoints the dispatcher disabled", ["reason"]
)
HTTP_SECONDS = Histogram(
    "acceptd_http_request_seconds",
    "API requests by route pattern, method and status",
    ["route", "method", "status"],
    buckets=_LATENCY_BUCKETS,
)

QUEUES = {
    "jobs": keys.JOB_QUEUE,
    "scheduled": keys.SCHEDULED_JOBS,
    "awaiting_input": keys.AWAITING_INPUT,
    "webhooks": keys.WEBHOOK_QUEUE,
    "deliveries_due": keys.DELIVERIES_DUE,
}


async def render(redis: Redis) -> tuple[bytes, str]:
    """The exposition text, with queue depths read now (so every role reports them fresh)."""
    async with redis.pipeline(transaction=False) as pipe:
        for key in QUEUES.values():
            pipe.zcard(key)
        depths = await pipe.execute()
    for name, depth in zip(QUEUES, depths, strict=True):
        QUEUE_DEPTH.labels(queue=name).set(depth)
    return generate_latest(), CONTENT_TYPE_LATEST

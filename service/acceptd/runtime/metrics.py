"""Prometheus metrics of every role (served at the API's /metrics, and on ACCEPTD_METRICS_PORT
by the worker and dispatcher). Label values are bounded: job types, statuses, route patterns."""

from __future__ import annotations

import functools

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from redis.asyncio.client import Pipeline

from acceptd.core.clock import now_ms
from acceptd.store import keys
from acceptd.store.shards import Shards

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
QUEUE_DEPTH = Gauge(
    "acceptd_queue_depth",
    "Entries waiting, read at scrape time: jobs and webhook attempts due now (deferred ones "
    "not counted), events not yet fanned out, and every scheduled, awaiting-input and "
    "pending-delivery entry",
    ["queue"],
)
REDIS_USED_MEMORY = Gauge(
    "acceptd_redis_used_memory_bytes", "Redis used_memory, read at scrape time"
)
REDIS_MAXMEMORY = Gauge(
    "acceptd_redis_maxmemory_bytes", "Redis maxmemory (0: no limit), read at scrape time"
)
DELIVERY_ATTEMPTS = Counter(
    "acceptd_delivery_attempts",
    "Webhook delivery attempts by what followed: succeeded, retrying or failed",
    ["outcome"],
)
DELIVERY_THROTTLED_SECONDS = Histogram(
    "acceptd_delivery_throttled_seconds",
    "How long deliveries to rate-limited endpoints waited for their turn (0: none)",
    buckets=(0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800),
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


# A series found once per label values, not on every request: `labels()` (its checks and
# lock) was 2 % of a submit. Bounded as the labels are: routes x methods x statuses, types.
@functools.lru_cache(maxsize=4096)
def http_seconds(route: str, method: str, status: int) -> Histogram:
    return HTTP_SECONDS.labels(route, method, str(status))


@functools.lru_cache(maxsize=4096)
def jobs_submitted(job_type: str) -> Counter:
    return JOBS_SUBMITTED.labels(job_type)


WEBHOOK_PROXY_FAILURES = Counter(
    "acceptd_webhook_proxy_failures_total",
    "webhook attempts the forward proxy (ACCEPTD_WEBHOOK_PROXY_URL) failed: put back, uncounted",
)

SCHEDULE_TICKS = Counter(
    "acceptd_schedule_ticks_total",
    "recurring schedules' due ticks, by outcome: ok (a job), skipped (overlap), quota and "
    "bytes (the tenant's limits refused the job)",
    ["outcome"],
)

# arq queues: what is due now is the backlog (what scales workers and dispatchers).
DUE_QUEUES = {"jobs": keys.job_queue, "webhooks": keys.webhook_queue}
# Jobs running, and everything else these hold is waiting for something: a time
# (scheduled, retrying; recurring schedules, for their next tick), input, a
# tenant's cap or a concurrency key's limit (parked), a delivery's turn.
WHOLE_QUEUES = {
    "running": keys.running_jobs,
    "scheduled": keys.scheduled_jobs,
    "retrying": keys.retrying_jobs,
    "parked": keys.parked_jobs,
    "awaiting_input": keys.awaiting_input,
    "deliveries_due": keys.deliveries_due,
    "schedules": keys.schedules_due,
}


async def queue_depths(shards: Shards) -> dict[str, int]:
    """Every queue's depth now, summed over the shards, in one round trip per node (the
    metrics and the console's system view)."""
    now = now_ms()

    def depths_of(pipe: Pipeline, shard: int) -> None:
        for key in DUE_QUEUES.values():
            pipe.zcount(key(shard), "-inf", now)
        for key in WHOLE_QUEUES.values():
            pipe.zcard(key(shard))
        # The fan-out deletes what it has handled: the stream's length is its backlog.
        pipe.xlen(keys.events_stream(shard))

    per_shard = await shards.across(depths_of)
    totals = [sum(column) for column in zip(*per_shard, strict=True)]
    return dict(zip([*DUE_QUEUES, *WHOLE_QUEUES, "events"], totals, strict=True))


async def render(shards: Shards) -> tuple[bytes, str]:
    """The exposition text, with queue depths and Redis memory read now (so every role
    reports them fresh). Memory is the control plane's server's (on a cluster: one
    primary's; each primary's own exporter tells the rest)."""
    for name, depth in (await queue_depths(shards)).items():
        QUEUE_DEPTH.labels(queue=name).set(depth)
    memory = await shards.control.info("memory")
    REDIS_USED_MEMORY.set(memory.get("used_memory", 0))
    REDIS_MAXMEMORY.set(memory.get("maxmemory", 0))
    return generate_latest(), CONTENT_TYPE_LATEST

"""What the console shows beside the resources: jobs per status in a time window, an
endpoint's deliveries and health over the last hour, and the system's queues, processes
and per-minute throughput. Every read is bounded, whatever the tenant has stored."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from aiohttp import web
from redis.asyncio.client import Pipeline

from acceptd.api import state
from acceptd.api.endpoints import changeable_endpoint
from acceptd.api.paging import decode_cursor, encode_cursor, page_limit, time_bound
from acceptd.api.problems import Forbidden
from acceptd.api.respond import json_response
from acceptd.core import ids
from acceptd.core.clock import now_ms, parse_rfc3339, to_rfc3339
from acceptd.core.statuses import JobStatus
from acceptd.runtime.metrics import queue_depths
from acceptd.store import fairshare, keys
from acceptd.store.apikeys import ADMIN_SCOPES
from acceptd.store.layouts import JobField
from acceptd.store.processes import Processes
from acceptd.store.shards import Shards
from acceptd.wire.resources import delivery_resource

# A count reads at most this many jobs (one pipelined round trip of HMGETs; ~10 ms).
MAX_COUNTED = 10_000
STATS_WINDOW_SECONDS = 3600
# An endpoint's health is read from at most this many of its newest deliveries.
MAX_STATS_DELIVERIES = 500
MINUTES = 60


async def job_counts(request: web.Request) -> web.Response:
    tenant, store = request[state.TENANT], request.app[state.JOBS]
    since, until = time_bound(request, "since"), time_bound(request, "until")
    type_filter = request.query.get("type")
    upper = ids.id_at("job", until) if until is not None else None
    lower = ids.id_at("job", since) if since is not None else None
    job_ids = await store.page_ids(tenant, upper, MAX_COUNTED + 1, at_least=lower)
    complete = len(job_ids) <= MAX_COUNTED
    job_ids = job_ids[:MAX_COUNTED]
    statuses = await store.fields_of(job_ids, JobField.STATUS, JobField.TYPE)
    counted = Counter(
        status
        for status, job_type in statuses
        if status is not None and (type_filter is None or job_type == type_filter)
    )
    counts = {status.value: counted.get(status.value, 0) for status in JobStatus}
    return json_response({"counts": counts, "scanned": len(job_ids), "complete": complete})


async def endpoint_deliveries(request: web.Request) -> web.Response:
    # Attempts carry the receiver's answers, which may echo a full payload: an `endpoints`
    # portal session reads those of its own endpoints only.
    endpoint = await changeable_endpoint(request, "read the deliveries of")
    limit = page_limit(request)
    cursor = request.query.get("cursor")
    before = decode_cursor(cursor, "dlv") if cursor else None
    endpoint_id = endpoint.id

    def index(shard: int) -> str:
        return keys.endpoint_deliveries(endpoint_id, shard)

    store = request.app[state.DELIVERIES]
    upper_ms = now_ms() + 60_000
    found_ids = await store.ids_between(index, 0, upper_ms, limit + 1, before=before)
    more = len(found_ids) > limit
    found = await store.views(found_ids[:limit])
    items = [delivery_resource(d, attempts) for d, attempts in found if d.tenant == endpoint.tenant]
    next_cursor = encode_cursor(found_ids[limit - 1]) if more else None
    return json_response({"items": items, "next_cursor": next_cursor})


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def endpoint_stats(request: web.Request) -> web.Response:
    endpoint = await changeable_endpoint(request, "read")
    store, now = request.app[state.DELIVERIES], now_ms()
    since = now - STATS_WINDOW_SECONDS * 1000
    endpoint_id = endpoint.id

    def index(shard: int) -> str:
        return keys.endpoint_deliveries(endpoint_id, shard)

    found_ids = await store.ids_between(
        index, since - 86_400_000, now + 60_000, MAX_STATS_DELIVERIES
    )
    attempts = [
        attempt
        for delivery, tried in await store.views(found_ids)
        if delivery.tenant == endpoint.tenant
        for attempt in tried
        if parse_rfc3339(attempt["at"]) >= since
    ]
    ok = [a for a in attempts if a["error"] is None and 200 <= (a["status_code"] or 0) < 300]
    latencies = sorted(float(a["latency_ms"]) for a in attempts)
    return json_response(
        {
            "window_seconds": STATS_WINDOW_SECONDS,
            "deliveries": len(found_ids),
            "attempts": len(attempts),
            "succeeded": len(ok),
            "failed": len(attempts) - len(ok),
            "success_rate": len(ok) / len(attempts) if attempts else None,
            "latency_ms": {"p50": _percentile(latencies, 0.5), "p95": _percentile(latencies, 0.95)}
            if latencies
            else None,
        }
    )


async def system_status(request: web.Request) -> web.Response:
    """An operator key sees the whole system; a tenant's admin key sees its own last hour
    only: the queues are every tenant's, and process names carry hosts and pids."""
    scope = request[state.KEY].scope
    if scope not in ADMIN_SCOPES:
        raise Forbidden("the system view needs an admin key")
    shards, tenant = request.app[state.SHARDS], request[state.TENANT]
    if scope != "operator":
        per_minute = await _per_minute(shards, tenant)
        return json_response(
            {
                "scope": "tenant",
                "queues": {},
                "processes": [],
                "tenants": [],
                "per_minute": per_minute,
            }
        )
    depths, seen, per_minute, tenant_shares = await asyncio.gather(
        queue_depths(shards),
        Processes(shards.control).seen(),
        _per_minute(shards, tenant),
        fairshare.shares(shards),
    )
    running = sum(found.running for found in tenant_shares)
    tenants = [
        {
            "tenant": found.tenant,
            "queued": found.queued,
            "running": found.running,
            "share": round(found.running / running, 4) if running else 0.0,
            "weight": found.weight,
            "max_running": found.max_running,
        }
        for found in tenant_shares
    ]
    processes = [
        {
            "role": p.role,
            "name": p.name,
            "last_seen_at": to_rfc3339(p.last_seen_ms),
            "alive": p.alive,
        }
        for p in seen
    ]
    return json_response(
        {
            "scope": "system",
            "queues": depths,
            "processes": processes,
            "tenants": tenants,
            "per_minute": per_minute,
        }
    )


async def _per_minute(shards: Shards, tenant: str) -> list[dict[str, Any]]:
    """The tenant's jobs and deliveries per minute over the last hour: two ZLEXCOUNTs a
    minute on each shard's id indexes (ids sort by time), in one round trip per node."""
    this_minute = now_ms() // 60_000 * 60_000
    starts = [this_minute - (MINUTES - 1 - i) * 60_000 for i in range(MINUTES)]

    def counts_of(pipe: Pipeline, shard: int) -> None:
        for start in starts:
            for prefix, index in (
                ("job", keys.tenant_jobs(tenant, shard)),
                ("dlv", keys.tenant_deliveries(tenant, shard)),
            ):
                low, high = ids.id_at(prefix, start), ids.id_at(prefix, start + 60_000)
                pipe.zlexcount(index, f"[{low}", f"({high}")  # type: ignore[no-untyped-call]

    per_shard = await shards.across(counts_of)
    counts = [sum(column) for column in zip(*per_shard, strict=True)]
    return [
        {"minute": to_rfc3339(start), "jobs": counts[2 * i], "deliveries": counts[2 * i + 1]}
        for i, start in enumerate(starts)
    ]

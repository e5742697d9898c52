"""Requests that wait on a job (`?wait=` long-polls, SSE streams) hold a task, a queue and
a pub/sub subscription while they wait: each tenant may hold only so many at once in one
API process, so one tenant cannot exhaust a process that every tenant shares."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aiohttp import web

from acceptd.api import state
from acceptd.api.problems import RateLimited

RETRY_AFTER_SECONDS = 5


@contextlib.contextmanager
def waiter_slot(request: web.Request) -> Iterator[None]:
    """One of the tenant's waiting slots for the block; 429 with Retry-After when all are
    taken (the client can poll meanwhile)."""
    tenant: str = request[state.TENANT]
    waiting = request.app[state.WAITERS]
    limit = request.app[state.SETTINGS].max_waiters_per_tenant
    if waiting.get(tenant, 0) >= limit:
        raise RateLimited(
            f"this tenant already holds {limit} waiting requests on this server; poll "
            "without ?wait=, or retry later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    waiting[tenant] = waiting.get(tenant, 0) + 1
    try:
        yield
    finally:
        left = waiting[tenant] - 1
        if left:
            waiting[tenant] = left
        else:
            del waiting[tenant]

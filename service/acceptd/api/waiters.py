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
    if not waiting.try_acquire(tenant):
        raise RateLimited(
            f"this tenant already holds {waiting.limit} waiting requests on this server; "
            "poll without ?wait=, or retry later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    try:
        yield
    finally:
        waiting.release(tenant)

"""`acceptd dispatcher`: fans events out into deliveries and sends them, from its own arq queue.

Each attempt is its own arq job (`deliver(delivery_id, n)`), deferred to its due time, so the
~27 h schedule never depends on one long-lived queue entry; a sweeper re-queues any pending
delivery whose entry was lost. Jobs and webhooks use separate queues and processes, so slow
handlers never hold up webhooks and slow receivers never hold up jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from arq import Retry
from arq.worker import func

from acceptd.core.settings import Settings
from acceptd.dispatcher.assembly import DispatcherRuntime, deliver_timeout
from acceptd.queue.wakeable import WakeableWorker
from acceptd.runtime.roleworker import ARQ_MAX_TRIES, RUNTIME, build_role_worker
from acceptd.store import keys
from acceptd.store.arqjobs import DELIVER_FUNCTION, RECOVER_FUNCTION
from acceptd.store.outages import StoreUnavailable, outage_retry_delay

log = logging.getLogger(__name__)

RECOVERY_TIMEOUT_SECONDS = 3600


async def deliver(ctx: dict[str, Any], delivery_id: str, attempt_no: int) -> None:
    runtime: DispatcherRuntime = ctx[RUNTIME]
    try:
        await runtime.attempts.run_queued(delivery_id, attempt_no)
    except StoreUnavailable as exc:
        # arq would count this a failure and drop the attempt; the delivery is still owed.
        delay = outage_retry_delay(int(ctx.get("job_try", 1)))
        log.warning("%s during delivery %s; retrying in %.0f s", exc.reason, delivery_id, delay)
        raise Retry(defer=delay) from exc
    # No wake-up here: a next attempt queued is announced (store/lua/delivery_attempt.lua),
    # and a run put back for later wakes its own loop (queue/wakeable.py, _again).


async def recover(ctx: dict[str, Any], recovery_id: str) -> None:
    """A bulk recovery; an outage or a crash leaves its cursor, and the retry resumes."""
    runtime: DispatcherRuntime = ctx[RUNTIME]
    try:
        await runtime.recovery.run(recovery_id)
    except StoreUnavailable as exc:
        raise Retry(defer=outage_retry_delay(int(ctx.get("job_try", 1)))) from exc


def create_dispatcher(
    settings: Settings,
    *,
    handle_signals: bool = True,
    on_ready: Callable[[DispatcherRuntime], Awaitable[None]] | None = None,
) -> WakeableWorker:
    return build_role_worker(
        settings,
        role="dispatcher",
        function=func(
            deliver,
            name=DELIVER_FUNCTION,
            # A throttled attempt is put back (arq Retry) each time its turn has not come:
            # behind a long backlog that can be many more tries than any job takes.
            max_tries=ARQ_MAX_TRIES * 1000,
            timeout=deliver_timeout(settings),
        ),
        queue_of=keys.webhook_queue,
        max_jobs=settings.webhook_max_concurrency,
        wakeup_kind=keys.WEBHOOKS_WAKEUP,
        open_runtime=lambda: DispatcherRuntime.open(settings),
        # Long, for a recovery of everything retained; a crash resumes from its cursor.
        extra_functions=[
            func(
                recover,
                name=RECOVER_FUNCTION,
                max_tries=ARQ_MAX_TRIES,
                timeout=RECOVERY_TIMEOUT_SECONDS,
            )
        ],
        handle_signals=handle_signals,
        on_ready=on_ready,
        # A retry or a recovery whose dispatcher died runs again one lease later, not
        # after its timeout (an attempt's 35 s, a recovery's hour).
        lease_seconds=settings.job_lease_seconds,
    )

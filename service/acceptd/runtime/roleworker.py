"""The arq Worker behind `acceptd worker` and `acceptd dispatcher`, wired the same way for both:
deliberate arq settings, pub/sub wake-ups, the ops server, and the role's runtime lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from arq.worker import Function

from acceptd.core.settings import Settings
from acceptd.core.tasks import cancel_until_done
from acceptd.queue.leanworker import PickupCompanion
from acceptd.queue.wakeable import WakeableWorker
from acceptd.runtime import opsserver
from acceptd.store import connection, keys, shardchannels
from acceptd.store.connection import deserialize_arq, serialize_arq
from acceptd.store.processes import BEAT_EVERY_SECONDS, Processes, process_name
from acceptd.store.shards import Shards

# arq's own try limit must never be what ends a job or a delivery: our records count attempts.
ARQ_MAX_TRIES = 1_000

# Keys of arq's ctx that the job functions read.
RUNTIME = "acceptd_runtime"
_OPS = "acceptd_ops_server"
_LISTENER = "acceptd_wakeup_listener"
_HEARTBEAT = "acceptd_heartbeat"

log = logging.getLogger(__name__)


class RoleRuntime(Protocol):
    shards: Shards

    async def close(self) -> None: ...


R = TypeVar("R", bound=RoleRuntime)


def build_role_worker(
    settings: Settings,
    *,
    role: str,
    function: Function,
    queue_of: Callable[[int], str],
    max_jobs: int,
    wakeup_kind: str,
    open_runtime: Callable[[], Awaitable[R]],
    burst: bool = False,
    handle_signals: bool = True,
    on_ready: Callable[[R], Awaitable[None]] | None = None,
    lease_seconds: float | None = None,
    fair_share: bool = False,
    extra_functions: Sequence[Function] = (),
    runtime_wakeups: Callable[[R], dict[str, Callable[[], None]]] | None = None,
    pickup_companion: Callable[[R], PickupCompanion] | None = None,
) -> WakeableWorker:
    """`lease_seconds`: how long arq's marker of a run lives, renewed while it runs
    (queue/leanworker.py). `wakeup_kind`: the kind of the shards' wake-up channels that
    say new work is queued (store/keys.py wakeup); `runtime_wakeups`: more kinds to
    listen to, each with what the runtime does when told. `fair_share`: the queue is the
    job queue, shared between tenants (store/fairshare.py); `pickup_companion`: what the
    runtime sends with the pickup of a job its wake-up announced (queue/leanworker.py)."""

    async def open_shards() -> Shards:
        return await connection.open_shards(settings)

    worker = WakeableWorker(
        functions=[function, *extra_functions],
        open_shards=open_shards,
        queue_of=queue_of,
        # arq's own names: its health check key, on the control plane's slot.
        queue_name=keys.CONTROL + role,
        redis_settings=connection.arq_settings(settings),
        burst=burst,
        handle_signals=handle_signals,
        max_jobs=max_jobs,
        keep_result=0,  # our records hold results; a kept arq result would block the id
        poll_delay=settings.worker_poll_delay_seconds,
        idle_poll=settings.worker_poll_delay_seconds,
        wakeup_kind=wakeup_kind,
        max_tries=ARQ_MAX_TRIES,
        job_serializer=serialize_arq,
        job_deserializer=deserialize_arq,
        log_results=False,
        lease_seconds=lease_seconds,
        fair_share=fair_share,
    )

    async def startup(ctx: dict[str, Any]) -> None:
        runtime = await open_runtime()
        try:
            ctx[_OPS] = await opsserver.start(
                runtime.shards, settings.metrics_host, settings.metrics_port_for(role)
            )
        except BaseException:
            await runtime.close()  # its loops would keep the process alive, doing nothing
            raise
        ctx[RUNTIME] = runtime
        if pickup_companion is not None:
            worker.pickup_companion = pickup_companion(runtime)
        # The worker reads what its channel says (a job queued alone names it); the
        # runtime's listeners only hear that something changed.
        wakeups: dict[str, Callable[[str], None]] = {wakeup_kind: worker.wake}
        if runtime_wakeups is not None:
            for kind, told in runtime_wakeups(runtime).items():
                wakeups[kind] = _whatever_said(told)
        shards = runtime.shards
        channels = {
            keys.wakeup(kind, shard): told
            for kind, told in wakeups.items()
            for shard in range(shards.count)
        }
        ctx[_LISTENER] = asyncio.get_running_loop().create_task(
            shardchannels.listen(shards, channels)
        )
        ctx[_HEARTBEAT] = Heartbeat(Processes(runtime.shards.control), process_name(role))
        if on_ready is not None:
            await on_ready(runtime)

    async def shutdown(ctx: dict[str, Any]) -> None:
        if (heartbeat := ctx.pop(_HEARTBEAT, None)) is not None:
            await heartbeat.stop()
        listener = ctx.get(_LISTENER)
        if listener is not None and not await cancel_until_done(listener):
            log.warning("the wake-up listener did not stop")
        if (ops := ctx.get(_OPS)) is not None:
            await ops.cleanup()
        worker.pickup_companion = None
        if (runtime := ctx.get(RUNTIME)) is not None:
            await runtime.close()

    worker.on_startup = startup
    worker.on_shutdown = shutdown
    return worker


class Heartbeat:
    """Tells the console this process is alive, every few seconds. Stopped by an event, not
    by cancelling it mid-command: a redis-py command cancelled halfway can leave its
    connection pool waiting forever, and shutdown with it."""

    def __init__(self, processes: Processes, name: str) -> None:
        self._processes = processes
        self._name = name
        self._stopping = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._processes.beat(self._name)
            except Exception:  # an outage: the next beat will do
                log.debug("heartbeat failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), BEAT_EVERY_SECONDS)

    async def stop(self) -> None:
        self._stopping.set()
        try:
            await asyncio.wait_for(self._task, 5)
        except (TimeoutError, asyncio.CancelledError):
            log.warning("heartbeat did not stop in time")


def _whatever_said(told: Callable[[], None]) -> Callable[[str], None]:
    return lambda _said: told()

"""`acceptd dispatcher`: fans events out into deliveries and sends them, from its own arq queue.

Each attempt is its own arq job (`deliver(delivery_id, n)`), deferred to its due time, so the
~27 h schedule never depends on one long-lived queue entry; a sweeper re-queues any pending
delivery whose entry was lost. Jobs and webhooks use separate queues and processes, so slow
handlers never hold up webhooks and slow receivers never hold up jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from arq import Retry
from arq.worker import func
from redis.asyncio import Redis
from yarl import URL

from service.arqwake import WakeableWorker
from service.bootstrap import secret_box
from service.clock import now_ms, to_rfc3339
from service.logs import log_context
from service.metrics import DELIVERY_ATTEMPTS, DELIVERY_SECONDS, ENDPOINTS_DISABLED
from service.redis_conn import connect
from service.roleworker import ARQ_MAX_TRIES, RUNTIME, WAKE, build_role_worker
from service.settings import Settings
from service.store import keys
from service.store.arqjobs import DELIVER_FUNCTION
from service.store.batches import BatchStore
from service.store.deliveries import DeliveryRecord, DeliveryStatus, DeliveryStore
from service.store.endpoints import EndpointRecord, EndpointStore
from service.store.jobs import JobStore
from service.store.scripts import Scripts
from service.store.tenants import TenantStore
from service.ttlcache import TtlCache
from service.webhooks.fanout import FanOut
from service.webhooks.retry_policy import next_delay
from service.webhooks.sender import AttemptResult, send
from service.webhooks.ssrf import AddressPolicy, GuardedResolver

log = logging.getLogger(__name__)

SWEEP_EVERY_SECONDS = 30.0
# A pending delivery this far past due with no queue entry was lost: queue it again.
SWEEP_GRACE_MS = 60_000
SWEEP_BATCH = 500
# A busy receiver (at its concurrency cap) has the attempt put back for this long, uncounted.
BUSY_DEFER_SECONDS = 0.5
SECRETS_CACHE_SECONDS = 5.0
LOOP_STOP_SECONDS = 5.0
SECRETS_CACHE_MAX = 10_000


@dataclass
class ConcurrencyCaps:
    """In-flight requests per destination; full means "come back shortly", never "wait here",
    so one slow receiver cannot occupy every slot of the dispatcher."""

    limit: int
    in_flight: dict[str, int] = field(default_factory=dict)

    def try_acquire(self, key: str) -> bool:
        if self.in_flight.get(key, 0) >= self.limit:
            return False
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        return True

    def release(self, key: str) -> None:
        left = self.in_flight.get(key, 1) - 1
        if left:
            self.in_flight[key] = left
        else:
            self.in_flight.pop(key, None)


def destination_key(url: str, endpoint_id: str | None) -> str:
    if endpoint_id:
        return endpoint_id
    parsed = URL(url)
    return f"{parsed.scheme}://{parsed.host}:{parsed.port}"


def attempt_entry(started_ms: int, result: AttemptResult) -> dict[str, Any]:
    return {
        "at": to_rfc3339(started_ms),
        "status_code": result.status_code,
        "latency_ms": result.latency_ms,
        "error": result.error,
        "response": result.response,
    }


@dataclass
class DispatcherRuntime:
    settings: Settings
    redis: Redis
    tenants: TenantStore
    endpoints: EndpointStore
    deliveries: DeliveryStore
    fanout: FanOut
    session: aiohttp.ClientSession
    policy: AddressPolicy
    caps: ConcurrencyCaps
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    inline_tasks: set[asyncio.Task[None]] = field(default_factory=set)
    secrets_cache: TtlCache[str, list[str]] = field(
        default_factory=lambda: TtlCache(SECRETS_CACHE_SECONDS, SECRETS_CACHE_MAX)
    )
    lease_ms: int = 0

    @classmethod
    async def open(cls, settings: Settings) -> DispatcherRuntime:
        redis = connect(settings)
        scripts = Scripts(redis)
        box = secret_box(settings)
        endpoints = EndpointStore(redis, scripts, box)
        deliveries = DeliveryStore(redis, scripts, settings.job_retention_seconds)
        jobs = JobStore(redis, scripts, settings.job_retention_seconds)
        policy = AddressPolicy.build(
            settings.callbacks_may_be_private, settings.callback_allow_cidrs
        )
        consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(policy),
            limit=settings.webhook_max_concurrency,
            limit_per_host=settings.webhook_concurrency_per_endpoint,
            keepalive_timeout=30,
        )
        runtime = cls(
            settings=settings,
            redis=redis,
            tenants=TenantStore(redis, box),
            endpoints=endpoints,
            deliveries=deliveries,
            fanout=FanOut(
                redis, jobs, BatchStore(redis, scripts, jobs), endpoints, deliveries, consumer
            ),
            lease_ms=int((deliver_timeout(settings) + 10) * 1000),
            session=aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()),
            policy=policy,
            caps=ConcurrencyCaps(settings.webhook_concurrency_per_endpoint),
        )
        runtime.fanout.inline = runtime
        loop = asyncio.get_running_loop()
        runtime.tasks = [
            loop.create_task(runtime.fanout.run(), name="fan-out"),
            loop.create_task(runtime._sweep_forever(), name="sweeper"),
        ]
        return runtime

    async def close(self) -> None:
        if self.inline_tasks:  # let inline attempts finish; their leases cover the rest
            await asyncio.wait(self.inline_tasks, timeout=self.settings.shutdown_grace_seconds)
        # The fan-out and the sweeper stop between Redis calls (a blocking read ends within
        # BLOCK_MS); only what is still running after that is cancelled.
        self.fanout.stopping.set()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=LOOP_STOP_SECONDS)
        for task in [*self.tasks, *self.inline_tasks]:
            task.cancel()
        for task in [*self.tasks, *self.inline_tasks]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.session.close()
        await self.redis.aclose()

    async def _sweep_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.fanout.stopping.wait(), SWEEP_EVERY_SECONDS)
            if self.fanout.stopping.is_set():
                return
            try:
                await self.sweep()
            except Exception:
                log.warning("sweep failed (will try again)", exc_info=True)

    async def sweep(self) -> int:
        """Re-queue pending deliveries overdue by SWEEP_GRACE_MS whose queue entry is gone."""
        requeued = 0
        for delivery_id in await self.deliveries.overdue(now_ms() - SWEEP_GRACE_MS, SWEEP_BATCH):
            delivery = await self.deliveries.get(delivery_id)
            if delivery is not None and await self.deliveries.requeue(delivery, manual=False):
                log.warning("re-queued delivery %s: its queue entry was lost", delivery_id)
                requeued += 1
        return requeued

    # InlineSender: the fan-out hands new deliveries straight here when there is room.
    def try_claim(self, url: str, endpoint_id: str | None) -> bool:
        if len(self.inline_tasks) >= self.settings.webhook_max_concurrency:
            return False
        return self.caps.try_acquire(destination_key(url, endpoint_id))

    def unclaim(self, url: str, endpoint_id: str | None) -> None:
        self.caps.release(destination_key(url, endpoint_id))

    def send(self, delivery: DeliveryRecord) -> None:
        task = asyncio.get_running_loop().create_task(self._send_inline(delivery))
        self.inline_tasks.add(task)
        task.add_done_callback(self.inline_tasks.discard)

    async def _send_inline(self, delivery: DeliveryRecord) -> None:
        try:
            await self._attempt(delivery, 1)
        except Exception:
            # Nothing is lost: the attempt's lease in the queue sends it again.
            log.warning(
                "inline attempt of %s failed; its lease will retry", delivery.id, exc_info=True
            )
        finally:
            self.unclaim(delivery.url, delivery.endpoint_id)

    async def deliver(self, delivery_id: str, attempt_no: int) -> None:
        """One attempt, run by arq: retries, and first attempts that were not sent inline."""
        delivery = await self.deliveries.get(delivery_id)
        if (
            delivery is None
            or delivery.status is not DeliveryStatus.PENDING
            or delivery.attempt_count != attempt_no - 1
        ):
            return  # a stale or duplicate run of an attempt already recorded
        cap = destination_key(delivery.url, delivery.endpoint_id)
        if not self.caps.try_acquire(cap):
            raise Retry(defer=BUSY_DEFER_SECONDS)
        try:
            await self._attempt(delivery, attempt_no)
        finally:
            self.caps.release(cap)

    async def _cached_secrets(self, kind: str, owner: str) -> list[str]:
        # Decrypted secrets, kept briefly: a rotation keeps the old secret valid for 24 h, so
        # a new one joining the signatures a few seconds late breaks no receiver.
        cache_key = f"{kind}:{owner}"
        found = self.secrets_cache.get(cache_key)
        if found is not None:
            return found
        if kind == "endpoint":
            found = await self.endpoints.signing_secrets(owner)
        else:
            found = await self.tenants.signing_secrets(owner)
        self.secrets_cache.put(cache_key, found)
        return found

    async def _attempt(self, delivery: DeliveryRecord, attempt_no: int) -> None:
        with log_context(job_id=delivery.job_id, delivery_id=delivery.id, tenant=delivery.tenant):
            await self._attempt_in_context(delivery, attempt_no)

    async def _attempt_in_context(self, delivery: DeliveryRecord, attempt_no: int) -> None:
        endpoint: EndpointRecord | None = None
        if delivery.endpoint_id:
            endpoint = await self.endpoints.get(delivery.endpoint_id)
            if endpoint is None or endpoint.disabled:
                reason = "endpoint deleted" if endpoint is None else "endpoint disabled"
                await self._give_up(delivery, attempt_no, reason)
                return
            secrets_ = await self._cached_secrets("endpoint", endpoint.id)
        else:
            secrets_ = await self._cached_secrets("tenant", delivery.tenant)
        started = now_ms()
        result = await send(
            self.session, delivery.url, delivery.webhook_id, delivery.body.encode(), secrets_,
            timeout=self.settings.webhook_timeout_seconds, policy=self.policy,
        )  # fmt: skip
        await self._record(delivery, attempt_no, started, result, endpoint)

    async def _record(
        self,
        delivery: DeliveryRecord,
        attempt_no: int,
        started: int,
        result: AttemptResult,
        endpoint: EndpointRecord | None,
    ) -> None:
        entry = attempt_entry(started, result)
        DELIVERY_SECONDS.observe(result.latency_ms / 1000)
        if result.succeeded:
            DELIVERY_ATTEMPTS.labels("succeeded").inc()
            if endpoint is not None:
                await self.endpoints.record_success(endpoint.id)
            await self.deliveries.record_attempt(
                delivery, attempt_no, entry, DeliveryStatus.SUCCEEDED
            )
            return
        delay = None
        if result.status_code == 410:
            if endpoint is not None:
                await self.endpoints.disable(endpoint, "the receiver answered 410 Gone")
                ENDPOINTS_DISABLED.labels("gone").inc()
        elif not result.refused:
            delay = next_delay(self.settings.webhook_retry_schedule, attempt_no, result.retry_after)
            if endpoint is not None:
                since = await self.endpoints.record_failure(endpoint.id, started)
                if started - since >= self.settings.webhook_disable_after_seconds * 1000:
                    await self.endpoints.disable(
                        endpoint, f"failing continuously since {to_rfc3339(since)}"
                    )
                    ENDPOINTS_DISABLED.labels("failing").inc()
                    delay = None
        DELIVERY_ATTEMPTS.labels("failed" if delay is None else "retrying").inc()
        if delay is None:
            await self.deliveries.record_attempt(delivery, attempt_no, entry, DeliveryStatus.FAILED)
        else:
            due = now_ms() + int(delay * 1000)
            await self.deliveries.record_attempt(
                delivery, attempt_no, entry, DeliveryStatus.PENDING, due
            )

    async def _give_up(self, delivery: DeliveryRecord, attempt_no: int, reason: str) -> None:
        entry = attempt_entry(now_ms(), AttemptResult(None, 0.0, reason, None))
        await self.deliveries.record_attempt(delivery, attempt_no, entry, DeliveryStatus.FAILED)


def deliver_timeout(settings: Settings) -> float:
    return settings.webhook_timeout_seconds + 10


async def deliver(ctx: dict[str, Any], delivery_id: str, attempt_no: int) -> None:
    runtime: DispatcherRuntime = ctx[RUNTIME]
    try:
        await runtime.deliver(delivery_id, attempt_no)
    finally:
        ctx[WAKE]()  # a slot is free: look for due deliveries now


def create_dispatcher(
    settings: Settings,
    *,
    handle_signals: bool = True,
    on_ready: Callable[[DispatcherRuntime], Awaitable[None]] | None = None,
) -> WakeableWorker:
    return build_role_worker(
        settings,
        function=func(
            deliver,
            name=DELIVER_FUNCTION,
            max_tries=ARQ_MAX_TRIES,
            # Above the HTTP timeout (the attempt's only slow step), so arq never runs one
            # attempt twice at once. After a crash mid-attempt, arq runs it again once its
            # in-progress marker expires: this timeout + 10 s (35 s by default).
            timeout=deliver_timeout(settings),
        ),
        queue_name=keys.WEBHOOK_QUEUE,
        max_jobs=settings.webhook_max_concurrency,
        wakeup_channel=keys.WEBHOOKS_WAKEUP,
        open_runtime=lambda: DispatcherRuntime.open(settings),
        handle_signals=handle_signals,
        on_ready=on_ready,
    )

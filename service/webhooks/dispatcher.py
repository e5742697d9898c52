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
from arq import Retry, Worker
from arq.worker import func
from redis.asyncio import Redis
from yarl import URL

from service.bootstrap import secret_box
from service.clock import now_ms, to_rfc3339
from service.redis_conn import arq_settings, connect, deserialize_arq, serialize_arq
from service.settings import Settings
from service.store import keys
from service.store.arqjobs import DELIVER_FUNCTION
from service.store.deliveries import DeliveryRecord, DeliveryStatus, DeliveryStore
from service.store.endpoints import EndpointRecord, EndpointStore
from service.store.jobs import JobStore
from service.store.scripts import Scripts
from service.store.tenants import TenantStore
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
ARQ_MAX_TRIES = 1_000


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


def destination_key(delivery: DeliveryRecord) -> str:
    if delivery.endpoint_id:
        return delivery.endpoint_id
    url = URL(delivery.url)
    return f"{url.scheme}://{url.host}:{url.port}"


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
            fanout=FanOut(redis, jobs, endpoints, deliveries, consumer),
            session=aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()),
            policy=policy,
            caps=ConcurrencyCaps(settings.webhook_concurrency_per_endpoint),
        )
        loop = asyncio.get_running_loop()
        runtime.tasks = [
            loop.create_task(runtime.fanout.run(), name="fan-out"),
            loop.create_task(runtime._sweep_forever(), name="sweeper"),
        ]
        return runtime

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.session.close()
        await self.redis.aclose()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY_SECONDS)
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

    async def deliver(self, delivery_id: str, attempt_no: int) -> None:
        delivery = await self.deliveries.get(delivery_id)
        if (
            delivery is None
            or delivery.status is not DeliveryStatus.PENDING
            or delivery.attempt_count != attempt_no - 1
        ):
            return  # a stale or duplicate run of an attempt already recorded
        endpoint: EndpointRecord | None = None
        if delivery.endpoint_id:
            endpoint = await self.endpoints.get(delivery.endpoint_id)
            if endpoint is None or endpoint.disabled:
                reason = "endpoint deleted" if endpoint is None else "endpoint disabled"
                await self._give_up(delivery, attempt_no, reason)
                return
            secrets_ = await self.endpoints.signing_secrets(endpoint.id)
        else:
            secrets_ = await self.tenants.signing_secrets(delivery.tenant)
        cap = destination_key(delivery)
        if not self.caps.try_acquire(cap):
            raise Retry(defer=BUSY_DEFER_SECONDS)
        started = now_ms()
        try:
            result = await send(
                self.session, delivery.url, delivery.webhook_id, delivery.body.encode(), secrets_,
                timeout=self.settings.webhook_timeout_seconds, policy=self.policy,
            )  # fmt: skip
        finally:
            self.caps.release(cap)
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
        if result.succeeded:
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
        elif not result.refused:
            delay = next_delay(self.settings.webhook_retry_schedule, attempt_no, result.retry_after)
            if endpoint is not None:
                since = await self.endpoints.record_failure(endpoint.id, started)
                if started - since >= self.settings.webhook_disable_after_seconds * 1000:
                    await self.endpoints.disable(
                        endpoint, f"failing continuously since {to_rfc3339(since)}"
                    )
                    delay = None
        if delay is None:
            await self.deliveries.record_attempt(delivery, attempt_no, entry, DeliveryStatus.FAILED)
        else:
            due = now_ms() + int(delay * 1000)
            await self.deliveries.record_attempt(
                delivery, attempt_no, entry, DeliveryStatus.PENDING, due
            )

    async def _give_up(self, delivery: DeliveryRecord, attempt_no: int, reason: str) -> None:
        entry = {"at": to_rfc3339(now_ms()), "status_code": None, "latency_ms": 0.0,
                 "error": reason, "response": None}  # fmt: skip
        await self.deliveries.record_attempt(delivery, attempt_no, entry, DeliveryStatus.FAILED)


_RUNTIME = "acceptd_dispatcher"


def deliver_timeout(settings: Settings) -> float:
    return settings.webhook_timeout_seconds + 10


async def deliver(ctx: dict[str, Any], delivery_id: str, attempt_no: int) -> None:
    runtime: DispatcherRuntime = ctx[_RUNTIME]
    await runtime.deliver(delivery_id, attempt_no)


def create_dispatcher(
    settings: Settings,
    *,
    handle_signals: bool = True,
    on_ready: Callable[[DispatcherRuntime], Awaitable[None]] | None = None,
) -> Worker:
    async def startup(ctx: dict[str, Any]) -> None:
        ctx[_RUNTIME] = runtime = await DispatcherRuntime.open(settings)
        if on_ready is not None:
            await on_ready(runtime)

    async def shutdown(ctx: dict[str, Any]) -> None:
        runtime: DispatcherRuntime | None = ctx.get(_RUNTIME)
        if runtime is not None:
            await runtime.close()

    return Worker(
        functions=[
            func(
                deliver,
                name=DELIVER_FUNCTION,
                max_tries=ARQ_MAX_TRIES,
                # Above the HTTP timeout (the attempt's only slow step), so arq never runs one
                # attempt twice at once. After a crash mid-attempt, arq runs it again once its
                # in-progress marker expires: this timeout + 10 s (35 s by default).
                timeout=deliver_timeout(settings),
            )
        ],
        queue_name=keys.WEBHOOK_QUEUE,
        redis_settings=arq_settings(settings),
        handle_signals=handle_signals,
        on_startup=startup,
        on_shutdown=shutdown,
        max_jobs=settings.webhook_max_concurrency,
        keep_result=0,
        poll_delay=settings.worker_poll_delay_seconds,
        max_tries=ARQ_MAX_TRIES,
        job_serializer=serialize_arq,
        job_deserializer=deserialize_arq,
        log_results=False,
    )

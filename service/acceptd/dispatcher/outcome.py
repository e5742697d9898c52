"""What follows an attempt: record it, then succeed, retry on the schedule, or give up;
keep the endpoint's health and disable it after 410 Gone or days of failure."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from acceptd.core.clock import now_ms, to_rfc3339
from acceptd.core.events import OPERATIONAL_EVENTS
from acceptd.core.settings import Settings
from acceptd.core.statuses import DeliveryStatus
from acceptd.dispatcher.retry_policy import next_delay
from acceptd.dispatcher.sender import AttemptResult
from acceptd.runtime.metrics import DELIVERY_ATTEMPTS, DELIVERY_SECONDS, ENDPOINTS_DISABLED
from acceptd.store.deliveries import KEPT_ATTEMPTS, DeliveryRecord, DeliveryStore
from acceptd.store.endpoints import EndpointRecord, EndpointStore
from acceptd.store.operational import OperationalEvent, emit, subscribed
from acceptd.store.outages import persist
from acceptd.store.shards import Shards
from acceptd.wire.resources import delivery_resource, endpoint_resource


def attempt_entry(started_ms: int, result: AttemptResult) -> dict[str, Any]:
    """One line of a delivery's attempts log, as the API shows it."""
    return {
        "at": to_rfc3339(started_ms),
        "status_code": result.status_code,
        "latency_ms": result.latency_ms,
        "error": result.error,
        "response": result.response,
    }


class OutcomePolicy:
    def __init__(
        self,
        settings: Settings,
        deliveries: DeliveryStore,
        endpoints: EndpointStore,
        shards: Shards,
    ) -> None:
        self._shards = shards
        self._settings = settings
        self._deliveries = deliveries
        self._endpoints = endpoints

    async def record(
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
                endpoint_id = endpoint.id
                await persist(
                    "an endpoint's health", lambda: self._endpoints.record_success(endpoint_id)
                )
            await persist(
                "an attempt",
                lambda: self._deliveries.record_attempt(
                    delivery, attempt_no, entry, DeliveryStatus.SUCCEEDED
                ),
            )
            return
        delay = None
        if result.status_code == 410:
            if endpoint is not None:
                await self._disable(endpoint, "the receiver answered 410 Gone")
                ENDPOINTS_DISABLED.labels("gone").inc()
        elif not result.refused:
            delay = next_delay(self._schedule_of(endpoint), attempt_no, result.retry_after)
            if endpoint is not None and await self._failing_too_long(endpoint, started):
                delay = None
        DELIVERY_ATTEMPTS.labels("failed" if delay is None else "retrying").inc()
        if delay is None:
            exhausted = await self._exhausted(delivery, attempt_no, entry)
            await persist(
                "an attempt",
                lambda: self._deliveries.record_attempt(
                    delivery, attempt_no, entry, DeliveryStatus.FAILED, exhausted=exhausted
                ),
            )
        else:
            due = now_ms() + int(delay * 1000)
            await persist(
                "an attempt",
                lambda: self._deliveries.record_attempt(
                    delivery, attempt_no, entry, DeliveryStatus.PENDING, due
                ),
            )

    def _schedule_of(self, endpoint: EndpointRecord | None) -> list[float]:
        """The endpoint's own retry schedule, else the global one."""
        if endpoint is not None and endpoint.retry_schedule:
            return endpoint.retry_schedule
        return self._settings.webhook_retry_schedule

    def _disable_after_ms(self, endpoint: EndpointRecord) -> float:
        """How long the endpoint may fail without a break before it is disabled: the global
        window (ACCEPTD_WEBHOOK_DISABLE_AFTER_SECONDS), or its own schedule's span when that
        is longer, so a disable never cuts its own schedule short."""
        window = self._settings.webhook_disable_after_seconds
        if endpoint.retry_schedule:
            window = max(window, sum(endpoint.retry_schedule))
        return window * 1000

    async def _failing_too_long(self, endpoint: EndpointRecord, started: int) -> bool:
        """Counts the failure; disables the endpoint once its streak is too long."""
        since = await persist(
            "an endpoint's health", lambda: self._endpoints.record_failure(endpoint.id, started)
        )
        if started - since < self._disable_after_ms(endpoint):
            return False
        await self._disable(endpoint, f"failing continuously since {to_rfc3339(since)}")
        ENDPOINTS_DISABLED.labels("failing").inc()
        return True

    async def _disable(self, endpoint: EndpointRecord, reason: str) -> None:
        """Disables it, and tells the tenant's operations endpoints (`endpoint.disabled`,
        with the reason) if it was not disabled already."""
        if not await persist(
            "a disabled endpoint", lambda: self._endpoints.disable(endpoint, reason)
        ):
            return
        disabled = await self._endpoints.get(endpoint.id)
        if disabled is not None:
            event = OperationalEvent(
                endpoint.tenant,
                "endpoint.disabled",
                endpoint.id,
                endpoint.id,
                endpoint_resource(disabled),
            )
            await persist("an operational event", lambda: emit(self._shards, event))

    async def _exhausted(
        self, delivery: DeliveryRecord, attempt_no: int, entry: dict[str, Any]
    ) -> OperationalEvent | None:
        """The `delivery.exhausted` event this failure owes: the delivery as it ends, with
        its attempts. None for a delivery of an operational event (no loops)."""
        if delivery.event in OPERATIONAL_EVENTS:
            return None
        # Its attempts are read only for a tenant that will be sent it (the script checks
        # again, in the step that writes it).
        if not await subscribed(self._shards, delivery.tenant, "delivery.exhausted", delivery.id):
            return None
        earlier = await self._deliveries.attempts(delivery.id)
        ended = replace(
            delivery, status=DeliveryStatus.FAILED, attempt_count=attempt_no, next_attempt_ms=None
        )
        return OperationalEvent(
            delivery.tenant,
            "delivery.exhausted",
            delivery.id,
            delivery.endpoint_id,
            delivery_resource(ended, [*earlier[-(KEPT_ATTEMPTS - 1) :], entry]),
        )

    async def give_up(self, delivery: DeliveryRecord, attempt_no: int, reason: str) -> None:
        entry = attempt_entry(now_ms(), AttemptResult(None, 0.0, reason, None))
        await persist(
            "an attempt",
            lambda: self._deliveries.record_attempt(
                delivery, attempt_no, entry, DeliveryStatus.FAILED
            ),
        )

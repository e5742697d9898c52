"""One attempt of one delivery, end to end: look up the endpoint, sign with the right
secrets, send, and hand the result to the outcome policy."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from arq import Retry

from acceptd.core import tracing
from acceptd.core.clock import now_ms
from acceptd.core.logs import log_context
from acceptd.core.settings import Settings
from acceptd.core.ssrf import AddressPolicy
from acceptd.core.statuses import DeliveryStatus
from acceptd.dispatcher.caps import Slots
from acceptd.dispatcher.egress import WebhookProxy
from acceptd.dispatcher.outcome import OutcomePolicy
from acceptd.dispatcher.sender import send
from acceptd.dispatcher.signing_secrets import SigningSecrets
from acceptd.runtime.metrics import DELIVERY_THROTTLED_SECONDS, WEBHOOK_PROXY_FAILURES
from acceptd.store.deliveries import DeliveryRecord, DeliveryStore, Persisted
from acceptd.store.endpoints import EndpointRecord, EndpointStore
from acceptd.store.ordering import OrderQueues
from acceptd.store.throttle import EndpointThrottle

# A busy receiver or tenant (at its cap) has the attempt put back this long, uncounted.
BUSY_DEFER_SECONDS = 0.5
# How long a queued attempt may wait in its dispatcher for a busy receiver's slot first
# (Slots.take_within): the slot is handed over the moment it frees. Short: a receiver that
# answers frees one within milliseconds, and the wait holds one of the queue's run slots.
BUSY_WAIT_SECONDS = 0.25
# An attempt the webhook proxy failed is run again after this long, uncounted.
PROXY_RETRY_SECONDS = 5.0

log = logging.getLogger(__name__)


async def landed(persisted: Persisted) -> bool:
    """Whether the delivery exists: made before, or its creation under way made it. A
    creation that failed (the fan-out cancels `persisted`), or found the delivery made
    already (None), is the fan-out's to handle (its event is read again): the attempt it
    sent records nothing."""
    if persisted is None:
        return True
    try:
        # Shielded: an attempt cancelled while it waits does not cancel the creation.
        return await asyncio.shield(persisted) is not None
    except asyncio.CancelledError:
        if persisted.cancelled():  # the creation failed (dispatcher/fanout.py)
            return False
        raise  # this attempt itself was cancelled


class Attempts:
    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession,
        policy: AddressPolicy,
        proxy: WebhookProxy | None,
        slots: Slots,
        deliveries: DeliveryStore,
        endpoints: EndpointStore,
        secrets: SigningSecrets,
        outcome: OutcomePolicy,
        throttle: EndpointThrottle,
        order: OrderQueues,
    ) -> None:
        self._settings = settings
        self._session = session
        self._policy = policy
        self._proxy = proxy
        self.slots = slots
        self._deliveries = deliveries
        self._endpoints = endpoints
        self._secrets = secrets
        self._outcome = outcome
        self._throttle = throttle
        self._order = order

    async def run_queued(self, delivery_id: str, attempt_no: int) -> None:
        """An attempt run by arq: retries, and first attempts that were not sent inline."""
        current = await self._current(delivery_id, attempt_no)
        if current is None:
            return
        delivery, endpoint = current
        slot = (delivery.tenant, delivery.url, delivery.endpoint_id)
        waited = False
        if not self.slots.try_take(*slot):
            if not await self.slots.take_within(*slot, BUSY_WAIT_SECONDS):
                raise Retry(defer=BUSY_DEFER_SECONDS)
            waited = True
        try:  # the slot is held from here: every way out gives it back
            if waited:  # time has passed: the delivery may be settled, its endpoint disabled
                current = await self._current(delivery_id, attempt_no)
            if current is None:
                return
            delivery, endpoint = current
            # The throttle's turn is taken with the slot held, never before a wait: a turn
            # taken and then spent seconds later would let a burst past the endpoint's rate.
            if endpoint is not None and endpoint.rate_limit_per_second and not endpoint.disabled:
                verdict = await self._throttle.take(
                    endpoint.id, endpoint.rate_limit_per_second, delivery.id
                )
                if not verdict.allowed:  # not made, not counted: put back until its turn
                    raise Retry(defer=verdict.wait_seconds)
                DELIVERY_THROTTLED_SECONDS.observe(verdict.waited_seconds)
            await self.run(delivery, attempt_no, endpoint)
        finally:
            self.slots.give_back(*slot)

    async def _current(
        self, delivery_id: str, attempt_no: int
    ) -> tuple[DeliveryRecord, EndpointRecord | None] | None:
        """The delivery and its endpoint, or None for a stale or duplicate run of an attempt
        already recorded."""
        delivery = await self._deliveries.get(delivery_id)
        if (
            delivery is None
            or delivery.status is not DeliveryStatus.PENDING
            or delivery.attempt_count != attempt_no - 1
        ):
            return None
        endpoint = None
        if delivery.endpoint_id:
            endpoint = await self._endpoints.get(delivery.endpoint_id)
        return delivery, endpoint

    async def run(
        self,
        delivery: DeliveryRecord,
        attempt_no: int,
        endpoint: EndpointRecord | None = None,
        persisted: Persisted = None,
    ) -> None:
        """The attempt itself; the caller holds the destination's slot (and may pass the
        endpoint it already read). `persisted`: the delivery's creation, if it may still be
        under way: its outcome is written once that landed, and not at all if it did not."""
        with log_context(job_id=delivery.job_id, delivery_id=delivery.id, tenant=delivery.tenant):
            if delivery.endpoint_id:
                if endpoint is None:
                    endpoint = await self._endpoints.get(delivery.endpoint_id)
                secrets = []
                if endpoint is not None and not endpoint.disabled:
                    secrets = await self._secrets.for_endpoint(endpoint.id)
                if endpoint is None or not secrets:
                    # An endpoint without secrets was deleted after it was read (its hash
                    # went with them): nothing leaves unsigned.
                    disabled = endpoint is not None and endpoint.disabled
                    reason = "endpoint disabled" if disabled else "endpoint deleted"
                    if not await landed(persisted):
                        return
                    await self._outcome.give_up(delivery, attempt_no, reason)
                    await self._next_in_order(delivery)
                    return
                extra = self._endpoints.headers_of(endpoint)
                # Where the endpoint is now: its headers (a token, say) are its current ones,
                # and must not go to a URL it was moved away from.
                url = endpoint.url
            else:
                secrets = await self._secrets.for_tenant(delivery.tenant)
                extra, url = {}, delivery.url
            started = now_ms()
            attributes = {
                "acceptd.delivery_id": delivery.id,
                "acceptd.event": delivery.event,
                "acceptd.attempt": attempt_no,
            }
            with tracing.span(
                f"deliver {delivery.event}",
                delivery.traceparent,
                kind="client",
                attributes=attributes,
            ) as own:
                result = await send(
                    self._session,
                    url,
                    delivery.webhook_id,
                    delivery.body.encode(),
                    secrets,
                    timeout=self._settings.webhook_timeout_seconds,
                    policy=self._policy,
                    traceparent=own,
                    extra_headers=extra,
                    proxy=self._proxy,
                )
            if result.proxy_failed:
                # Our outage, not the receiver's: nothing recorded, nothing counted against
                # the endpoint; the attempt runs again once the proxy may be back.
                WEBHOOK_PROXY_FAILURES.inc()
                log.warning(
                    "the webhook proxy failed; %s waits %g s", delivery.id, PROXY_RETRY_SECONDS
                )
                raise Retry(defer=PROXY_RETRY_SECONDS)
            if not await landed(persisted):
                log.warning("%s was sent, but not made: its event is read again", delivery.id)
                return
            await self._outcome.record(delivery, attempt_no, started, result, endpoint)
            await self._next_in_order(delivery)

    async def _next_in_order(self, delivery: DeliveryRecord) -> None:
        """After an attempt to an ordered endpoint: if the delivery ended, its key's next
        delivery starts (advance checks; a retrying head keeps its key)."""
        if delivery.order_queue is not None:
            await self._order.advance(delivery.order_queue)

"""Runs a bulk recovery (POST /v1/endpoints/{id}/recover) on a dispatcher: re-enables the
endpoint, then sends every failed delivery of the window again, chunk by chunk, recording
progress so a run cut short resumes where it stopped."""

from __future__ import annotations

import logging

from acceptd.store.deliveries import DeliveryStore
from acceptd.store.endpoints import EndpointStore
from acceptd.store.operational import OperationalEvent, emit
from acceptd.store.recoveries import RecoveryStore
from acceptd.store.shards import Shards
from acceptd.wire.resources import endpoint_resource

log = logging.getLogger(__name__)


class RecoveryRunner:
    def __init__(
        self,
        recoveries: RecoveryStore,
        deliveries: DeliveryStore,
        endpoints: EndpointStore,
        shards: Shards,
    ) -> None:
        self._shards = shards
        self._recoveries = recoveries
        self._deliveries = deliveries
        self._endpoints = endpoints

    async def run(self, recovery_id: str) -> None:
        recovery = await self._recoveries.get(recovery_id)
        if recovery is None or recovery.status == "done":
            return
        sent = recovery.sent
        # Recovering an endpoint's deliveries re-enables it (API.md); gone: nothing to send.
        before = await self._endpoints.get(recovery.endpoint_id, recovery.tenant)
        enabled = await self._endpoints.update(
            recovery.endpoint_id, recovery.tenant, disabled=False
        )
        if enabled is None:
            await self._recoveries.finish(recovery_id, sent)
            return
        if before is not None and before.disabled:
            event = OperationalEvent(
                enabled.tenant,
                "endpoint.enabled",
                enabled.id,
                enabled.id,
                endpoint_resource(enabled),
            )
            await emit(self._shards, event)
        async for cursor, failed in self._recoveries.failed(
            recovery.endpoint_id, recovery.since_ms, recovery.until_ms, recovery.cursor
        ):
            for delivery in failed:
                if delivery.tenant == recovery.tenant and await self._deliveries.requeue(
                    delivery, manual=True
                ):
                    sent += 1
            await self._recoveries.progress(recovery_id, cursor, sent)
        await self._recoveries.finish(recovery_id, sent)
        log.info("recovery %s sent %d deliveries again", recovery_id, sent)

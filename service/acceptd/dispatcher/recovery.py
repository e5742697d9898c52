"""Runs a bulk recovery (POST /v1/endpoints/{id}/recover) on a dispatcher: re-enables the
endpoint, then sends every failed delivery of the window again, chunk by chunk, recording
progress so a run cut short resumes where it stopped."""

from __future__ import annotations

import logging

from acceptd.store.deliveries import DeliveryStore
from acceptd.store.endpoints import EndpointStore
from acceptd.store.recoveries import RecoveryStore

log = logging.getLogger(__name__)


class RecoveryRunner:
    def __init__(
        self, recoveries: RecoveryStore, deliveries: DeliveryStore, endpoints: EndpointStore
    ) -> None:
        self._recoveries = recoveries
        self._deliveries = deliveries
        self._endpoints = endpoints

    async def run(self, recovery_id: str) -> None:
        recovery = await self._recoveries.get(recovery_id)
        if recovery is None or recovery.status == "done":
            return
        sent = recovery.sent
        # Recovering an endpoint's deliveries re-enables it (API.md); gone: nothing to send.
        if await self._endpoints.update(
            recovery.endpoint_id, recovery.tenant, disabled=False
        ) is None:  # fmt: skip
            await self._recoveries.finish(recovery_id, sent)
            return
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

"""Bulk recovery of an endpoint's failed deliveries: an operation record (counts, progress,
a cursor) and its work item on the dispatchers' queue. The scan goes a chunk at a time over
the endpoint's delivery index, so its memory is bounded whatever the retention holds, and a
dispatcher that dies midway leaves a cursor the next run resumes from."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

from acceptd.core import ids
from acceptd.core.clock import now_ms
from acceptd.core.statuses import DeliveryStatus
from acceptd.store import keys
from acceptd.store.arqjobs import RECOVER_FUNCTION, arq_payload
from acceptd.store.deliveries import DeliveryStore, DeliveryView
from acceptd.store.shards import Shards

CHUNK = 500


@dataclass(frozen=True)
class RecoveryRecord:
    id: str
    tenant: str
    endpoint_id: str
    since_ms: int
    until_ms: int
    status: str  # running | done
    total: int
    sent: int
    cursor: str | None
    created_ms: int
    finished_ms: int | None

    @classmethod
    def from_hash(cls, recovery_id: str, raw: dict[str, str]) -> RecoveryRecord:
        return cls(
            id=recovery_id,
            tenant=raw["tenant"],
            endpoint_id=raw["endpoint"],
            since_ms=int(raw["since"]),
            until_ms=int(raw["until"]),
            status=raw["status"],
            total=int(raw["total"]),
            sent=int(raw.get("sent", "0")),
            cursor=raw.get("cursor") or None,
            created_ms=int(raw["created"]),
            finished_ms=int(raw["finished"]) if raw.get("finished") else None,
        )


class RecoveryStore:
    def __init__(self, shards: Shards, deliveries: DeliveryStore, retention_seconds: int) -> None:
        self._shards = shards
        self._deliveries = deliveries
        self._retention_ms = retention_seconds * 1000

    async def failed(
        self, endpoint_id: str, since_ms: int, until_ms: int, after: str | None = None
    ) -> AsyncIterator[tuple[str, list[DeliveryView]]]:
        """(cursor, the failed deliveries of one chunk), chunk by chunk, newest first."""
        before = after
        while True:
            found = await self._deliveries.ids_between(
                lambda shard: keys.endpoint_deliveries(endpoint_id, shard),
                since_ms,
                until_ms,
                CHUNK,
                before=before,
            )
            if not found:
                return
            records = await self._deliveries.views(found)
            yield found[-1], [d for d, _ in records if d.status is DeliveryStatus.FAILED]
            before = found[-1]
            if len(found) < CHUNK:
                return

    async def count(self, endpoint_id: str, since_ms: int, until_ms: int) -> int:
        total = 0
        async for _, failed in self.failed(endpoint_id, since_ms, until_ms):
            total += len(failed)
        return total

    async def create(
        self, tenant: str, endpoint_id: str, since_ms: int, until_ms: int, total: int
    ) -> RecoveryRecord:
        shard = random.randrange(self._shards.count)  # noqa: S311 - spreading load
        recovery_id, now = ids.new_id("rcv", shard), now_ms()
        fields = {
            "tenant": tenant,
            "endpoint": endpoint_id,
            "since": since_ms,
            "until": until_ms,
            "status": "running",
            "total": total,
            "sent": 0,
            "created": now,
        }
        arq_id = f"recover:{recovery_id}"
        async with self._shards.of(shard).pipeline(transaction=True) as pipe:
            pipe.hset(keys.recovery(recovery_id), mapping=fields)
            pipe.pexpire(keys.recovery(recovery_id), self._retention_ms)
            pipe.set(keys.arq_job(arq_id), arq_payload(RECOVER_FUNCTION, [recovery_id], now))
            pipe.zadd(keys.webhook_queue(shard), {arq_id: now})
            pipe.spublish(keys.wakeup(keys.WEBHOOKS_WAKEUP, shard), "1")
            await pipe.execute()
        found = await self.get(recovery_id)
        assert found is not None
        return found

    async def get(self, recovery_id: str, tenant: str | None = None) -> RecoveryRecord | None:
        key = keys.recovery(recovery_id)
        raw: dict[str, str] = await self._shards.for_key(key).hgetall(key)  # type: ignore[misc]
        if not raw or (tenant is not None and raw.get("tenant") != tenant):
            return None
        return RecoveryRecord.from_hash(recovery_id, raw)

    async def progress(self, recovery_id: str, cursor: str, sent: int) -> None:
        key = keys.recovery(recovery_id)
        await self._shards.for_key(key).hset(key, mapping={"cursor": cursor, "sent": sent})  # type: ignore[misc]

    async def finish(self, recovery_id: str, sent: int) -> None:
        key = keys.recovery(recovery_id)
        await self._shards.for_key(key).hset(  # type: ignore[misc]
            key,
            mapping={"status": "done", "sent": sent, "finished": now_ms()},
        )

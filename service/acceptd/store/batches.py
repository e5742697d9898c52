"""Batches: many ordinary jobs submitted together, with counts per status kept exact by the
job status scripts (lua/_common.lua) and a batch.completed event when the last one ends."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from acceptd.core import ids
from acceptd.core.clock import now_ms
from acceptd.core.jsonenc import compact
from acceptd.core.statuses import TERMINAL_STATUSES, JobStatus
from acceptd.store import keys, records
from acceptd.store.arqjobs import RUN_JOB_FUNCTION, arq_payload
from acceptd.store.idempotency import HeldKey
from acceptd.store.jobs import (
    HIGH_PRIORITY_HEAD_START_MS,
    JobRef,
    JobStore,
    QuotaExceededError,
)
from acceptd.store.placement import job_shard
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from acceptd.store.usage import ByteBudgetExceededError, stored_bytes

# Items per script call inside the batch's one transaction: few calls, each one modest.
CHUNK = 1000
# Cancels sent per pipeline round trip when a whole batch is canceled.
CANCEL_CHUNK = 500


@dataclass(frozen=True)
class NewItem:
    type: str
    input: Any
    metadata: dict[str, Any] | None
    ordering_key: str | None = None


@dataclass(frozen=True)
class NewBatch:
    tenant: str
    items: list[NewItem]
    callback_url: str | None
    item_events: bool
    metadata: dict[str, Any]
    priority: str = "normal"
    # The submit's trace: every item's run and webhooks continue it.
    traceparent: str | None = None


@dataclass(frozen=True)
class BatchRecord:
    id: str
    tenant: str
    total: int
    counts: dict[str, int]
    callback_url: str | None
    item_events: bool
    metadata: dict[str, Any]
    priority: str
    created_ms: int
    completed_ms: int | None

    @property
    def terminal_count(self) -> int:
        return sum(self.counts[s.value] for s in TERMINAL_STATUSES)

    @classmethod
    def from_hash(cls, batch_id: str, raw: dict[str, str]) -> BatchRecord:
        return cls(
            id=batch_id,
            tenant=raw["tenant"],
            total=int(raw["total"]),
            counts={s.value: int(raw.get(f"n:{s.value}", "0")) for s in JobStatus},
            callback_url=raw.get("callback_url") or None,
            item_events=raw.get("item_events") == "1",
            metadata=json.loads(raw.get("metadata", "{}")),
            priority=raw.get("priority", "normal"),
            created_ms=int(raw["created"]),
            completed_ms=int(raw["completed"]) if raw.get("completed") else None,
        )


class BatchStore:
    def __init__(self, shards: Shards, scripts: Scripts, jobs: JobStore) -> None:
        self._shards = shards
        self._scripts = scripts
        self._jobs = jobs

    async def create(self, new: NewBatch, *, idempotency: HeldKey | None = None) -> BatchRecord:
        """Writes the batch and every item, queued, in one MULTI/EXEC: all or nothing, one
        round trip, and nothing if it would take the tenant past its job quota or byte
        budget (checked first in the same transaction, lua/batch_open.lua). `idempotency`,
        the key the request holds, is marked done in it too.

        A batch and its items live on one shard (the transaction needs one slot): the
        shard of its Idempotency-Key, or of its first item's ordering key, or one drawn at
        random. Items with other ordering keys than the first keep their order among
        themselves but not with jobs of the same key outside the batch."""
        ordering_key = next((item.ordering_key for item in new.items if item.ordering_key), None)
        shard = (
            idempotency.shard
            if idempotency is not None
            else job_shard(new.tenant, self._shards.count, ordering_key=ordering_key)
        )
        batch_id = ids.new_id("bat", shard)
        created = now_ms()
        score = created - (HIGH_PRIORITY_HEAD_START_MS if new.priority == "high" else 0)
        item_callback = new.callback_url if new.item_events and new.callback_url else ""
        fields: dict[str, str | int] = {
            "id": batch_id,
            "tenant": new.tenant,
            "total": len(new.items),
            "terminal": 0,
            f"n:{JobStatus.QUEUED.value}": len(new.items),
            "created": created,
            "item_events": "1" if new.item_events else "0",
        }
        if new.callback_url:
            fields["callback_url"] = new.callback_url
        if new.metadata:
            fields["metadata"] = compact(new.metadata)
        if new.priority != "normal":
            fields["priority"] = new.priority
        head: list[str | int] = [
            new.tenant, created, score, batch_id, item_callback, new.priority,
            new.traceparent or "",
        ]  # fmt: skip
        # Fields every item's hash repeats (batch_items.lua's `common`).
        common_bytes = len(new.tenant) + len(batch_id) + len(item_callback) + 40
        common_bytes += len(new.traceparent or "")
        usage = keys.tenant_usage(new.tenant, shard)
        indexes = [
            keys.tenant_jobs(new.tenant, shard), keys.batch_jobs(batch_id), keys.job_queue(shard),
            keys.batch(batch_id), usage,
        ]  # fmt: skip
        chunks: list[tuple[list[str], list[list[str | int]]]] = []
        items_bytes = 0
        for start in range(0, len(new.items), CHUNK):
            chunk: list[list[str | int]] = []
            script_keys = list(indexes)
            for item in new.items[start : start + CHUNK]:
                job_id = ids.new_id("job", shard)
                run = JobRef(job_id, new.tenant, batch_id).run_args(item.type)
                values: list[str | int] = [
                    job_id,
                    item.type,
                    compact(item.input),
                    compact(item.metadata) if item.metadata else "",
                    arq_payload(RUN_JOB_FUNCTION, run, created),
                    item.ordering_key or "",
                ]
                size = stored_bytes(values) + common_bytes
                items_bytes += size
                chunk.append([*values, size])
                script_keys += [keys.job(job_id), keys.arq_job(job_id)]
            chunks.append((script_keys, chunk))
        gate_keys = [keys.batch(batch_id), keys.tenant_batches(new.tenant, shard),
                     keys.tenant_jobs(new.tenant, shard), usage]  # fmt: skip
        idem_value, idem_ttl_ms = "", 0
        if idempotency is not None:
            gate_keys.append(idempotency.redis_key)
            idem_value, idem_ttl_ms = idempotency.done_value(batch_id), idempotency.ttl_ms
        flat = [part for pair in fields.items() for part in pair]
        async with self._shards.of(shard).pipeline(transaction=True) as pipe:
            await self._scripts.batch_open(
                keys=gate_keys,
                args=[
                    batch_id,
                    len(new.items),
                    self._jobs.job_share,
                    self._jobs.byte_share,
                    stored_bytes(flat),
                    items_bytes,
                    idem_value,
                    idem_ttl_ms,
                    *flat,
                ],
                client=pipe,
            )
            for script_keys, chunk in chunks:
                await self._scripts.batch_items(
                    keys=script_keys, args=[*head, compact(chunk)], client=pipe
                )
            pipe.publish(keys.JOBS_WAKEUP, "1")
            opened = (await pipe.execute())[0]
        trim = self._jobs.trimmer.maybe_trim
        await trim(
            keys.tenant_batches(new.tenant, shard), keys.batch, "bat", usage, now=opened != 1
        )
        if opened == 0:
            raise QuotaExceededError(new.tenant, self._jobs.quota)
        if opened == -1:
            raise ByteBudgetExceededError(new.tenant, self._jobs.byte_budget)
        await self._jobs.trim(new.tenant, shard)
        record = await self.get(batch_id)
        assert record is not None
        return record

    async def get(self, batch_id: str, tenant: str | None = None) -> BatchRecord | None:
        key = keys.batch(batch_id)
        raw: dict[str, str] = await self._shards.for_key(key).hgetall(key)  # type: ignore[misc]
        if not raw or (tenant is not None and raw.get("tenant") != tenant):
            return None
        return BatchRecord.from_hash(batch_id, raw)

    async def page_ids(self, tenant: str, before: str | None, count: int) -> list[str]:
        """Batch ids of a tenant, newest first, strictly older than `before`."""
        return await records.newest_ids_across(
            self._shards, lambda shard: keys.tenant_batches(tenant, shard), before, count
        )

    async def get_many(self, batch_ids: list[str]) -> list[BatchRecord | None]:
        raws = await records.hashes(self._shards, [keys.batch(i) for i in batch_ids])
        return [
            BatchRecord.from_hash(i, r) if r else None for i, r in zip(batch_ids, raws, strict=True)
        ]

    async def forget_ids(self, tenant: str, batch_ids: list[str]) -> None:
        """Drop index entries whose batches expired, and their bytes: each shard's from its
        own index."""
        await records.forget_across(
            self._scripts,
            lambda shard: keys.tenant_batches(tenant, shard),
            batch_ids,
            keys.batch,
            lambda shard: keys.tenant_usage(tenant, shard),
        )

    async def cancel(self, batch: BatchRecord) -> None:
        """Cancel every item not yet terminal: queued ones at once, running ones cooperatively."""
        index = keys.batch_jobs(batch.id)
        job_ids: list[str] = await self._shards.for_key(index).zrange(index, 0, -1)
        refs = [JobRef(job_id, batch.tenant, batch.id) for job_id in job_ids]
        for start in range(0, len(refs), CANCEL_CHUNK):
            await self._jobs.cancel_many(refs[start : start + CANCEL_CHUNK])

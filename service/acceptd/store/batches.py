"""Batches: many ordinary jobs submitted together, with counts per status kept exact by the
job status scripts (lua/status/_prelude.lua) and a batch.completed event when the last one
ends.

A batch over many shards: its items spread over shards (store/keys.py), so one big batch
loads every primary of a cluster, not one. The items on each shard form a *part*: a hash
with their counts per status and an index of their ids, on that shard, kept by the status
scripts in the same step as each item's change (the home shard's part is the batch hash
itself). Reads sum the parts. When a part's last item ends, an internal event on its
shard's stream tells the home (dispatcher/fanout.py), which completes the batch once every
part has (lua/status/batch_part_done.lua): one batch.completed event. How a batch over many
shards is written all or nothing: `BatchStore.create`."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass, field
from typing import Any, NoReturn

from redis.asyncio.client import Pipeline

from acceptd.core import ids
from acceptd.core.clock import now_ms
from acceptd.core.jsonenc import compact
from acceptd.core.statuses import TERMINAL_STATUSES, JobStatus
from acceptd.store import keys, records
from acceptd.store.arqjobs import RUN_JOB_FUNCTION, arq_payload
from acceptd.store.idempotency import ClaimLapsedError, HeldKey
from acceptd.store.job_record import Fields, JobRef, content_fields, shared_fields
from acceptd.store.jobs import JobStore, QuotaExceededError
from acceptd.store.layouts import BatchField as B
from acceptd.store.layouts import flat
from acceptd.store.outages import StoreUnavailable
from acceptd.store.placement import job_shard
from acceptd.store.scriptcalls import (
    BatchItems,
    BatchOpen,
    BatchPartDone,
    BatchPartDrop,
    BatchPartRelease,
)
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from acceptd.store.usage import ByteBudgetExceededError, stored_bytes

log = logging.getLogger(__name__)

# Items per script call inside the batch's one transaction: few calls, each one modest.
CHUNK = 1000
# Cancels sent per pipeline round trip when a whole batch is canceled.
CANCEL_CHUNK = 500
# Items without an ordering key that fill one more shard: a small batch stays on one (one
# transaction), a big one spreads over every shard, and so over every primary of a cluster.
PART_MIN_ITEMS = 64
# A batch over many shards opens (its home's transaction) within this of its first part
# being written, or not at all: past it, a worker may roll the parts back.
OPEN_WINDOW_MS = 10_000
# A part still held this long after it was written has lost its API: a worker looks at it.
RECOVER_AFTER_MS = 2_000
# A part whose batch never opened is rolled back this long past the window: the hosts'
# clocks (the API's, the home's Redis, the worker's) may disagree by up to this.
ROLLBACK_MARGIN_MS = 20_000
# The internal event a part's last item writes on its shard's stream (lua/status/_prelude.lua).
PART_DONE_EVENT = "acceptd.batch_part_done"
# Pending parts a worker looks at per shard per round.
RECOVER_BATCH = 10


@dataclass(frozen=True)
class NewItem:
    type: str
    input: Any
    metadata: dict[str, Any] | None
    ordering_key: str | None = None
    # Its type's default (api/jobs.py concurrency): placed and counted like a job's.
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    # Its own, else the batch's (who receives its events: dispatcher/fanout.py).
    channels: list[str] = field(default_factory=list)


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
    # Those of batch.completed.
    channels: list[str] = field(default_factory=list)


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
    # The shards other than its home that hold some of its items.
    part_shards: tuple[int, ...] = ()
    channels: list[str] = field(default_factory=list)

    @property
    def terminal_count(self) -> int:
        return sum(self.counts[s.value] for s in TERMINAL_STATUSES)

    @staticmethod
    def part_shards_of(shards_field: str | None) -> tuple[int, ...]:
        """The other shards a batch's home hash names (its `shards` field)."""
        return tuple(int(shard) for shard in (shards_field or "").split(",") if shard)

    @classmethod
    def from_hash(
        cls, batch_id: str, raw: dict[str, str], parts: list[dict[str, str]] | None = None
    ) -> BatchRecord:
        """From the home hash and the hashes of the other parts (`parts`): the counts
        are their sum. A batch is complete once the home has heard from every part, or,
        before it has (a dispatcher yet to read the last part's event), once every item
        is terminal: then at the time its last part finished."""
        counts = {s.value: int(raw.get(B.COUNT + s.value, "0")) for s in JobStatus}
        finished = [int(raw[B.FINISHED])] if raw.get(B.FINISHED) else []
        for part in parts or []:
            for status in counts:
                counts[status] += int(part.get(B.COUNT + status, "0"))
            if part.get(B.FINISHED):
                finished.append(int(part[B.FINISHED]))
        total = int(raw[B.TOTAL])
        completed_ms = int(raw[B.COMPLETED]) if raw.get(B.COMPLETED) else None
        terminal = sum(counts[s.value] for s in TERMINAL_STATUSES)
        if completed_ms is None and parts and finished and terminal == total:
            completed_ms = max(finished)
        return cls(
            id=batch_id,
            tenant=raw[B.TENANT],
            total=total,
            counts=counts,
            callback_url=raw.get(B.CALLBACK_URL) or None,
            item_events=raw.get(B.ITEM_EVENTS) == "1",
            metadata=json.loads(raw.get(B.METADATA, "{}")),
            priority=raw.get(B.PRIORITY, "normal"),
            created_ms=int(raw[B.CREATED]),
            completed_ms=completed_ms,
            part_shards=cls.part_shards_of(raw.get(B.SHARDS)),
            channels=json.loads(raw[B.CHANNELS]) if raw.get(B.CHANNELS) else [],
        )


class BatchOpenTimeoutError(StoreUnavailable):
    """A batch over many shards did not open within OPEN_WINDOW_MS of its parts being
    written (a store too slow, or failing over): nothing of it stays. An outage to retry."""

    def __init__(self) -> None:
        super().__init__(f"the batch could not open within {OPEN_WINDOW_MS} ms")


@dataclass(frozen=True)
class _Part:
    """The items of a batch that land on one shard, ready to write."""

    shard: int
    chunks: list[BatchItems]
    items: int
    items_bytes: int


class BatchStore:
    def __init__(self, shards: Shards, scripts: Scripts, jobs: JobStore) -> None:
        self._shards = shards
        self._scripts = scripts
        self._jobs = jobs

    def _placement(self, new: NewBatch, home: int, *, capped: bool) -> dict[int, list[int]]:
        """Which shard each item lands on (shard -> item indexes, home first): an item
        with an ordering or concurrency key on the key's shard (store/placement.py), the
        others spread evenly over the home and as many more shards as they fill with
        PART_MIN_ITEMS each; all on the home for a tenant with a running cap (counted on
        its home)."""

        def keyed(item: NewItem) -> bool:
            return not capped and bool(item.ordering_key or item.concurrency_key)

        free = [i for i, item in enumerate(new.items) if not keyed(item)]
        spread = 1 if capped else min(self._shards.count, max(1, -(-len(free) // PART_MIN_ITEMS)))
        others = [shard for shard in range(self._shards.count) if shard != home]
        targets = [home, *random.sample(others, spread - 1)]
        placed: dict[int, list[int]] = {home: []}
        for n, index in enumerate(free):
            placed.setdefault(targets[n % spread], []).append(index)
        for index, item in enumerate(new.items):
            if keyed(item):
                shard = job_shard(
                    new.tenant,
                    self._shards.count,
                    ordering_key=item.ordering_key,
                    concurrency_key=item.concurrency_key,
                )
                placed.setdefault(shard, []).append(index)
        return placed

    def _part(
        self,
        new: NewBatch,
        batch_id: str,
        shard: int,
        indexes: list[int],
        job_ids: list[str],
        shared: Fields,
        created: int,
        *,
        held: bool,
    ) -> _Part:
        """The script calls that write the items `indexes` on `shard`: chunks of CHUNK. Each
        item is its own fields (store/job_record.py), by name, with its id, arq payload and
        size; the `shared` fields are the batch's, passed once a call. A part on another
        shard than the home is `held` out of the queue."""
        tenant_index = keys.tenant_jobs(new.tenant, shard)
        part_index, part = keys.batch_jobs(batch_id, shard), keys.batch_part(batch_id, shard)
        queue, fair_share = keys.job_queue(shard), keys.fair_share(shard)
        usage = keys.tenant_usage(new.tenant, shard)
        shared_flat = flat(shared)
        shared_json = compact([str(value) for value in shared_flat])
        chunks: list[BatchItems] = []
        items_bytes = 0
        for start in range(0, len(indexes), CHUNK):
            chunk: list[dict[str, Any]] = []
            jobs_and_arq_jobs: list[tuple[str, str]] = []
            for index in indexes[start : start + CHUNK]:
                item, job_id = new.items[index], job_ids[index]
                run = JobRef(job_id, new.tenant, batch_id).run_args(item.type)
                own = [str(part) for part in flat(content_fields(item))]
                size = stored_bytes([*shared_flat, *own])
                items_bytes += size
                chunk.append(
                    {
                        "id": job_id,
                        "arq": arq_payload(RUN_JOB_FUNCTION, run, created),
                        "bytes": size,
                        "fields": own,
                    }
                )
                jobs_and_arq_jobs.append((keys.job(job_id), keys.arq_job(job_id)))
            chunks.append(
                BatchItems(
                    tenant_index=tenant_index,
                    part_index=part_index,
                    queue=queue,
                    part=part,
                    usage=usage,
                    fair_share=fair_share,
                    jobs_and_arq_jobs=jobs_and_arq_jobs,
                    tenant=new.tenant,
                    priority=new.priority,
                    shared_fields=shared_json,
                    items=compact(chunk),
                    hold="1" if held else "0",
                )
            )
        return _Part(shard, chunks, len(indexes), items_bytes)

    async def create(self, new: NewBatch, *, idempotency: HeldKey | None = None) -> BatchRecord:
        """Writes the batch and every item, queued, all or nothing, and nothing if it would
        take the tenant past its job quota or byte budget.

        The batch's home shard is its Idempotency-Key's (the key is marked done in the
        same step as the batch opens), or its first item's ordering key's, or one drawn at
        random. Its items spread over
        shards (`_placement`). On each shard they are written in one MULTI/EXEC, checked
        against the tenant's share there first (lua/batch_open.lua). A batch on one shard
        is that one transaction. Over many, the parts on other shards than the home are
        written first, held out of the queue; then the home opens the batch, which is the
        commit: it is refused past OPEN_WINDOW_MS, and a refusal rolls the parts back;
        then the held parts are queued. An API that stops in between leaves its parts
        pending: a worker queues them once the batch exists, or rolls them back once it
        can no longer open (`recover_parts`)."""
        ordering_key = next((item.ordering_key for item in new.items if item.ordering_key), None)
        home = (
            idempotency.shard
            if idempotency is not None
            else await self._jobs.shard_for(new.tenant, ordering_key)
        )
        batch_id = ids.new_id("bat", home)
        created = now_ms()
        item_callback = new.callback_url if new.item_events and new.callback_url else ""
        shared = shared_fields(
            new.tenant,
            JobStatus.QUEUED,
            created,
            callback_url=item_callback,
            priority=new.priority,
            traceparent=new.traceparent,
            batch_id=batch_id,
        )
        placed = self._placement(new, home, capped=await self._jobs.capped(new.tenant))
        # Ids made in the items' order (they sort by it, whatever shard each is on): a
        # batch's items list in the order they were submitted.
        shard_of = {index: shard for shard, indexes in placed.items() for index in indexes}
        job_ids = [ids.new_id("job", shard_of[index]) for index in range(len(new.items))]
        parts = {
            shard: self._part(
                new,
                batch_id,
                shard,
                indexes,
                job_ids,
                shared,
                created,
                held=shard != home,
            )
            for shard, indexes in placed.items()
        }
        others = [part for shard, part in parts.items() if shard != home and part.items]
        opens_by = created + OPEN_WINDOW_MS if others else 0
        fields: dict[str, str | int] = {
            B.ID: batch_id,
            B.TENANT: new.tenant,
            B.TOTAL: len(new.items),
            B.TERMINAL: 0,
            B.COUNT + JobStatus.QUEUED: parts[home].items,
            B.CREATED: created,
            B.ITEM_EVENTS: "1" if new.item_events else "0",
        }
        if others:
            fields[B.ITEMS] = parts[home].items
            fields[B.PARTS] = len(others) + (1 if parts[home].items else 0)
            fields[B.SHARDS] = ",".join(str(part.shard) for part in others)
        if new.callback_url:
            fields[B.CALLBACK_URL] = new.callback_url
        if new.metadata:
            fields[B.METADATA] = compact(new.metadata)
        if new.priority != "normal":
            fields[B.PRIORITY] = new.priority
        if new.channels:
            fields[B.CHANNELS] = compact(new.channels)
        written: list[_Part] = []
        if others:
            recover_at = created + RECOVER_AFTER_MS
            openings = await asyncio.gather(
                *(
                    self._write_part(new, batch_id, part, created, opens_by, recover_at)
                    for part in others
                ),
                return_exceptions=True,
            )
            written = [p for p, o in zip(others, openings, strict=True) if o == 1]
            failed = [o for o in openings if isinstance(o, BaseException)]
            refused = [o for o in openings if o != 1]
            refusal = failed[0] if failed else refused[0] if refused else None
            if refusal is not None:
                await self._drop_parts(batch_id, new.tenant, written)
                self._raise_refusal(new.tenant, refusal)
        opened = await self._open_home(new, batch_id, parts[home], fields, opens_by, idempotency)
        trim = self._jobs.trimmer.maybe_trim
        usage = keys.tenant_usage(new.tenant, home)
        await trim(keys.tenant_batches(new.tenant, home), keys.batch, "bat", usage, now=opened != 1)
        if opened != 1:
            await self._drop_parts(batch_id, new.tenant, written)
            self._raise_refusal(new.tenant, opened)
        await asyncio.gather(*(self._release(batch_id, part.shard) for part in written))
        for shard in parts:
            await self._jobs.trim(new.tenant, shard)
        record = await self.get(batch_id)
        assert record is not None
        return record

    def _raise_refusal(self, tenant: str, refusal: object) -> NoReturn:
        if isinstance(refusal, BaseException):
            raise refusal
        if refusal == 0:
            raise QuotaExceededError(tenant, self._jobs.quota)
        if refusal == -1:
            raise ByteBudgetExceededError(tenant, self._jobs.byte_budget)
        if refusal == -3:
            raise ClaimLapsedError()
        raise BatchOpenTimeoutError()

    async def _open_home(
        self,
        new: NewBatch,
        batch_id: str,
        part: _Part,
        fields: dict[str, str | int],
        opens_by: int,
        idempotency: HeldKey | None,
    ) -> int:
        """The home's transaction: the batch hash and the home's items, queued."""
        home = part.shard
        idem_key: tuple[str, ...] = ()
        idem_value, idem_ttl_ms, claim = "", 0, ""
        if idempotency is not None:
            idem_key = (idempotency.redis_key,)
            idem_value, idem_ttl_ms = idempotency.done_value(batch_id), idempotency.ttl_ms
            claim = idempotency.claim
        hash_fields = flat(fields)
        gate = BatchOpen(
            batch=keys.batch(batch_id),
            filed=keys.tenant_batches(new.tenant, home),
            tenant_index=keys.tenant_jobs(new.tenant, home),
            usage=keys.tenant_usage(new.tenant, home),
            idempotency_key=idem_key,
            batch_id=batch_id,
            items=part.items,
            quota=self._jobs.job_share,
            budget=self._jobs.byte_share,
            hash_bytes=stored_bytes(hash_fields),
            item_bytes=part.items_bytes,
            idempotency_value=idem_value,
            ttl_ms=idem_ttl_ms,
            score=0,
            deadline_ms=opens_by,
            claim=claim,
            fields=hash_fields,
        )
        return await self._write(part, gate, held=False)

    async def _write_part(
        self,
        new: NewBatch,
        batch_id: str,
        part: _Part,
        created: int,
        opens_by: int,
        recover_at: int,
    ) -> int:
        """A part on another shard than the home, held: 1, or its shard's refusal."""
        shard = part.shard
        fields: dict[str, str | int] = {
            B.ID: batch_id,
            B.TENANT: new.tenant,
            B.PART: 1,
            B.ITEMS: part.items,
            B.TERMINAL: 0,
            B.COUNT + JobStatus.QUEUED: part.items,
            B.CREATED: created,
            B.PRIORITY: new.priority,
            B.OPENS_BY: opens_by,
            B.HELD: 1,
        }
        hash_fields = flat(fields)
        gate = BatchOpen(
            batch=keys.batch_part(batch_id, shard),
            filed=keys.batch_parts_pending(shard),
            tenant_index=keys.tenant_jobs(new.tenant, shard),
            usage=keys.tenant_usage(new.tenant, shard),
            idempotency_key=(),
            batch_id=batch_id,
            items=part.items,
            quota=self._jobs.job_share,
            budget=self._jobs.byte_share,
            hash_bytes=0,
            item_bytes=part.items_bytes,
            idempotency_value="",
            ttl_ms=0,
            score=recover_at,
            deadline_ms=0,
            claim="",
            fields=hash_fields,
        )
        return await self._write(part, gate, held=True)

    async def _write(self, part: _Part, gate: BatchOpen, *, held: bool) -> int:
        """One shard's MULTI/EXEC: lua/batch_open.lua (`gate`: the hash, after the tenant's
        share there is checked), then its items in chunks (lua/batch_items.lua), queued
        unless `held` (as the part's chunks were made); 1, or the shard's refusal."""
        async with self._shards.of(part.shard).pipeline(transaction=True) as pipe:
            await self._scripts.batch_open(gate, client=pipe)
            for chunk in part.chunks:
                await self._scripts.batch_items(chunk, client=pipe)
            if part.items and not held:
                pipe.spublish(keys.wakeup(keys.JOBS_WAKEUP, part.shard), "1")
            opened: int = (await pipe.execute())[0]
        return opened

    async def _release(self, batch_id: str, shard: int) -> int:
        """Queues a held part whose batch opened (once: lua/batch_part_release.lua)."""
        queued: int = await self._scripts.batch_part_release(
            BatchPartRelease(
                pending=keys.batch_parts_pending(shard),
                part_index=keys.batch_jobs(batch_id, shard),
                queue=keys.job_queue(shard),
                part=keys.batch_part(batch_id, shard),
                fair_share=keys.fair_share(shard),
                batch_id=batch_id,
                wakeup=keys.wakeup(keys.JOBS_WAKEUP, shard),
            )
        )
        return queued

    async def _drop_parts(self, batch_id: str, tenant: str, parts: list[_Part]) -> None:
        await asyncio.gather(*(self._drop(batch_id, tenant, part.shard) for part in parts))

    async def _drop(self, batch_id: str, tenant: str, shard: int) -> int:
        """Rolls back a held part whose batch never opened (lua/batch_part_drop.lua)."""
        client = self._shards.of(shard)
        job_ids: list[str] = await client.zrange(keys.batch_jobs(batch_id, shard), 0, -1)
        dropped: int = await self._scripts.batch_part_drop(
            BatchPartDrop(
                pending=keys.batch_parts_pending(shard),
                part=keys.batch_part(batch_id, shard),
                job_index=keys.batch_jobs(batch_id, shard),
                tenant_index=keys.tenant_jobs(tenant, shard),
                usage=keys.tenant_usage(tenant, shard),
                jobs_and_arq_jobs=[(keys.job(job_id), keys.arq_job(job_id)) for job_id in job_ids],
                batch_id=batch_id,
                item_ids=job_ids,
            )
        )
        return dropped

    async def recover_parts(self, shard: int) -> int | None:
        """The held parts on `shard` whose API did not come back to them in time: queued if
        their batch opened, rolled back once it no longer can. Returns when to look again
        (ms), or None when no part is pending. Every worker runs this (each step is one
        atomic script, taken once)."""
        client = self._shards.of(shard)
        pending = keys.batch_parts_pending(shard)
        found: list[tuple[str, float]] = await client.zrange(
            pending, 0, RECOVER_BATCH - 1, withscores=True
        )
        now = now_ms()
        later: list[int] = []
        for batch_id, due in found:
            if due > now:
                later.append(int(due))
                break
            part = keys.batch_part(batch_id, shard)
            tenant, opens_by = await client.hmget(part, [B.TENANT, B.OPENS_BY])  # type: ignore[misc]
            home = keys.batch(batch_id)
            if tenant is None:
                await client.zrem(pending, batch_id)  # nothing left to recover
            elif await self._shards.for_key(home).exists(home):
                if await self._release(batch_id, shard):
                    log.warning("queued part %s of batch %s: its API stopped", shard, batch_id)
            elif now > int(opens_by) + ROLLBACK_MARGIN_MS:
                if await self._drop(batch_id, tenant, shard) >= 0:
                    log.warning("rolled back part %s of batch %s: it never opened", shard, batch_id)
            else:
                later.append(int(opens_by) + ROLLBACK_MARGIN_MS)
                await client.zadd(pending, {batch_id: later[-1]}, xx=True)
        if len(found) == RECOVER_BATCH and not later:
            later.append(now)  # more are due: look again at once
        return min(later) if later else None

    async def part_done(self, batch_id: str, tenant: str, shard: int) -> None:
        """A part on `shard` finished: the home counts it and completes the batch when
        every part has (lua/status/batch_part_done.lua); then every other part expires
        with it (again for a replayed event: the dispatcher acknowledges the event only
        after this returns, so a crash in between cannot leave the parts forever)."""
        home = ids.shard_of(batch_id)
        done: int = await self._scripts.batch_part_done(
            BatchPartDone(
                home=keys.batch(batch_id),
                events=keys.events_stream(home),
                subscriptions=keys.tenant_event_subscriptions(tenant, home),
                batch_part=keys.batch(batch_id),
                part_index=keys.batch_jobs(batch_id, home),
                batch_id=batch_id,
                tenant=tenant,
                now_ms=now_ms(),
                event_id="",
                retention_ms=self._jobs.retention_ms,
                changes="",
                part_shard=shard,
            )
        )
        if done != 2:
            return
        home_key = keys.batch(batch_id)
        shards_field = await self._shards.for_key(home_key).hget(home_key, B.SHARDS)  # type: ignore[misc]
        parts = BatchRecord.part_shards_of(shards_field)
        retention = self._jobs.retention_ms

        def expire(pipe: Pipeline, shard: int) -> None:
            pipe.pexpire(keys.batch_part(batch_id, shard), retention)
            pipe.pexpire(keys.batch_jobs(batch_id, shard), retention)

        await self._shards.across(expire, parts)

    async def get(self, batch_id: str, tenant: str | None = None) -> BatchRecord | None:
        found = await self.get_many([batch_id])
        record = found[0]
        if record is None or (tenant is not None and record.tenant != tenant):
            return None
        return record

    async def page_ids(self, tenant: str, before: str | None, count: int) -> list[str]:
        """Batch ids of a tenant, newest first, strictly older than `before`."""
        return await records.newest_ids_across(
            self._shards, lambda shard: keys.tenant_batches(tenant, shard), before, count
        )

    async def get_many(self, batch_ids: list[str]) -> list[BatchRecord | None]:
        """The batches (None for one that expired): their home hashes, then the other
        parts of those over many shards, one round trip per node each."""
        raws = await records.hashes(self._shards, [keys.batch(i) for i in batch_ids])
        wanted = [
            (n, shard)
            for n, raw in enumerate(raws)
            for shard in BatchRecord.part_shards_of(raw.get(B.SHARDS))
        ]
        found = await records.hashes(
            self._shards, [keys.batch_part(batch_ids[n], shard) for n, shard in wanted]
        )
        parts: dict[int, list[dict[str, str]]] = {}
        for (n, _shard), part in zip(wanted, found, strict=True):
            parts.setdefault(n, []).append(part)
        return [
            BatchRecord.from_hash(batch_id, raw, parts.get(n)) if raw else None
            for n, (batch_id, raw) in enumerate(zip(batch_ids, raws, strict=True))
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
        shards = [ids.shard_of(batch.id), *batch.part_shards]
        found = await self._shards.across(
            lambda pipe, shard: pipe.zrange(keys.batch_jobs(batch.id, shard), 0, -1), shards
        )
        refs = [JobRef(i, batch.tenant, batch.id) for (job_ids,) in found for i in job_ids]
        for start in range(0, len(refs), CANCEL_CHUNK):
            await self._jobs.cancel_many(refs[start : start + CANCEL_CHUNK])

"""Recurring schedules: a cron expression in a time zone and the job each tick submits.

A schedule lives on one shard (its id names it) with every job it submits, so a tick is
claimed and its job written in one script (lua/schedule_tick.lua): the record's `next`
moves past the tick in the same step that writes the job, and a second worker that read
the same tick finds `next` moved and writes nothing. Exactly one job per tick, through
any number of workers, a worker's death (both writes or neither) and a Redis restart or
failover (both are lost together, and the tick is made again).

Workers find due ticks in the shard's due index (keys.schedules_due, scored by next
tick): they sleep until its head, or until a create or change wakes them, so 100,000
waiting schedules cost no polling each. A worker takes a slice of due ticks at a time
(lua/schedule_claim.lua moves them a lease ahead), so workers share a burst of ticks
instead of all reading it; one that dies mid-slice leaves them to another a lease later.

After downtime a schedule's missed ticks are not replayed: the tick found due runs once
and the next is the first after now. The tenant's set of schedule ids (on the control
slot) holds the per-tenant cap; the jobs a tick submits count against the tenant's job
quota, byte budget, fair share and concurrency limits like any submit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from acceptd.core import ids
from acceptd.core.clock import now_ms
from acceptd.core.cron import Cron
from acceptd.core.jsonenc import compact
from acceptd.store import keys, records
from acceptd.store.job_record import JobRecord, NewJob
from acceptd.store.jobs import JobStore, PreparedJob, QuotaExceededError
from acceptd.store.layouts import ScheduleField as F
from acceptd.store.layouts import flat
from acceptd.store.schedulecalls import (
    ScheduleAdmit,
    ScheduleClaim,
    ScheduleDelete,
    ScheduleTick,
    ScheduleWrite,
)
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from acceptd.store.usage import ByteBudgetExceededError, stored_bytes

log = logging.getLogger(__name__)

Overlap = Literal["allow", "skip"]

# Due ticks one claim takes: what one round trip of records and one of tick scripts carry.
TICK_BATCH = 200
# What the schedules of one group of ticks weigh at most, read and written in one round trip
# each (a template may hold a megabyte of input: 200 of them at once would be 200 MB).
TICK_READ_BYTES = 4 * 2**20
# Claims one pass of the worker's scheduler makes on a shard before it looks at the others.
MAX_CLAIMS_PER_PASS = 20
# How long a claimed tick is another worker's alone: if its worker dies before writing it,
# another takes it after this, so a tick is late by at most about this long.
CLAIM_LEASE_MS = 10_000
# An id in the tenant's set whose record is missing is dropped once it is this old (younger,
# its create may still be writing the record).
DANGLING_AFTER_MS = 60_000


class ScheduleShardError(Exception):
    """A change would make the schedule's jobs belong on another shard than its own."""

    def __init__(self) -> None:
        super().__init__(
            "this job's type has a concurrency limit counted on another shard than this "
            "schedule's: delete the schedule and create one with this job"
        )


class ScheduleLimitError(Exception):
    """The tenant holds its limit of schedules already; nothing was written."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"a tenant may hold at most {limit} schedules")
        self.limit = limit


@dataclass(frozen=True)
class JobTemplate:
    """What each tick submits: the job of a submit, as the schedule shows it."""

    type: str
    input: dict[str, Any]
    callback_url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    priority: str = "normal"
    # The job type's default concurrency limit, decided when the template was set.
    concurrency_key: str | None = None
    concurrency_limit: int | None = None

    def shown(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "input": self.input,
            "callback_url": self.callback_url,
            "metadata": self.metadata,
            "priority": self.priority,
        }

    def fields(self) -> list[str | int]:
        stored: list[str | int] = [F.JOB_TEMPLATE, compact(self.shown())]
        if self.concurrency_key:
            stored += [F.CONCURRENCY_KEY, self.concurrency_key]
            stored += [F.CONCURRENCY_LIMIT, self.concurrency_limit or 1]
        else:
            stored += [F.CONCURRENCY_KEY, "", F.CONCURRENCY_LIMIT, ""]
        return stored

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> JobTemplate:
        shown = json.loads(raw[F.JOB_TEMPLATE])
        return cls(
            type=shown["type"],
            input=shown["input"],
            callback_url=shown.get("callback_url"),
            metadata=shown.get("metadata") or {},
            priority=shown.get("priority", "normal"),
            concurrency_key=raw.get(F.CONCURRENCY_KEY) or None,
            concurrency_limit=int(limit) if (limit := raw.get(F.CONCURRENCY_LIMIT)) else None,
        )


@dataclass(frozen=True)
class ScheduleRecord:
    id: str
    tenant: str
    cron: Cron
    job: JobTemplate
    paused: bool
    overlap: Overlap
    next_ms: int | None
    last_run_ms: int | None
    last_job_id: str | None
    created_ms: int
    updated_ms: int
    # Ticks skipped because the last job had not ended (overlap: skip).
    skipped: int = 0

    @property
    def shard(self) -> int:
        return ids.shard_of(self.id)

    @classmethod
    def read(cls, schedule_id: str, raw: dict[str, str]) -> ScheduleRecord | None:
        """The record of a schedule's hash, or None for none: a hash without CREATED is no
        schedule (lua/schedule_tick.lua reads it so too)."""
        return cls.from_hash(schedule_id, raw) if F.CREATED in raw else None

    @classmethod
    def from_hash(cls, schedule_id: str, raw: dict[str, str]) -> ScheduleRecord:
        def opt_int(name: F) -> int | None:
            return int(raw[name]) if raw.get(name) else None

        overlap: Overlap = "skip" if raw.get(F.OVERLAP) == "skip" else "allow"
        return cls(
            id=schedule_id,
            tenant=raw[F.TENANT],
            cron=Cron(raw[F.CRON], raw[F.TIMEZONE]),
            job=JobTemplate.from_hash(raw),
            paused=raw.get(F.PAUSED) == "1",
            overlap=overlap,
            next_ms=opt_int(F.NEXT_TICK),
            last_run_ms=opt_int(F.LAST_RUN),
            last_job_id=raw.get(F.LAST_JOB) or None,
            created_ms=int(raw[F.CREATED]),
            updated_ms=int(raw.get(F.UPDATED) or raw[F.CREATED]),
            skipped=int(raw.get(F.SKIPPED) or 0),
        )


@dataclass(frozen=True)
class ScheduleChange:
    """A PATCH: what is None stays as it is."""

    cron: Cron | None = None
    job: JobTemplate | None = None
    paused: bool | None = None
    overlap: Overlap | None = None


TickMode = Literal["tick", "trigger"]
# What a due tick comes to (lua/schedule_tick.lua): a job, a skip (overlap), or a job the
# tenant's quota or byte budget refused. ('stale', 'paused', 'missing': no tick was due.)
TICK_OUTCOMES = frozenset({"ok", "skipped", "quota", "bytes"})


class ScheduleStore:
    """Every read and write of schedules, and the ticks the workers make."""

    def __init__(
        self,
        shards: Shards,
        scripts: Scripts,
        jobs: JobStore,
        on_tick: Callable[[str], None] | None = None,
    ) -> None:
        """`on_tick`: told the outcome of each due tick written (`ok`, `skipped`, `quota`,
        `bytes`): the worker counts them in its metrics."""
        self._shards = shards
        self._scripts = scripts
        self._jobs = jobs
        self._trimmer = records.IndexTrimmer(shards, jobs.retention_ms, scripts)
        self._on_tick = on_tick

    # ---- the resource ------------------------------------------------------------------

    async def create(
        self,
        tenant: str,
        cron: Cron,
        job: JobTemplate,
        *,
        paused: bool = False,
        overlap: Overlap = "allow",
        limit: int = 0,
    ) -> ScheduleRecord:
        """A new schedule on the shard its jobs' limits are counted on (store/placement.py).
        ScheduleLimitError when the tenant holds `limit` already."""
        shard = await self._jobs.shard_for(tenant, concurrency_key=job.concurrency_key)
        schedule_id = ids.new_id("sch", shard)
        owned = keys.tenant_schedules(tenant)
        admit = ScheduleAdmit(schedules=owned, limit=limit, schedule_id=schedule_id)
        if not await self._scripts.schedule_admit(admit):
            raise ScheduleLimitError(limit)
        now = now_ms()
        next_ms = None if paused else cron.next_after(now)
        fields = _own_fields(tenant, cron, job, paused, overlap, now)
        try:
            await self._write(
                "create",
                schedule_id,
                tenant,
                next_ms,
                fields,
                [F.NEXT_TICK, "" if next_ms is None else next_ms, F.CREATED, now],
            )
        except BaseException:
            await self._shards.control.srem(owned, schedule_id)  # type: ignore[misc]
            raise
        return ScheduleRecord(
            schedule_id, tenant, cron, job, paused, overlap, next_ms, None, None, now, now
        )

    async def _write(
        self,
        mode: Literal["create", "update"],
        schedule_id: str,
        tenant: str,
        next_ms: int | Literal["keep"] | None,
        own: list[str | int],
        ticks: list[str | int],
    ) -> bool:
        """lua/schedule_write.lua: `own` the fields its owner sets, counted against the
        tenant's bytes, and `ticks` the tick fields written with them. False when an update
        finds the schedule deleted; ByteBudgetExceededError past the tenant's budget."""
        shard = ids.shard_of(schedule_id)
        written: int = await self._scripts.schedule_write(
            ScheduleWrite(
                schedule=keys.schedule(schedule_id),
                due=keys.schedules_due(shard),
                usage=keys.tenant_usage(tenant, shard),
                sizes=keys.schedule_sizes(shard),
                write=mode,
                schedule_id=schedule_id,
                next_tick_ms="" if next_ms is None else next_ms,
                wakeup=keys.wakeup(keys.SCHEDULED_WAKEUP, shard),
                field_bytes=stored_bytes(own),
                budget=self._jobs.byte_share,
                fields=[*own, *ticks],
            )
        )
        if written == -1:
            raise ByteBudgetExceededError(tenant, self._jobs.byte_budget)
        return written == 1

    async def get(self, schedule_id: str, tenant: str | None = None) -> ScheduleRecord | None:
        """The schedule, or None when it does not exist or belongs to another tenant."""
        key = keys.schedule(schedule_id)
        raw: dict[str, str] = await self._shards.for_key(key).hgetall(key)  # type: ignore[misc]
        schedule = ScheduleRecord.read(schedule_id, raw)
        if schedule is None or (tenant is not None and schedule.tenant != tenant):
            return None
        return schedule

    async def owner(self, schedule_id: str) -> str | None:
        """The schedule's tenant (one field), or None when it does not exist."""
        key = keys.schedule(schedule_id)
        tenant, created = await self._shards.for_key(key).hmget(key, [F.TENANT, F.CREATED])  # type: ignore[misc]
        return tenant if created is not None else None

    async def page(
        self, tenant: str, before: str | None, count: int
    ) -> tuple[list[ScheduleRecord], bool]:
        """The tenant's schedules, newest first, older than `before`: (a page, more after it)."""
        owned = keys.tenant_schedules(tenant)
        members: set[str] = await self._shards.control.smembers(owned)  # type: ignore[misc]
        newest = sorted((i for i in members if before is None or i < before), reverse=True)
        found: list[ScheduleRecord] = []
        dangling: list[str] = []
        for start in range(0, len(newest), count + 1):
            chunk = newest[start : start + count + 1]
            raws = await records.hashes(self._shards, [keys.schedule(i) for i in chunk])
            for schedule_id, raw in zip(chunk, raws, strict=True):
                if (schedule := ScheduleRecord.read(schedule_id, raw)) is not None:
                    found.append(schedule)
                elif now_ms() - ids.time_of(schedule_id) > DANGLING_AFTER_MS:
                    dangling.append(schedule_id)
            if len(found) > count:
                break
        if dangling:  # its delete stopped between the record and the set
            await self._shards.control.srem(owned, *dangling)  # type: ignore[misc]
        return found[:count], len(found) > count

    async def update(
        self, schedule: ScheduleRecord, change: ScheduleChange
    ) -> ScheduleRecord | None:
        """Rewrites the schedule's own fields with `change` applied (the ticks' fields are
        left to them); a new expression, time zone or a resume takes the next tick from
        now (ticks missed while paused are not run). None when the schedule was deleted
        meanwhile."""
        if change.job is not None and not await self._fits(schedule, change.job):
            raise ScheduleShardError()
        now = now_ms()
        cron = change.cron or schedule.cron
        paused = schedule.paused if change.paused is None else change.paused
        own = _own_fields(
            schedule.tenant,
            cron,
            change.job or schedule.job,
            paused,
            change.overlap or schedule.overlap,
            now,
        )
        next_ms: int | Literal["keep"] | None = "keep"
        ticks: list[str | int] = []
        if change.cron is not None or paused != schedule.paused:
            next_ms = None if paused else cron.next_after(now)
            ticks = [F.NEXT_TICK, next_ms or ""]
        if not await self._write("update", schedule.id, schedule.tenant, next_ms, own, ticks):
            return None
        return await self.get(schedule.id)

    async def _fits(self, schedule: ScheduleRecord, job: JobTemplate) -> bool:
        """Whether `job` may be submitted from the schedule's shard: a tick writes its job
        there (one step), and a job whose limit is counted on one shard must live on it
        (store/placement.py). Only a concurrency key or a running cap ties a job to one."""
        if self._shards.count == 1:
            return True
        if not job.concurrency_key and not await self._jobs.capped(schedule.tenant):
            return True
        home = await self._jobs.shard_for(schedule.tenant, concurrency_key=job.concurrency_key)
        return home == schedule.shard

    async def delete(self, schedule: ScheduleRecord) -> None:
        """The record, its place in the due index and its bytes go at once; the list of
        its jobs stays for as long as the jobs do (their resources keep `schedule_id`)."""
        await self._scripts.schedule_delete(
            ScheduleDelete(
                schedule=keys.schedule(schedule.id),
                due=keys.schedules_due(schedule.shard),
                jobs=keys.schedule_jobs(schedule.id),
                usage=keys.tenant_usage(schedule.tenant, schedule.shard),
                sizes=keys.schedule_sizes(schedule.shard),
                schedule_id=schedule.id,
                retention_ms=self._jobs.retention_ms,
            )
        )
        await self._shards.control.srem(keys.tenant_schedules(schedule.tenant), schedule.id)  # type: ignore[misc]

    async def trigger(self, schedule: ScheduleRecord) -> JobRecord | None:
        """Submits the schedule's job now, off its cron (paused or not, overlap or not);
        its next tick stays where it was. None when the schedule was deleted meanwhile."""
        now = now_ms()
        job = self._jobs.prepare(self._new_job(schedule), schedule.shard, now)
        outcome = await self._scripts.schedule_tick(self._tick_call(schedule, "trigger", job))
        if outcome == "missing":
            return None
        if outcome == "quota":
            raise QuotaExceededError(schedule.tenant, self._jobs.quota)
        if outcome == "bytes":
            raise ByteBudgetExceededError(schedule.tenant, self._jobs.byte_budget)
        await self._jobs.trim(schedule.tenant, schedule.shard)
        return job.record

    async def idle(self) -> None:
        """Returns once no background index trim of this store runs (before closing)."""
        await self._trimmer.idle()
        await self._jobs.trimmer.idle()

    # ---- ticks (the workers' scheduler) ---------------------------------------------------

    async def tick_due(self, shard: int) -> tuple[int, int | None]:
        """Writes the shard's due ticks: (jobs submitted, when the next tick falls due in
        ms, or None when no schedule waits)."""
        made = 0
        due, sizes = keys.schedules_due(shard), keys.schedule_sizes(shard)
        for _ in range(MAX_CLAIMS_PER_PASS):
            now = now_ms()
            reply = await self._scripts.schedule_claim(
                ScheduleClaim(
                    due=due, sizes=sizes, now_ms=now, lease_ms=CLAIM_LEASE_MS, most=TICK_BATCH
                )
            )
            head, claimed = int(reply[0]), list(zip(reply[1::2], reply[2::2], strict=True))
            if not claimed:
                return made, None if head < 0 else head
            for group in _by_bytes(claimed):
                made += await self._tick(group, now)
        return made, now_ms()  # more may be due: look again at once

    async def _tick(self, claimed: list[str], now: int) -> int:
        raws = await records.hashes(self._shards, [keys.schedule(i) for i in claimed])
        calls: list[ScheduleTick] = []
        outcome_of: list[ScheduleRecord | None] = []
        next_tick = _NextTicks(now)
        for schedule_id, raw in zip(claimed, raws, strict=True):
            try:
                schedule = ScheduleRecord.read(schedule_id, raw)
                if schedule is None or schedule.next_ms is None or schedule.next_ms > now:
                    # Gone, paused or moved since it was filed: the script puts the index
                    # back in line with the record.
                    calls.append(self._index_call(schedule_id))
                    outcome_of.append(None)
                    continue
                job = self._jobs.prepare(self._new_job(schedule), schedule.shard, now)
                after = next_tick(schedule.cron)
            except Exception:
                # One record this code cannot read must not hold every other tick (nor the
                # scheduler's other work): it stays claimed, and is tried again a lease later.
                log.exception("schedule %s: its tick could not be made", schedule_id)
                continue
            calls.append(self._tick_call(schedule, "tick", job, after))
            outcome_of.append(schedule)
        if not calls:
            return 0
        replies = await self._shards.pipelined(
            [call.schedule for call in calls],
            lambda pipe, i: self._scripts.schedule_tick(calls[i], client=pipe),
        )
        made, tenants = 0, set()
        for schedule, (outcome,) in zip(outcome_of, replies, strict=True):
            if schedule is None:
                continue
            if self._on_tick is not None and outcome in TICK_OUTCOMES:
                self._on_tick(outcome)
            if outcome == "ok":
                made += 1
                tenants.add((schedule.tenant, schedule.shard))
                await self._trimmer.maybe_trim(keys.schedule_jobs(schedule.id), keys.job, "job")
            elif outcome in ("quota", "bytes"):
                log.warning(
                    "schedule %s of tenant %s: its tenant's %s refused this tick's job",
                    schedule.id,
                    schedule.tenant,
                    "job quota" if outcome == "quota" else "byte budget",
                )
        for tenant, shard in tenants:
            await self._jobs.trim(tenant, shard)
        return made

    def _new_job(self, schedule: ScheduleRecord) -> NewJob:
        template = schedule.job
        return NewJob(
            tenant=schedule.tenant,
            type=template.type,
            input=template.input,
            metadata=template.metadata,
            callback_url=template.callback_url,
            priority=template.priority,
            concurrency_key=template.concurrency_key,
            concurrency_limit=template.concurrency_limit,
            schedule_id=schedule.id,
        )

    def _tick_call(
        self,
        schedule: ScheduleRecord,
        mode: TickMode,
        job: PreparedJob,
        next_ms: int | None = None,
    ) -> ScheduleTick:
        """lua/schedule_tick.lua for `job`, one tick of `schedule`."""
        shard, record = schedule.shard, job.record
        tick: int | str = ""
        if mode == "tick":
            if schedule.next_ms is None:  # a tick is made of a due schedule only
                raise ValueError(f"schedule {schedule.id} has no tick due")
            tick = schedule.next_ms
        return ScheduleTick(
            schedule=keys.schedule(schedule.id),
            due=keys.schedules_due(shard),
            jobs=keys.schedule_jobs(schedule.id),
            job=keys.job(record.id),
            tenant_index=keys.tenant_jobs(schedule.tenant, shard),
            arq_job=keys.arq_job(record.id),
            queue=keys.job_queue(shard),
            usage=keys.tenant_usage(schedule.tenant, shard),
            fair_share=keys.fair_share(shard),
            last_job=(
                keys.job(schedule.last_job_id)
                if schedule.last_job_id
                else keys.schedule(schedule.id)
            ),
            kind=mode,
            tick_ms=tick,
            next_tick_ms="" if next_ms is None else next_ms,
            now_ms=record.created_ms,
            job_id=record.id,
            arq_payload=job.arq_payload,
            wakeup=keys.wakeup(keys.JOBS_WAKEUP, shard),
            quota=self._jobs.job_share,
            budget=self._jobs.byte_share,
            job_bytes=job.size,
            priority=record.priority,
            last_job_id=schedule.last_job_id or "",
            schedule_id=schedule.id,
            fields=job.fields,
        )

    @staticmethod
    def _index_call(schedule_id: str) -> ScheduleTick:
        """lua/schedule_tick.lua with no tick to write: it only puts the due index back in
        line with the record (or drops the entry of a paused or deleted schedule)."""
        record = keys.schedule(schedule_id)
        return ScheduleTick(
            schedule=record,
            due=keys.schedules_due(ids.shard_of(schedule_id)),
            jobs=record,
            job=record,
            tenant_index=record,
            arq_job=record,
            queue=record,
            usage=record,
            fair_share=record,
            last_job=record,
            kind="tick",
            tick_ms="",
            next_tick_ms="",
            now_ms=0,
            job_id="",
            arq_payload="",
            wakeup="",
            quota=0,
            budget=0,
            job_bytes=0,
            priority="normal",
            last_job_id="",
            schedule_id=schedule_id,
            fields=(),
        )


def _by_bytes(claimed: list[tuple[str, int]]) -> list[list[str]]:
    """The claimed ids in groups whose schedules weigh at most TICK_READ_BYTES together (a
    group holds one schedule at least): what one round trip reads, and the jobs it makes
    hold, stay bounded whatever the templates weigh."""
    groups: list[list[str]] = [[]]
    weight = 0
    for schedule_id, size in claimed:
        if groups[-1] and weight + size > TICK_READ_BYTES:
            groups.append([])
            weight = 0
        groups[-1].append(schedule_id)
        weight += size
    return groups


def _own_fields(
    tenant: str, cron: Cron, job: JobTemplate, paused: bool, overlap: Overlap, now: int
) -> list[str | int]:
    """The fields of a schedule its owner sets (all of them, on every write: a PATCH
    rewrites them whole, never the ticks' own fields)."""
    own: dict[F, str | int] = {
        F.TENANT: tenant,
        F.CRON: cron.expression,
        F.TIMEZONE: cron.timezone,
        F.PAUSED: "1" if paused else "0",
        F.OVERLAP: overlap,
        F.UPDATED: now,
    }
    return [*flat(own), *job.fields()]


class _NextTicks:
    """The tick after the due ones of a slice, computed once per (expression, zone): every
    tick of a slice is due (at or before its `now`), and after downtime the next is the
    first after now (missed ticks are not replayed), so a burst of 100,000 schedules of a
    few expressions costs a few cron steps."""

    def __init__(self, now: int) -> None:
        self._now = now
        self._found: dict[tuple[str, str], int | None] = {}

    def __call__(self, cron: Cron) -> int | None:
        key = (cron.expression, cron.timezone)
        if key not in self._found:
            self._found[key] = cron.next_after(self._now)
        return self._found[key]

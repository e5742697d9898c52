"""Job records: the source of truth for a job's status. arq only carries "run job X"."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from redis.asyncio import Redis

from acceptd.core import ids
from acceptd.core.clock import now_ms
from acceptd.core.jsonenc import compact, parse_stored
from acceptd.core.secretbox import SecretBox
from acceptd.core.statuses import JobStatus
from acceptd.core.ttlcache import TtlCache
from acceptd.store import keys, records
from acceptd.store.arqjobs import RUN_JOB_FUNCTION, arq_payload
from acceptd.store.idempotency import ClaimLapsedError, HeldKey
from acceptd.store.job_record import (
    HEAD_FIELDS,
    JobRecord,
    JobRef,
    NewJob,
    new_job_fields,
)
from acceptd.store.layouts import JobField as F
from acceptd.store.layouts import flat
from acceptd.store.placement import job_shard
from acceptd.store.scriptcalls import (
    AwaitInput,
    Cancel,
    Complete,
    FairRecover,
    Finish,
    InputTimeout,
    JobChange,
    Progress,
    Promote,
    Requeue,
    Start,
    Submit,
)
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from acceptd.store.usage import ByteBudgetExceededError, stored_bytes

log = logging.getLogger(__name__)

PROMOTE_BATCH = 200
CAPPED_CACHE_SECONDS = 5.0
CAPPED_CACHE_MAX = 10_000
# The least of a tenant's job quota and byte budget each shard admits (JobStore.shard_share).
QUOTA_FLOOR_JOBS = 100
QUOTA_FLOOR_BYTES = 8 * 2**20


class QuotaExceededError(Exception):
    """The tenant holds ACCEPTD_MAX_JOBS_PER_TENANT jobs already; nothing was written."""

    def __init__(self, tenant: str, quota: int) -> None:
        super().__init__(f"tenant {tenant} holds its quota of {quota} jobs")
        self.quota = quota


@dataclass(frozen=True)
class CompletionState:
    ref: JobRef
    type: str
    status: JobStatus
    token_digest: str | None


@dataclass(frozen=True)
class PreparedJob:
    """A job ready to be written (JobStore.prepare): its record's fields, its run's arq
    payload, the bytes it counts against its tenant, and the record it makes."""

    shard: int
    fields: list[str | int]
    arq_payload: str
    size: int
    record: JobRecord
    scheduled: bool


@dataclass(frozen=True)
class StartedJob:
    """`not-taken`: a start sent with its pickup whose pickup did not take the job."""

    outcome: Literal["running", "canceled", "exhausted", "skip", "not-taken"]
    attempt: int
    input: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_ms: int = 0


CancelOutcome = Literal["missing", "terminal", "requested", "canceled", "held"]
CompleteOutcome = Literal["ok", "missing", "used"]
COMPLETION_TOKEN_PREFIX = "ctk_"  # noqa: S105 - a prefix, not a secret


def _token_context(job_id: str) -> str:
    return f"job:{job_id}:completion-token"


def token_digest(token: str) -> str:
    """Only the digest is compared, so a token is never matched character by character."""
    return hashlib.sha256(token.encode()).hexdigest()


class JobStore:
    """Every read and write of job records."""

    def __init__(
        self,
        shards: Shards,
        scripts: Scripts,
        retention_seconds: int,
        box: SecretBox | None = None,
        *,
        quota: int = 0,
        byte_budget: int = 0,
    ) -> None:
        self._shards = shards
        self._scripts = scripts
        self.retention_ms = retention_seconds * 1000
        # Jobs a tenant may hold at once (its index: live records, trimmed as it grows),
        # and bytes it may store (store/usage.py): a submit past either is refused. Each
        # shard holds its share of both (a tenant's jobs spread evenly over the shards).
        self.quota = quota
        self.byte_budget = byte_budget
        self.trimmer = records.IndexTrimmer(shards, retention_seconds * 1000, scripts)
        # Completion tokens are kept sealed under the master key: a Redis dump, a replica or
        # a backup does not hand out the credential that settles a job.
        self._box = box
        # Whether a tenant has a running cap, for placement on a cluster (a few seconds
        # stale at most: a cap set just now places the next few jobs as before).
        self._capped: TtlCache[str, bool] = TtlCache(CAPPED_CACHE_SECONDS, CAPPED_CACHE_MAX)

    async def capped(self, tenant: str) -> bool:
        """Whether the tenant has a running cap, asked only on a cluster (placement)."""
        if self._shards.count == 1:
            return False
        cached = self._capped.get(tenant)
        if cached is None:
            cap = await self._shards.control.hget(keys.tenant(tenant), "max_running")  # type: ignore[misc]
            cached = cap is not None
            self._capped.put(tenant, cached)
        return cached

    async def shard_for(
        self,
        tenant: str,
        ordering_key: str | None = None,
        concurrency_key: str | None = None,
        idempotency: str | None = None,
    ) -> int:
        """The shard a new job of `tenant` lands on (store/placement.py)."""
        capped = await self.capped(tenant)
        return job_shard(
            tenant,
            self._shards.count,
            ordering_key=ordering_key,
            concurrency_key=concurrency_key,
            capped=capped,
            idempotency=idempotency,
        )

    def _token_box(self) -> SecretBox:
        if self._box is None:
            raise RuntimeError("this JobStore has no SecretBox: completion tokens are sealed")
        return self._box

    def _opened(self, record: JobRecord) -> JobRecord:
        """The record with its completion token unsealed (for its owner's eyes)."""
        if record.awaiting is None:
            return record
        token = self._token_box().decrypt(record.awaiting.token, _token_context(record.id))
        return replace(record, awaiting=replace(record.awaiting, token=token))

    def _status(self, ref: JobRef) -> JobChange:
        """What every status script takes first (lua/status/_prelude.lua): a new event id,
        now."""
        shard, job = ids.shard_of(ref.id), keys.job(ref.id)
        batch_id = ref.batch_id
        # Its part on the job's own shard; without one, the job hash twice (not '': a
        # cluster hashes every key, '' to slot 0).
        part = keys.batch_part(batch_id, shard) if batch_id else job
        part_index = keys.batch_jobs(batch_id, shard) if batch_id else job
        return JobChange(
            job=job,
            events=keys.events_stream(shard),
            subscriptions=keys.tenant_event_subscriptions(ref.tenant, shard),
            batch_part=part,
            part_index=part_index,
            job_id=ref.id,
            tenant=ref.tenant,
            now_ms=now_ms(),
            event_id=ids.new_id("msg", shard),
            retention_ms=self.retention_ms,
            changes=keys.job_changes(ref.id),
        )

    def prepare(self, new: NewJob, shard: int, created: int | None = None) -> PreparedJob:
        """A new job's id, fields and arq payload on `shard`, and the record they make:
        what a script writes (lua/submit.lua, lua/schedule_tick.lua) to create it."""
        job_id = ids.new_id("job", shard)
        created = now_ms() if created is None else created
        scheduled = new.run_at_ms is not None and new.run_at_ms > created
        status = JobStatus.SCHEDULED if scheduled else JobStatus.QUEUED
        record = JobRecord(
            id=job_id,
            tenant=new.tenant,
            type=new.type,
            status=status,
            input=new.input,
            metadata=new.metadata,
            callback_url=new.callback_url,
            attempts=0,
            created_ms=created,
            priority=new.priority,
            run_at_ms=new.run_at_ms,
            traceparent=new.traceparent,
            ordering_key=new.ordering_key,
            concurrency_key=new.concurrency_key,
            concurrency_limit=(new.concurrency_limit or 1) if new.concurrency_key else None,
            schedule_id=new.schedule_id,
            channels=new.channels,
        )
        fields = flat(new_job_fields(record))
        payload = arq_payload(
            RUN_JOB_FUNCTION, JobRef(job_id, new.tenant).run_args(new.type), created
        )
        return PreparedJob(shard, fields, payload, stored_bytes(fields), record, scheduled)

    def check_written(self, written: int, tenant: str) -> None:
        """Raises what a create script's refusal means (lua/_new_job.lua, write_job)."""
        if written == 0:
            raise QuotaExceededError(tenant, self.quota)
        if written == -1:
            raise ByteBudgetExceededError(tenant, self.byte_budget)

    async def create(
        self,
        new: NewJob,
        *,
        idempotency: HeldKey | None = None,
    ) -> JobRecord:
        """Write the record and enqueue it for a worker, atomically.

        `idempotency`, the key the request holds, is marked done in the same step.
        """
        shard = (
            idempotency.shard
            if idempotency is not None
            else await self.shard_for(new.tenant, new.ordering_key, new.concurrency_key)
        )
        job = self.prepare(new, shard)
        job_id, scheduled = job.record.id, job.scheduled
        idem_key: tuple[str, ...] = ()
        idem_value, idem_ttl_ms, claim = "", 0, ""
        if idempotency is not None:
            idem_key = (idempotency.redis_key,)
            idem_value, idem_ttl_ms = idempotency.done_value(job_id), idempotency.ttl_ms
            claim = idempotency.claim
        call = Submit(
            job=keys.job(job_id),
            tenant_index=keys.tenant_jobs(new.tenant, shard),
            arq_job=keys.arq_job(job_id),
            queue=keys.scheduled_jobs(shard) if scheduled else keys.job_queue(shard),
            usage=keys.tenant_usage(new.tenant, shard),
            fair_share=keys.fair_share(shard),
            idempotency_key=idem_key,
            job_id=job_id,
            arq_payload=job.arq_payload,
            due_ms=new.run_at_ms if new.run_at_ms is not None and scheduled else 0,
            idempotency_value=idem_value,
            idempotency_ttl_ms=idem_ttl_ms,
            wakeup=keys.wakeup(keys.SCHEDULED_WAKEUP if scheduled else keys.JOBS_WAKEUP, shard),
            mode="schedule" if scheduled else "queue",
            quota=self.job_share,
            budget=self.byte_share,
            job_bytes=job.size,
            claim=claim,
            priority=new.priority,
            fields=job.fields,
        )
        written: int = await self._scripts.submit(call)
        await self.trim(new.tenant, shard, now=written != 1)
        self.check_written(written, new.tenant)
        if written == -2:
            raise ClaimLapsedError()
        return job.record

    async def get(self, job_id: str, tenant: str | None = None) -> JobRecord | None:
        """The job, or None when it does not exist or belongs to another tenant."""
        key = keys.job(job_id)
        raw: dict[str, str] = await self._shards.for_key(key).hgetall(key)  # type: ignore[misc]
        return self._record_of(job_id, tenant, raw)

    def as_of_event(self, job_id: str, tenant: str, record: str) -> JobRecord | None:
        """The job as the event that carries its `record` left it (its fields, a JSON
        array: lua/status/_prelude.lua emit_event), read like `get` reads the hash."""
        values = parse_stored(record)
        return self._record_of(job_id, tenant, dict(zip(values[::2], values[1::2], strict=True)))

    def record_outlived(self, at_ms: int) -> bool:
        """Whether an event written at `at_ms` is too old to be sent from the job record it
        carries: the job expires a retention after its last change, and one gone must be
        told by a read (`get`: None), not sent from its copy. Half the retention: a margin
        for the clocks of the process that wrote it and of this one."""
        return now_ms() - at_ms >= self.retention_ms // 2

    def _record_of(self, job_id: str, tenant: str | None, raw: dict[str, str]) -> JobRecord | None:
        if not raw or (tenant is not None and raw.get(F.TENANT) != tenant):
            return None
        return self._opened(JobRecord.from_hash(job_id, raw))

    async def completion_state(self, job_id: str) -> CompletionState | None:
        """What /complete and /fail check before anything else: four fields, not the whole
        record (whose input and result a caller without a key must not make us load)."""
        key = keys.job(job_id)
        tenant, job_type, batch_id, status, digest = await self._shards.for_key(key).hmget(  # type: ignore[misc]
            key, [F.TENANT, F.TYPE, F.BATCH, F.STATUS, F.TOKEN_DIGEST]
        )
        if tenant is None or status is None:
            return None
        return CompletionState(
            JobRef(job_id, tenant, batch_id), job_type, JobStatus(status), digest
        )

    async def get_many(self, job_ids: list[str]) -> list[JobRecord | None]:
        """Each job whole (None for one that expired), in one round trip."""
        raws = await records.hashes(self._shards, [keys.job(i) for i in job_ids])
        return [
            self._opened(JobRecord.from_hash(i, r)) if r else None
            for i, r in zip(job_ids, raws, strict=True)
        ]

    async def heads(self, job_ids: list[str]) -> list[JobRecord | None]:
        """Each job without its bodies (BODY_FIELDS: `input`, `result` and the awaiting_input
        request read as None), in one round trip; None for one that expired. What a list
        reads to filter and render, without loading a megabyte per job."""
        job_keys = [keys.job(job_id) for job_id in job_ids]
        found = await self._shards.pipelined(
            job_keys, lambda pipe, i: pipe.hmget(job_keys[i], list(HEAD_FIELDS))
        )
        heads: list[JobRecord | None] = []
        for job_id, (values,) in zip(job_ids, found, strict=True):
            raw = {name: v for name, v in zip(HEAD_FIELDS, values, strict=True) if v is not None}
            heads.append(
                self._opened(JobRecord.from_hash(job_id, raw)) if F.TENANT in raw else None
            )
        return heads

    async def with_bodies(
        self, heads: list[JobRecord], *, input_and_result: bool
    ) -> list[JobRecord | None]:
        """The jobs of `heads` with the bodies a list item shows, in at most one round trip:
        with `input_and_result` each job is read again whole (one consistent snapshot, None
        for one that expired since); else only the request of those awaiting input is added."""
        if input_and_result:
            return await self.get_many([head.id for head in heads])
        waiting = [head for head in heads if head.awaiting is not None]
        if not waiting:
            return list(heads)
        job_keys = [keys.job(head.id) for head in waiting]
        requests = await self._shards.pipelined(
            job_keys, lambda pipe, i: pipe.hget(job_keys[i], F.AWAIT_REQUEST)
        )
        filled: dict[str, JobRecord] = {}
        for head, (request,) in zip(waiting, requests, strict=True):
            if head.awaiting is not None and request is not None:
                awaiting = replace(head.awaiting, request=parse_stored(request))
                filled[head.id] = replace(head, awaiting=awaiting)
        return [filled.get(head.id, head) for head in heads]

    async def page_ids(
        self,
        tenant: str,
        before: str | None,
        count: int,
        *,
        batch_id: str | None = None,
        schedule_id: str | None = None,
        at_least: str | None = None,
    ) -> list[str]:
        """Job ids of a tenant (or of one of its batches, or of a schedule: on its own
        shard), newest first, older than `before` and not older than `at_least`: every
        shard's index read, merged."""
        if schedule_id:
            return await records.newest_ids(
                self._shards, keys.schedule_jobs(schedule_id), before, count, at_least=at_least
            )

        def index(shard: int) -> str:
            # A batch's items: its parts' indexes (a shard with no part has an empty one).
            if batch_id:
                return keys.batch_jobs(batch_id, shard)
            return keys.tenant_jobs(tenant, shard)

        return await records.newest_ids_across(
            self._shards, index, before, count, at_least=at_least
        )

    def shard_share(self, limit: int, floor: int) -> int:
        """What each shard admits of a tenant-wide limit (0: none): its even share, but at
        least `floor` (or the whole limit, if smaller). A submit is checked on its own
        shard only (one slot, one step), so with S shards a tenant holds up to the limit,
        give or take the spread; the floor keeps a small limit from refusing a tenant
        whose few jobs happen to land together, at the price of admitting up to S times
        a small limit. One shard: exactly the limit."""
        if not limit:
            return 0
        return max(-(-limit // self._shards.count), min(limit, floor))

    @property
    def job_share(self) -> int:
        return self.shard_share(self.quota, QUOTA_FLOOR_JOBS)

    @property
    def byte_share(self) -> int:
        return self.shard_share(self.byte_budget, QUOTA_FLOOR_BYTES)

    async def traceparent(self, job_id: str) -> str | None:
        key = keys.job(job_id)
        found: str | None = await self._shards.for_key(key).hget(key, F.TRACEPARENT)  # type: ignore[misc]
        return found

    async def fields_of(self, job_ids: list[str], *names: F) -> list[tuple[str | None, ...]]:
        """The named fields of each job (None for a job that expired), in one round trip
        per node."""
        job_keys = [keys.job(job_id) for job_id in job_ids]
        found = await self._shards.pipelined(
            job_keys, lambda pipe, i: pipe.hmget(job_keys[i], list(names))
        )
        return [tuple(values) for (values,) in found]

    async def trim(self, tenant: str, shard: int, *, now: bool = False) -> None:
        """Now and then (`now`: this time), drop a window of the tenant's index entries on
        the shard whose records expired, and subtract their bytes (in the background)."""
        await self.trimmer.maybe_trim(
            keys.tenant_jobs(tenant, shard),
            keys.job,
            "job",
            keys.tenant_usage(tenant, shard),
            now=now,
        )

    async def forget_ids(
        self,
        tenant: str,
        job_ids: list[str],
        *,
        batch_id: str | None = None,
        schedule_id: str | None = None,
    ) -> None:
        """Drop index entries whose records expired (retention), and their bytes: each
        shard's from its own index."""
        if schedule_id:
            await records.forget(self._scripts, keys.schedule_jobs(schedule_id), job_ids, keys.job)
            return
        if batch_id:
            await records.forget_across(
                self._scripts, lambda shard: keys.batch_jobs(batch_id, shard), job_ids, keys.job
            )
            return
        await records.forget_across(
            self._scripts,
            lambda shard: keys.tenant_jobs(tenant, shard),
            job_ids,
            keys.job,
            lambda shard: keys.tenant_usage(tenant, shard),
        )

    def _cancel(self, ref: JobRef) -> Cancel:
        shard = ids.shard_of(ref.id)
        return Cancel(
            job=self._status(ref),
            arq_job=keys.arq_job(ref.id),
            queue=keys.job_queue(shard),
            scheduled=keys.scheduled_jobs(shard),
            awaiting=keys.awaiting_input(shard),
            fair_share=keys.fair_share(shard),
            parked=keys.parked_jobs(shard),
            wakeup=keys.wakeup(keys.JOBS_WAKEUP, shard),
        )

    async def cancel(self, ref: JobRef) -> tuple[CancelOutcome, JobRecord | None]:
        reply = await self._scripts.cancel(self._cancel(ref))
        outcome: CancelOutcome = reply[0]
        if outcome == "missing":
            return outcome, None
        return outcome, await self.get(ref.id, ref.tenant)

    async def cancel_many(self, refs: list[JobRef]) -> None:
        """Cancel each of the jobs, pipelined in one round trip per node (terminal ones stay
        as they are)."""
        await self._shards.pipelined(
            [keys.job(ref.id) for ref in refs],
            lambda pipe, i: self._scripts.cancel(self._cancel(refs[i]), client=pipe),
        )

    async def start(
        self, ref: JobRef, max_attempts: int, *, taken_by: str | None = None
    ) -> StartedJob:
        """Take the job for one attempt; says whether to run it, with its input if so.
        `taken_by`: the token of a run whose pickup this start is sent with (in the same
        round trip: queue/leanworker.py); the start happens only if that pickup took it."""
        job_key = keys.job(ref.id)
        guarded = bool(taken_by)
        call = Start(
            job=self._status(ref),
            in_progress=keys.arq_in_progress(ref.id) if guarded else job_key,
            arq_job=keys.arq_job(ref.id) if guarded else job_key,
            max_attempts=max_attempts,
            token=taken_by or "",
        )
        reply = await self._scripts.start(call)
        outcome = reply[0]
        if outcome == "running":
            return StartedJob(
                "running",
                int(reply[1]),
                parse_stored(reply[2]),
                parse_stored(reply[3]),
                int(reply[4]),
            )
        if outcome in ("canceled", "exhausted"):
            return StartedJob(outcome, int(reply[1]) if len(reply) > 1 else 0)
        if outcome == "not-taken":
            return StartedJob("not-taken", 0)
        return StartedJob("skip", 0)

    async def finish(
        self,
        ref: JobRef,
        status: JobStatus,
        *,
        result: Any = None,
        error: dict[str, Any] | None = None,
        progress: dict[str, Any] | None = None,
    ) -> str:
        """Returns 'ok', or the terminal status the job already had (it keeps it)."""
        outcome: str = await self._scripts.finish(
            Finish(
                job=self._status(ref),
                usage=keys.tenant_usage(ref.tenant, ids.shard_of(ref.id)),
                status=status.value,
                result=compact(result) if status is JobStatus.SUCCEEDED else "",
                error=compact(error) if error is not None else "",
                progress=compact(progress) if progress is not None else "",
            )
        )
        return outcome

    async def await_input(
        self,
        ref: JobRef,
        *,
        request: Any,
        deadline_ms: int,
        progress: dict[str, Any] | None,
    ) -> str:
        """Park the job in awaiting_input under a new one-time completion token.
        Returns 'ok', 'canceled', or the status the job had instead (it keeps it)."""
        token = COMPLETION_TOKEN_PREFIX + secrets.token_urlsafe(32)
        sealed = self._token_box().encrypt(token, _token_context(ref.id))
        shard = ids.shard_of(ref.id)
        outcome: str = await self._scripts.await_input(
            AwaitInput(
                job=self._status(ref),
                awaiting=keys.awaiting_input(shard),
                usage=keys.tenant_usage(ref.tenant, shard),
                sealed_token=sealed,
                digest=token_digest(token),
                request=compact(request),
                deadline_ms=deadline_ms,
                progress=compact(progress) if progress is not None else "",
            )
        )
        return outcome

    async def complete(
        self,
        ref: JobRef,
        token: str,
        status: JobStatus,
        *,
        result: Any = None,
        error: dict[str, Any] | None = None,
    ) -> tuple[CompleteOutcome, JobRecord | None]:
        """Complete (or fail) an awaiting_input job with its completion token. 'missing' when
        the job does not exist or the token is not its; 'used' when it was already used.
        `ref` comes from the record the caller read: it names the keys."""
        shard = ids.shard_of(ref.id)
        reply = await self._scripts.complete(
            Complete(
                job=self._status(ref),
                awaiting=keys.awaiting_input(shard),
                usage=keys.tenant_usage(ref.tenant, shard),
                token_digest=token_digest(token),
                outcome=status.value,
                result=compact(result) if status is JobStatus.SUCCEEDED else "",
                error=compact(error) if error is not None else "",
            )
        )
        outcome: CompleteOutcome = reply[0]
        if outcome == "missing":
            return outcome, None
        return outcome, await self.get(ref.id)

    async def expire_awaiting(
        self, shard: int, error: dict[str, Any]
    ) -> tuple[list[str], int | None]:
        """Fail the shard's jobs whose input deadline passed: (the type of each one failed,
        the next deadline in ms or None)."""
        redis, awaiting = self._shards.of(shard), keys.awaiting_input(shard)
        due, next_ms = await _due(redis, awaiting)
        expired: list[str] = []
        for job_id in due:
            tenant, job_type, batch_id = await redis.hmget(  # type: ignore[misc]
                keys.job(job_id), [F.TENANT, F.TYPE, F.BATCH]
            )
            if tenant is None:  # the record expired: nothing left to fail
                await redis.zrem(awaiting, job_id)
                continue
            ref = JobRef(job_id, tenant, batch_id)
            timeout = InputTimeout(job=self._status(ref), awaiting=awaiting, error=compact(error))
            if await self._scripts.input_timeout(timeout):
                expired.append(job_type)
        return expired, next_ms

    async def requeue(self, ref: JobRef, *, refund_attempt: bool) -> None:
        await self._scripts.requeue(
            Requeue(job=self._status(ref), refund_attempt="1" if refund_attempt else "0")
        )

    async def set_progress(
        self, ref: JobRef, progress: dict[str, Any], *, emit_event: bool
    ) -> None:
        await self._scripts.progress(
            Progress(
                job=self._status(ref), progress=compact(progress), emit="1" if emit_event else "0"
            )
        )

    async def promote_due(self, shard: int) -> tuple[int, int | None]:
        """Queue the shard's scheduled jobs, and runs whose retry delay ended, that are due:
        (how many, when the next one falls due in ms, or None)."""
        promoted, next_due = 0, []
        for waiting in (keys.scheduled_jobs(shard), keys.retrying_jobs(shard)):
            now = now_ms()
            due, next_ms = await _due(self._shards.of(shard), waiting, now)
            if next_ms is not None:
                next_due.append(next_ms)
            if not due:
                continue
            call = Promote(
                scheduled_or_retrying=waiting,
                queue=keys.job_queue(shard),
                fair_share=keys.fair_share(shard),
                jobs_and_arq_jobs=[(keys.job(job_id), keys.arq_job(job_id)) for job_id in due],
                now_ms=now,
                wakeup=keys.wakeup(keys.JOBS_WAKEUP, shard),
                ids_and_changes=[(job_id, keys.job_changes(job_id)) for job_id in due],
            )
            promoted += await self._scripts.promote(call)
        return promoted, min(next_due, default=None)

    async def recover_lapsed(self, shard: int) -> tuple[int, int | None]:
        """Put back into the queue the shard's runs whose lease lapsed (their worker died):
        (how many, when the next lease lapses in ms, or None when nothing runs)."""
        back, until_ms = await self._scripts.fair_recover(
            FairRecover(
                running=keys.running_jobs(shard),
                queue=keys.job_queue(shard),
                fair_share=keys.fair_share(shard),
                wakeup=keys.wakeup(keys.JOBS_WAKEUP, shard),
                most=PROMOTE_BATCH,
            )
        )
        if back:
            log.warning("%d runs on shard %d lost their worker: queued again", back, shard)
        if back == PROMOTE_BATCH:
            return back, now_ms()  # more may have lapsed: look again at once
        return back, None if until_ms < 0 else now_ms() + until_ms

    async def cancel_flags(self, job_ids: list[str]) -> list[bool]:
        """Whether a cancel was requested, for each of a worker's running jobs (one round trip)."""
        job_keys = [keys.job(job_id) for job_id in job_ids]
        replies = await self._shards.pipelined(
            job_keys, lambda pipe, i: pipe.hmget(job_keys[i], [F.CANCEL, F.STATUS])
        )
        return [cancel == "1" or status == "canceled" for ((cancel, status),) in replies]


async def _due(redis: Redis, schedule: str, now: int | None = None) -> tuple[list[str], int | None]:
    """The members of a sorted set by time that are due, and when the next one falls due
    (now, if more are due than one read takes): one command, so the caller can sleep until
    then instead of polling."""
    now = now_ms() if now is None else now
    head: list[tuple[str, float]] = await redis.zrange(
        schedule, 0, PROMOTE_BATCH - 1, withscores=True
    )
    due = [member for member, score in head if score <= now]
    later = [int(score) for _, score in head if score > now]
    if len(due) == PROMOTE_BATCH:
        return due, now
    return due, later[0] if later else None

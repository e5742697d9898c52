"""What a job's hash holds: the record, read from the hash and written to it through the
one list of its fields (store/layouts.py JobField), by submit, a schedule's tick and a batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from acceptd.core.frozen import frozen
from acceptd.core.jsonenc import compact_plain, parse_stored
from acceptd.core.statuses import JobStatus
from acceptd.store.layouts import JobField as F


@dataclass(frozen=True)
class AwaitingInput:
    """What a job in awaiting_input waits for: shown to its owner and in its events."""

    request: Any
    deadline_ms: int
    token: str


@dataclass(frozen=True)
class JobRef:
    """What names every key of a job: its id, its tenant, and its batch if it is in one."""

    id: str
    tenant: str
    batch_id: str | None = None

    def run_args(self, job_type: str) -> list[str]:
        """The arguments of arq's "run job X": enough to name every key of the job."""
        return [self.id, self.tenant, job_type, *([self.batch_id] if self.batch_id else [])]

    @staticmethod
    def of_run_args(args: Any) -> tuple[JobRef, str] | None:
        """The job and its type that `run_args` wrote, or None for arguments it did not
        write (worker/role.py run_job takes the same ones from arq)."""
        if not isinstance(args, list | tuple) or not 3 <= len(args) <= 4:
            return None
        if not all(isinstance(arg, str) for arg in args):
            return None
        return JobRef(args[0], args[1], args[3] if len(args) == 4 else None), args[2]


@frozen
class JobRecord:
    id: str
    tenant: str
    type: str
    status: JobStatus
    input: Any
    metadata: dict[str, Any]
    callback_url: str | None
    attempts: int
    created_ms: int
    started_ms: int | None = None
    finished_ms: int | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    progress: dict[str, Any] = field(default_factory=lambda: {"fraction": 0.0, "message": None})
    cancel_requested: bool = False
    priority: str = "normal"
    run_at_ms: int | None = None
    batch_id: str | None = None
    awaiting: AwaitingInput | None = None
    # Digest of the completion token, kept after use so a second use is told apart (409).
    completion_digest: str | None = None
    # W3C traceparent of the submit's span: the worker and every webhook continue it.
    traceparent: str | None = None
    ordering_key: str | None = None
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    schedule_id: str | None = None
    channels: list[str] = field(default_factory=list)

    @property
    def ref(self) -> JobRef:
        return JobRef(self.id, self.tenant, self.batch_id)

    @classmethod
    def from_hash(cls, job_id: str, raw: dict[str, str]) -> JobRecord:
        def opt_int(name: F) -> int | None:
            value = raw.get(name)
            return int(value) if value else None

        progress = raw.get(F.PROGRESS)
        return cls(
            id=job_id,
            tenant=raw[F.TENANT],
            type=raw[F.TYPE],
            status=JobStatus(raw[F.STATUS]),
            input=parse_stored(raw.get(F.INPUT, "null")),
            metadata=parse_stored(raw.get(F.METADATA, "{}")),
            callback_url=raw.get(F.CALLBACK_URL) or None,
            attempts=int(raw.get(F.ATTEMPTS, "0")),
            created_ms=int(raw[F.CREATED]),
            started_ms=opt_int(F.STARTED),
            finished_ms=opt_int(F.FINISHED),
            result=parse_stored(raw[F.RESULT]) if F.RESULT in raw else None,
            error=parse_stored(raw[F.ERROR]) if F.ERROR in raw else None,
            progress=parse_stored(progress) if progress else {"fraction": 0.0, "message": None},
            cancel_requested=raw.get(F.CANCEL) == "1",
            priority=raw.get(F.PRIORITY, "normal"),
            run_at_ms=opt_int(F.RUN_AT),
            batch_id=raw.get(F.BATCH),
            awaiting=AwaitingInput(
                request=parse_stored(raw.get(F.AWAIT_REQUEST, "null")),
                deadline_ms=int(raw[F.AWAIT_DEADLINE]),
                token=raw[F.TOKEN],
            )
            if raw.get(F.STATUS) == JobStatus.AWAITING_INPUT and F.TOKEN in raw
            else None,
            completion_digest=raw.get(F.TOKEN_DIGEST),
            traceparent=raw.get(F.TRACEPARENT),
            ordering_key=raw.get(F.ORDERING_KEY),
            concurrency_key=raw.get(F.CONCURRENCY_KEY),
            concurrency_limit=opt_int(F.CONCURRENCY_LIMIT),
            schedule_id=raw.get(F.SCHEDULE),
            channels=parse_stored(raw[F.CHANNELS]) if raw.get(F.CHANNELS) else [],
        )


# The fields that can each hold up to a megabyte (ACCEPTD_MAX_INPUT_BYTES, ..._RESULT_BYTES;
# an awaiting_input request is a handler's result): a list reads them only for the items
# that return them, a few at a time.
BODY_FIELDS: tuple[str, ...] = (F.INPUT, F.RESULT, F.AWAIT_REQUEST)
# Every other field JobRecord.from_hash reads: small (metadata is capped at
# ACCEPTD_MAX_METADATA_BYTES), so a list reads them for a whole run of its index at once.
HEAD_FIELDS: tuple[str, ...] = tuple(
    name for name in F if name not in BODY_FIELDS and name is not F.WATCHED
)


@frozen
class NewJob:
    tenant: str
    type: str
    input: Any
    metadata: dict[str, Any]
    callback_url: str | None
    priority: str = "normal"
    run_at_ms: int | None = None
    traceparent: str | None = None
    ordering_key: str | None = None
    # At most concurrency_limit jobs of the tenant with this key run at once (store/fairshare.py).
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    # The recurring schedule that submitted it (store/schedules.py).
    schedule_id: str | None = None
    # Only endpoints with one of these (or with none) get its events (dispatcher/fanout.py).
    channels: list[str] = field(default_factory=list)


class JobContent(Protocol):
    """What a job holds of its own, whether submitted alone (NewJob) or in a batch
    (store/batches.py NewItem): the fields each item of a batch writes."""

    @property
    def type(self) -> str: ...
    @property
    def input(self) -> Any: ...
    @property
    def metadata(self) -> dict[str, Any] | None: ...
    @property
    def ordering_key(self) -> str | None: ...
    @property
    def concurrency_key(self) -> str | None: ...
    @property
    def concurrency_limit(self) -> int | None: ...
    @property
    def channels(self) -> list[str]: ...


Fields = dict[F, str | int]
"""Fields of a job's hash by name (store/layouts.py `flat` lays them out for HSET)."""


def content_fields(content: JobContent, schedule_id: str | None = None) -> Fields:
    """The fields of a new job's hash that are its own (a batch writes these per item)."""
    # What a client sent, measured by its caps in this same text (api/validation.py).
    fields: Fields = {F.TYPE: content.type, F.INPUT: compact_plain(content.input)}
    if content.metadata:
        fields[F.METADATA] = compact_plain(content.metadata)
    if content.ordering_key:
        fields[F.ORDERING_KEY] = content.ordering_key
    if content.concurrency_key:
        fields[F.CONCURRENCY_KEY] = content.concurrency_key
        fields[F.CONCURRENCY_LIMIT] = content.concurrency_limit or 1
    if schedule_id:
        fields[F.SCHEDULE] = schedule_id
    if content.channels:
        fields[F.CHANNELS] = compact_plain(content.channels)
    return fields


def shared_fields(
    tenant: str,
    status: JobStatus,
    created_ms: int,
    *,
    callback_url: str | None = None,
    priority: str = "normal",
    run_at_ms: int | None = None,
    traceparent: str | None = None,
    batch_id: str | None = None,
) -> Fields:
    """The fields of a new job's hash that every item of one batch shares."""
    fields: Fields = {
        F.TENANT: tenant,
        F.STATUS: status.value,
        F.ATTEMPTS: 0,
        F.CREATED: created_ms,
    }
    if callback_url:
        fields[F.CALLBACK_URL] = callback_url
    if priority != "normal":
        fields[F.PRIORITY] = priority
    if run_at_ms is not None:
        fields[F.RUN_AT] = run_at_ms
    if traceparent:
        fields[F.TRACEPARENT] = traceparent
    if batch_id:
        fields[F.BATCH] = batch_id
    return fields


def new_job_fields(record: JobRecord) -> Fields:
    """Everything a new job's hash holds, from the record the write answers with: what the
    client is shown is what was written."""
    shared = shared_fields(
        record.tenant,
        record.status,
        record.created_ms,
        callback_url=record.callback_url,
        priority=record.priority,
        run_at_ms=record.run_at_ms,
        traceparent=record.traceparent,
        batch_id=record.batch_id,
    )
    return shared | content_fields(record, record.schedule_id)

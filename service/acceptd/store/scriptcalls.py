"""What each of the store's Lua scripts takes, by name: one call type per script, its KEYS
then its ARGV in the order of the script's header (store/luacall.py has the rules;
tests/unit/test_script_headers.py holds each against its header). A field holds what the
script is given: a key name, or an argument as Redis receives it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from acceptd.core.frozen import frozen


@frozen(slots=True, kw_only=True)
class JobChange:
    """What every status script (lua/status/) takes first: lua/status/_prelude.lua's
    KEYS[1..5] and ARGV[1..6]. For a job in no batch, `batch_part` and `part_index` are the
    job hash (a cluster hashes every key, '' to slot 0)."""

    KEYS: ClassVar[int] = 5
    job: str
    events: str
    subscriptions: str
    batch_part: str
    part_index: str
    job_id: str
    tenant: str
    now_ms: int
    event_id: str
    retention_ms: int
    changes: str


@frozen(slots=True, kw_only=True)
class ApiKeyCreate:
    SCRIPT: ClassVar[str] = "store/lua/apikey_create.lua"
    KEYS: ClassVar[int] = 2
    tenant_keys: str
    lookup: str
    cap: int
    key_id: str
    entry: str
    identity: str


@frozen(slots=True, kw_only=True)
class AwaitInput:
    SCRIPT: ClassVar[str] = "store/lua/status/await_input.lua"
    KEYS: ClassVar[int] = 2
    job: JobChange
    awaiting: str
    usage: str
    sealed_token: str
    digest: str
    request: str
    deadline_ms: int
    progress: str


@frozen(slots=True, kw_only=True)
class BatchItems:
    SCRIPT: ClassVar[str] = "store/lua/batch_items.lua"
    KEYS: ClassVar[int] = 7
    tenant_index: str
    part_index: str
    queue: str
    part: str
    usage: str
    fair_share: str
    # Per item: (its job hash, its arq job key).
    jobs_and_arq_jobs: Sequence[tuple[str, str]]
    tenant: str
    priority: str
    shared_fields: str
    items: str
    hold: Literal["0", "1"]


@frozen(slots=True, kw_only=True)
class BatchOpen:
    SCRIPT: ClassVar[str] = "store/lua/batch_open.lua"
    KEYS: ClassVar[int] = 5
    batch: str
    filed: str
    tenant_index: str
    usage: str
    # () or (the idempotency key,).
    idempotency_key: Sequence[str]
    batch_id: str
    items: int
    quota: int
    budget: int
    hash_bytes: int
    item_bytes: int
    idempotency_value: str
    ttl_ms: int
    score: int
    deadline_ms: int
    claim: str
    # The hash's field/value pairs, flat.
    fields: Sequence[str | int]


@frozen(slots=True, kw_only=True)
class BatchPartDone:
    """The prelude's entries (lua/status/_prelude.lua) with the batch's home in the job's
    place: its home hash is KEYS[1] and KEYS[4]."""

    SCRIPT: ClassVar[str] = "store/lua/status/batch_part_done.lua"
    KEYS: ClassVar[int] = 5
    home: str
    events: str
    subscriptions: str
    batch_part: str
    part_index: str
    batch_id: str
    tenant: str
    now_ms: int
    event_id: str
    retention_ms: int
    changes: str
    part_shard: int


@frozen(slots=True, kw_only=True)
class BatchPartDrop:
    SCRIPT: ClassVar[str] = "store/lua/batch_part_drop.lua"
    KEYS: ClassVar[int] = 6
    pending: str
    part: str
    job_index: str
    tenant_index: str
    usage: str
    # Per item, in the order of `item_ids`: (its job hash, its arq job key).
    jobs_and_arq_jobs: Sequence[tuple[str, str]]
    batch_id: str
    item_ids: Sequence[str]


@frozen(slots=True, kw_only=True)
class BatchPartRelease:
    SCRIPT: ClassVar[str] = "store/lua/batch_part_release.lua"
    KEYS: ClassVar[int] = 5
    pending: str
    part_index: str
    queue: str
    part: str
    fair_share: str
    batch_id: str
    wakeup: str


@frozen(slots=True, kw_only=True)
class Cancel:
    SCRIPT: ClassVar[str] = "store/lua/status/cancel.lua"
    KEYS: ClassVar[int] = 6
    job: JobChange
    arq_job: str
    queue: str
    scheduled: str
    awaiting: str
    fair_share: str
    parked: str
    wakeup: str


@frozen(slots=True, kw_only=True)
class Complete:
    SCRIPT: ClassVar[str] = "store/lua/status/complete.lua"
    KEYS: ClassVar[int] = 2
    job: JobChange
    awaiting: str
    usage: str
    token_digest: str
    outcome: str
    result: str
    error: str


@frozen(slots=True, kw_only=True)
class FairRecover:
    SCRIPT: ClassVar[str] = "store/lua/fair_recover.lua"
    KEYS: ClassVar[int] = 3
    running: str
    queue: str
    fair_share: str
    wakeup: str
    most: int


@frozen(slots=True, kw_only=True)
class FairUnpark:
    SCRIPT: ClassVar[str] = "store/lua/fair_unpark.lua"
    KEYS: ClassVar[int] = 3
    queue: str
    fair_share: str
    parked: str
    tenant: str
    wakeup: str
    went_back: int


@frozen(slots=True, kw_only=True)
class Finish:
    SCRIPT: ClassVar[str] = "store/lua/status/finish.lua"
    KEYS: ClassVar[int] = 1
    job: JobChange
    usage: str
    status: str
    result: str
    error: str
    progress: str


@frozen(slots=True, kw_only=True)
class Forget:
    SCRIPT: ClassVar[str] = "store/lua/forget.lua"
    KEYS: ClassVar[int] = 3
    index: str
    usage: str
    # Per entry, in the order of `entry_ids`: (its record, its webhook bodies).
    records_and_bodies: Sequence[tuple[str, str]]
    subtract: Literal["0", "1"]
    entry_ids: Sequence[str]


@frozen(slots=True, kw_only=True)
class IdemClaim:
    SCRIPT: ClassVar[str] = "store/lua/idem_claim.lua"
    KEYS: ClassVar[int] = 1
    idempotency_key: str
    fingerprint: str
    lock_ms: int
    token: str


@frozen(slots=True, kw_only=True)
class IdemRelease:
    SCRIPT: ClassVar[str] = "store/lua/idem_release.lua"
    KEYS: ClassVar[int] = 1
    idempotency_key: str
    claim: str


@frozen(slots=True, kw_only=True)
class InputTimeout:
    SCRIPT: ClassVar[str] = "store/lua/status/input_timeout.lua"
    KEYS: ClassVar[int] = 1
    job: JobChange
    awaiting: str
    error: str


@frozen(slots=True, kw_only=True)
class MarkWatched:
    SCRIPT: ClassVar[str] = "store/lua/mark_watched.lua"
    KEYS: ClassVar[int] = 1
    job: str
    until_ms: int


@frozen(slots=True, kw_only=True)
class OrderHead:
    SCRIPT: ClassVar[str] = "store/lua/order_head.lua"
    KEYS: ClassVar[int] = 2
    order_queue: str
    queue_set: str


@frozen(slots=True, kw_only=True)
class PortalLinkCreate:
    SCRIPT: ClassVar[str] = "store/lua/portal_link_create.lua"
    KEYS: ClassVar[int] = 2
    link: str
    tenant_links: str
    now_ms: int
    cap: int
    value: str
    lifetime_ms: int
    digest: str
    expiry_ms: int


@frozen(slots=True, kw_only=True)
class PortalSessionCreate:
    SCRIPT: ClassVar[str] = "store/lua/portal_session_create.lua"
    KEYS: ClassVar[int] = 2
    bearer: str
    tenant_sessions: str
    cap: int
    identity: str
    lifetime_ms: int
    session_id: str
    entry: str


@frozen(slots=True, kw_only=True)
class Progress:
    SCRIPT: ClassVar[str] = "store/lua/status/progress.lua"
    KEYS: ClassVar[int] = 0
    job: JobChange
    progress: str
    emit: Literal["0", "1"]


@frozen(slots=True, kw_only=True)
class Promote:
    SCRIPT: ClassVar[str] = "store/lua/promote.lua"
    KEYS: ClassVar[int] = 4
    scheduled_or_retrying: str
    queue: str
    fair_share: str
    # Per job, in the order of `ids_and_changes`: (its job hash, its arq job key).
    jobs_and_arq_jobs: Sequence[tuple[str, str]]
    now_ms: int
    wakeup: str
    # Per job: (its id, its change channel).
    ids_and_changes: Sequence[tuple[str, str]]


@frozen(slots=True, kw_only=True)
class RateLimit:
    SCRIPT: ClassVar[str] = "store/lua/rate_limit.lua"
    KEYS: ClassVar[int] = 1
    bucket: str
    tokens_per_second: float
    burst: int


@frozen(slots=True, kw_only=True)
class Requeue:
    SCRIPT: ClassVar[str] = "store/lua/status/requeue.lua"
    KEYS: ClassVar[int] = 0
    job: JobChange
    refund_attempt: Literal["0", "1"]


@frozen(slots=True, kw_only=True)
class Start:
    SCRIPT: ClassVar[str] = "store/lua/status/start.lua"
    KEYS: ClassVar[int] = 2
    job: JobChange
    in_progress: str
    arq_job: str
    max_attempts: int
    token: str


@frozen(slots=True, kw_only=True)
class Submit:
    SCRIPT: ClassVar[str] = "store/lua/submit.lua"
    KEYS: ClassVar[int] = 7
    job: str
    tenant_index: str
    arq_job: str
    # The job queue, or the scheduled set when `mode` is 'schedule'.
    queue: str
    usage: str
    fair_share: str
    # () or (the idempotency key,).
    idempotency_key: Sequence[str]
    job_id: str
    arq_payload: str
    due_ms: int
    idempotency_value: str
    idempotency_ttl_ms: int
    wakeup: str
    mode: Literal["queue", "schedule"]
    quota: int
    budget: int
    job_bytes: int
    claim: str
    priority: str
    # The job hash's field/value pairs, flat, the tenant's first.
    fields: Sequence[str | int]


@frozen(slots=True, kw_only=True)
class Throttle:
    SCRIPT: ClassVar[str] = "store/lua/throttle.lua"
    KEYS: ClassVar[int] = 2
    window: str
    waiting: str
    limit: int
    window_ms: int
    delivery_id: str

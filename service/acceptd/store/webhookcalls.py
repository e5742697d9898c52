"""What the webhook scripts take, by name: the call types (store/luacall.py has the rules) of
the delivery, endpoint and subscription-count scripts, each its KEYS then its ARGV in the
order of its script's header (tests/unit/test_script_headers.py holds each against it). A
field holds what the script is given: a key name, or an argument as Redis receives it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from acceptd.core.frozen import frozen

# ---- deliveries -------------------------------------------------------------------------


@frozen(slots=True, kw_only=True)
class DeliveryKeys:
    """What lua/delivery_attempt.lua and lua/delivery_requeue.lua take first: a delivery's
    KEYS[1..8], with the arq job key of the attempt each queues."""

    KEYS: ClassVar[int] = 8
    delivery: str
    attempts: str
    due: str
    arq_job: str
    queue: str
    inline_leases: str
    bodies: str
    usage: str


@frozen(slots=True, kw_only=True)
class DeliveryCreate:
    SCRIPT: ClassVar[str] = "store/lua/delivery_create.lua"
    KEYS: ClassVar[int] = 12
    delivery: str
    job_deliveries: str
    due: str
    arq_job: str
    queue: str
    tenant_index: str
    endpoint_index: str
    # Touched only for a delivery to an ordered endpoint (else any key of its slot).
    order_queue: str
    order_queues: str
    inline_leases: str
    bodies: str
    usage: str
    delivery_id: str
    arq_payload: str
    # Due ('queue'), or the inline lease's end ('inline').
    due_ms: int
    retention_ms: int
    arq_job_id: str
    wakeup: str
    to_endpoint: Literal["1", ""]
    # '' leaves the indexes untrimmed this time.
    oldest_id: str
    order_place: str
    way: Literal["queue", "inline", "held"]
    body_field: str
    shared_body: str
    # '' for none: the delivery is not counted.
    usage_field: str
    charged: int
    # The delivery hash's field/value pairs, flat.
    fields: Sequence[str | int]


@frozen(slots=True, kw_only=True)
class DeliveryAttempt:
    SCRIPT: ClassVar[str] = "store/lua/delivery_attempt.lua"
    KEYS: ClassVar[int] = 1
    delivery: DeliveryKeys
    # () or (the shard's events stream, its copy of the tenant's subscription counts):
    # where a `delivery.exhausted` event is written, with `event_fields`.
    exhausted_event_keys: Sequence[str]
    delivery_id: str
    attempt_no: int
    attempt_json: str
    status: str
    due_ms: int
    arq_payload: str
    retention_ms: int
    arq_job_id: str
    usage_field: str
    kept_attempts: int
    wakeup: str  # the shard's webhooks wake-up channel, told of a next attempt queued
    # The event's entry, as field/value pairs (store/operational.py): () with no keys.
    event_fields: Sequence[str]


@frozen(slots=True, kw_only=True)
class DeliveryRequeue:
    SCRIPT: ClassVar[str] = "store/lua/delivery_requeue.lua"
    KEYS: ClassVar[int] = 0
    delivery: DeliveryKeys
    delivery_id: str
    now_ms: int
    arq_payload: str
    attempt_count: int
    mode: Literal["manual", "sweep"]
    arq_job_id: str
    wakeup: str
    budget: int


# ---- endpoints and their subscription counts ----------------------------------------------


@frozen(slots=True, kw_only=True)
class EndpointCreate:
    SCRIPT: ClassVar[str] = "store/lua/endpoint_create.lua"
    KEYS: ClassVar[int] = 2
    endpoint: str
    tenant_endpoints: str
    limit: int
    endpoint_id: str
    # The endpoint hash's field/value pairs, flat.
    fields: Sequence[str]


@frozen(slots=True, kw_only=True)
class EndpointHealth:
    SCRIPT: ClassVar[str] = "store/lua/endpoint_health.lua"
    KEYS: ClassVar[int] = 1
    endpoint: str
    kind: Literal["failure", "disable"]
    now_ms: int
    reason: str


@frozen(slots=True, kw_only=True)
class EndpointWrite:
    SCRIPT: ClassVar[str] = "store/lua/endpoint_write.lua"
    KEYS: ClassVar[int] = 1
    endpoint: str
    tenant: str
    enabled: str  # '1' when the change enables the endpoint, else '0'
    fields: Sequence[tuple[str, str]]


@frozen(slots=True, kw_only=True)
class RecountSubs:
    SCRIPT: ClassVar[str] = "store/lua/recount_subs.lua"
    KEYS: ClassVar[int] = 4
    tenant_endpoints: str
    counts: str
    pending: str
    # The hash of each endpoint of `endpoint_ids`, in the same order.
    endpoints: Sequence[str]
    tenant: str
    endpoint_ids: Sequence[str]


@frozen(slots=True, kw_only=True)
class SubsCopy:
    SCRIPT: ClassVar[str] = "store/lua/subs_copy.lua"
    KEYS: ClassVar[int] = 1
    copy: str
    # Field/value pairs, flat, `~v` and its version first (what lua/recount_subs.lua returns).
    counts: Sequence[str]


@frozen(slots=True, kw_only=True)
class SubsCopied:
    SCRIPT: ClassVar[str] = "store/lua/subs_copied.lua"
    KEYS: ClassVar[int] = 1
    pending: str
    tenant: str
    version: str

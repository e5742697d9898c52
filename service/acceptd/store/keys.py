"""Every Redis key acceptd uses, and nothing else spells one out.

All keys share one prefix so an operator can tell them apart from other tenants of a
shared Redis. arq's own keys keep arq's prefixes, spelled here too (the store's scripts
write arq's job key with the record it runs): tests/unit/test_arq_seams.py holds them
against arq.constants, and queue/arqseams.py says what else of arq we rely on.

Every key carries a hash tag, so that on a Redis/Valkey Cluster each script, transaction
and pipeline touches one hash slot:
- a *shard's* tag (`shard_tag`): a job, its batch, deliveries and events, and the per-shard
  queues and indexes they are filed in. The shard of a record is named by its id
  (core/ids.py: `ids.shard_of`), so no lookup finds it; ACCEPTD_SHARDS says how many there
  are, and a tenant's jobs spread over all of them;
- the *control* tag: tenants, API keys, endpoints, portal links and sessions, rate-limit
  buckets, process heartbeats. Small, read through caches, written rarely.
On one server the tags change nothing.
"""

from __future__ import annotations

import functools
import hashlib

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from acceptd.core import ids

PREFIX = "acceptd:"

CONTROL = PREFIX + "{c}:"

# Slots are cut into this many equal ranges; shard k's tag hashes into range bitreverse(k),
# so the first S shards (S a power of two) sit at evenly spaced slots: a cluster that splits
# its slots evenly among N primaries holds S/N shards on each (±1).
_RANGES = 1024
_RANGE_BITS = 10


@functools.cache
def shard_tag(shard: int) -> str:
    """`{s<k>.<n>}`: the first n (from 0) that puts the tag in the shard's range of slots.
    A pure function of k, so every process and every version agrees on it."""
    target = int(f"{shard % _RANGES:0{_RANGE_BITS}b}"[::-1], 2)
    width = REDIS_CLUSTER_HASH_SLOTS // _RANGES
    n = 0
    while key_slot(f"s{shard}.{n}".encode()) // width != target:
        n += 1
    return f"{{s{shard}.{n}}}"


def shard_of_key(key: str) -> int:
    """The shard whose tag a key carries (a key made by a per-shard function above)."""
    tag = key[key.index("{s") + 2 : key.index("}")]
    return int(tag.partition(".")[0])


@functools.cache
def _shard(shard: int) -> str:
    return f"{PREFIX}{shard_tag(shard)}:"


def _of(record_id: str) -> str:
    """The key prefix of the shard `record_id` names."""
    return _shard(ids.shard_of(record_id))


def job_queue(shard: int) -> str:
    return _shard(shard) + "queue:jobs"


def webhook_queue(shard: int) -> str:
    return _shard(shard) + "queue:webhooks"


def fair_share(shard: int) -> str:
    """Hash of the shard's fair-share state: virtual times, tenants' tags, weights, caps
    and counts, slots held (store/lua/_fair.lua lists its fields)."""
    return _shard(shard) + "fair"


def running_jobs(shard: int) -> str:
    """The job queue's entries a worker took, out of the queue while they run, scored by
    when their run's lease lapses: a lapsed one goes back into the queue (store/fairshare.py)."""
    return _shard(shard) + "running"


def parked_jobs(shard: int) -> str:
    """Jobs refused a slot by a tenant's cap or a concurrency key's limit, out of the queue
    until one frees: one lexicographic range per limit (store/lua/_fair.lua)."""
    return _shard(shard) + "parked"


def scheduled_jobs(shard: int) -> str:
    return _shard(shard) + "scheduled"


def retrying_jobs(shard: int) -> str:
    """Runs that asked to run again later (a retry's delay, an outage's back-off), scored by
    when: queued again then, with a new fair-share tag (store/fairshare.py)."""
    return _shard(shard) + "retrying"


def awaiting_input(shard: int) -> str:
    """Jobs in awaiting_input, scored by the deadline of their completion token."""
    return _shard(shard) + "awaiting"


def events_stream(shard: int) -> str:
    return _shard(shard) + "events"


EVENTS_GROUP = "dispatchers"


def deliveries_due(shard: int) -> str:
    return _shard(shard) + "deliveries:due"


def inline_leases(shard: int) -> str:
    """Deliveries whose first attempt a dispatcher is sending inline, scored by when its
    lease lapses (dispatcher/inline.py)."""
    return _shard(shard) + "leases:inline-deliveries"


def order_queues(shard: int) -> str:
    """The shard's order queues that hold deliveries (a sweeper starts heads whose turn came)."""
    return _shard(shard) + "order-queues"


def wakeup(kind: str, shard: int) -> str:
    """A shard's wake-up channel of a kind (JOBS_WAKEUP...): in the shard's slot, so the
    scripts that queue work there SPUBLISH on it (store/shardchannels.py)."""
    return f"{_shard(shard)}wakeup:{kind}"


def durability_mark(shard: int) -> str:
    """A counter the API increments after acknowledged writes and waits for with
    WAIT/WAITAOF (store/durability.py): the wait confirms every write before it in the
    stream of the primary that holds the shard."""
    return _shard(shard) + "durability-mark"


TENANTS = CONTROL + "tenants"
# Wake-up channels, one of each kind per shard (`wakeup`): a message means "new work is
# due now on this shard" (polling is only the fallback).
JOBS_WAKEUP = "jobs"
# Told when a job is scheduled: workers sleep until the earliest due time otherwise.
SCHEDULED_WAKEUP = "scheduled"
WEBHOOKS_WAKEUP = "webhooks"
# The shard count the first role recorded: every role compares its own with it at start.
SHARD_COUNT = CONTROL + "shards"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def home_shard(name: str, shards: int) -> int:
    """The shard of a name (a tenant's idempotency key, an ordering key) among `shards`:
    the same every time, so a retry or the next event of an ordering key finds it."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "big") % shards


# ---- a shard's records: the shard is named by the id -------------------------------------


def job(job_id: str) -> str:
    return f"{_of(job_id)}job:{job_id}"


def job_changes(job_id: str) -> str:
    """Pub/sub channel told of every status or progress change of the job."""
    return f"{job(job_id)}:changes"


def batch(batch_id: str) -> str:
    """Hash of the batch on its home shard (the one its id names): what it is, and the
    counts per status of its items on that shard (its home *part*)."""
    return f"{_of(batch_id)}batch:{batch_id}"


def batch_part(batch_id: str, shard: int) -> str:
    """Hash of the batch's items on `shard`: their counts per status, kept by the status
    scripts (which check that the key they are given ends in the job's `batch` field). A
    batch's items spread over shards (store/batches.py); on its home shard this is
    `batch` itself."""
    return f"{_shard(shard)}batch:{batch_id}"


def batch_jobs(batch_id: str, shard: int) -> str:
    """Sorted set of the ids of the batch's items on `shard`, like tenant_jobs (expired
    with the part)."""
    return f"{batch_part(batch_id, shard)}:jobs"


def schedule(schedule_id: str) -> str:
    """Hash of a recurring schedule (store/schedules.py) on the shard its id names, where
    every job it submits is written, so a tick is claimed and its job made in one step."""
    return f"{_of(schedule_id)}schedule:{schedule_id}"


def schedule_jobs(schedule_id: str) -> str:
    """Sorted set of the ids of the jobs a schedule submitted, like tenant_jobs."""
    return f"{schedule(schedule_id)}:jobs"


def schedules_due(shard: int) -> str:
    """The shard's unpaused schedules scored by their next tick (ms): the index the
    workers sleep on, so a waiting schedule costs no polling. A worker that takes a due
    one moves its score a lease ahead until the tick is written (store/schedules.py)."""
    return _shard(shard) + "schedules:due"


def schedule_sizes(shard: int) -> str:
    """Hash of the shard's schedules -> the bytes of each one's own fields (its job
    template): a worker reads a burst of due ticks in groups of bounded bytes, not 200
    templates of a megabyte at once."""
    return _shard(shard) + "schedules:sizes"


def batch_parts_pending(shard: int) -> str:
    """Sorted set of the batches whose part on the shard is written but not yet queued
    (its batch may still be refused), scored by when a worker looks at it if the API that
    wrote it does not come back to it (store/batches.py, 'A batch over many shards')."""
    return _shard(shard) + "batch-parts-pending"


def delivery(delivery_id: str) -> str:
    return f"{_of(delivery_id)}delivery:{delivery_id}"


def delivery_attempts(delivery_id: str) -> str:
    return f"{delivery(delivery_id)}:attempts"


def webhook_bodies(subject_id: str) -> str:
    """Hash of the webhook bodies of a job's (or a batch's) events, one field per (event,
    shape), shared by every delivery of it; field `p` counts its pending deliveries (it
    expires a retention after the last one ends)."""
    return f"{_of(subject_id)}job:{subject_id}:bodies"


def job_deliveries(subject_id: str) -> str:
    """Deliveries of a job's events, or of a batch's (the subject is then the batch id)."""
    return f"{_of(subject_id)}job:{subject_id}:deliveries"


def recovery(recovery_id: str) -> str:
    return f"{_of(recovery_id)}recovery:{recovery_id}"


# ---- per tenant (or endpoint) and per shard: read across shards, merged -------------------


def tenant_jobs(name: str, shard: int) -> str:
    """Sorted set of the tenant's job ids on the shard (all scores 0, ordered by id = by
    creation time)."""
    return f"{_shard(shard)}tenant:{name}:jobs"


def tenant_usage(name: str, shard: int) -> str:
    """Hash of the bytes the tenant stores on the shard (store/usage.py): field `bytes`,
    the total, and one field per retained job or batch id, what that record and its
    webhook bodies added to it (subtracted when the index trim finds them gone)."""
    return f"{_shard(shard)}tenant:{name}:usage"


def tenant_batches(name: str, shard: int) -> str:
    """Sorted set of the tenant's batch ids on the shard, ordered like tenant_jobs."""
    return f"{_shard(shard)}tenant:{name}:batches"


def tenant_event_subscriptions(name: str, shard: int) -> str:
    """Hash event type -> number of the tenant's enabled endpoints subscribed to it: the
    shard's copy, read by its status scripts (store/endpoints.py writes every copy)."""
    return f"{_shard(shard)}tenant:{name}:subs"


def tenant_deliveries(name: str, shard: int) -> str:
    """The tenant's deliveries on the shard, by id (ids sort by time): the console's
    per-minute counts."""
    return f"{_shard(shard)}tenant:{name}:deliveries"


def endpoint_deliveries(endpoint_id: str, shard: int) -> str:
    """The deliveries to one endpoint on the shard, by id: its page in the console and its
    health figures."""
    return f"{_shard(shard)}endpoint:{endpoint_id}:deliveries"


def idempotency(tenant_name: str, idempotency_key: str, shard: int) -> str:
    return f"{_shard(shard)}idem:{tenant_name}:{digest(idempotency_key)}"


def order_queue(shard: int, endpoint_id: str, ordering_key: str) -> str:
    """The deliveries of one ordering key to one ordered endpoint, in emit order (sorted set,
    member = padded stream id|delivery id): the head is the one that may be in flight.
    On the ordering key's shard, where every event of the key is emitted."""
    return f"{_shard(shard)}order:{endpoint_id}:{digest(ordering_key)}"


# ---- the control plane: one slot ---------------------------------------------------------


def tenant(name: str) -> str:
    return f"{CONTROL}tenant:{name}"


def tenant_subscription_counts(name: str) -> str:
    """Hash event type -> number of the tenant's enabled endpoints subscribed to it, and
    `~v`, its version: the truth, rebuilt with the endpoints it counts; each shard reads its
    copy (tenant_event_subscriptions), written after every rebuild."""
    return f"{CONTROL}tenant:{name}:subs"


# Hash tenant -> the version of its subscription counts whose copies may not all be
# written yet (a role died between the rebuild and the copies): the dispatcher's sweeper
# writes them again (store/endpoints.py).
SUBSCRIPTION_COPIES_PENDING = CONTROL + "subs-pending"


def tenant_endpoints(name: str) -> str:
    return f"{CONTROL}tenant:{name}:endpoints"


def tenant_schedules(name: str) -> str:
    """Set of the tenant's schedule ids: small (ACCEPTD_MAX_SCHEDULES_PER_TENANT), so its
    cap is counted in one place; each record lives on its own shard."""
    return f"{CONTROL}tenant:{name}:schedules"


def tenant_api_keys(name: str) -> str:
    """Hash key id -> the key's name, scope, digest and creation time (never the key)."""
    return f"{CONTROL}tenant:{name}:apikeys"


def tenant_api_keys_used(name: str) -> str:
    """Hash key id -> when it was last used (ms)."""
    return f"{CONTROL}tenant:{name}:apikeys:used"


def api_key(raw_key: str) -> str:
    # Only a digest of the key is ever stored; API keys are 256-bit random, so a fast hash suffices.
    return api_key_by_digest(digest(raw_key))


def api_key_by_digest(key_digest: str) -> str:
    return f"{CONTROL}apikey:{key_digest}"


def rate_limit(tenant_name: str) -> str:
    return f"{CONTROL}ratelimit:{tenant_name}"


def test_event_limit(sender: str) -> str:
    """A tenant's test-event bucket, or one of its portal sessions' (`tenant:session id`)."""
    return f"{CONTROL}ratelimit:tests:{sender}"


def address_rate_limit(address: str) -> str:
    # Tenant names have no ':', so no tenant's bucket can be an address's.
    return f"{CONTROL}ratelimit:addr:{digest(address)}"


def auth_failures(address: str) -> str:
    """Failed API-key attempts from one client address in the current minute."""
    return f"{CONTROL}authfail:{digest(address)}"


def endpoint(endpoint_id: str) -> str:
    return f"{CONTROL}endpoint:{endpoint_id}"


def endpoint_window(endpoint_id: str) -> str:
    """Sends to a rate-limited endpoint in the last second (store/throttle.py)."""
    return f"{CONTROL}endpoint:{endpoint_id}:window"


def endpoint_waiting(endpoint_id: str) -> str:
    """Deliveries to a rate-limited endpoint held back, with when each began to wait."""
    return f"{CONTROL}endpoint:{endpoint_id}:waiting"


def portal_link(token: str) -> str:
    # Only a digest of the one-time token is stored, like an API key's.
    return f"{CONTROL}portal-link:{digest(token)}"


def tenant_portal_links(name: str) -> str:
    """Sorted set of the digests of the tenant's unused portal links, by expiry: what caps
    how many it holds at once (store/portal.py)."""
    return f"{CONTROL}tenant:{name}:portal-links"


def tenant_portal_sessions(name: str) -> str:
    """Hash session id -> the session's scope, times, minting key and the digest of its
    bearer token (never the token): what lists and revokes the tenant's portal sessions."""
    return f"{CONTROL}tenant:{name}:portal-sessions"


# Heartbeats of workers and dispatchers (sorted set: member = role:host:pid, score = ms).
PROCESSES = CONTROL + "processes"


# arq's (arq.constants): the payload of a queued arq job, and the marker of its run. The
# arq job id (a job id, `dlv_…:n`, `recover:rcv_…`) names a shard; its keys carry that
# shard's tag between arq's prefix and the id, so they share the slot of the shard's queue.
ARQ_JOB_PREFIX = "arq:job:"
ARQ_IN_PROGRESS_PREFIX = "arq:in-progress:"


def arq_job(arq_job_id: str) -> str:
    return f"{ARQ_JOB_PREFIX}{shard_tag(ids.shard_of(arq_job_id))}{arq_job_id}"


def arq_in_progress(arq_job_id: str) -> str:
    return f"{ARQ_IN_PROGRESS_PREFIX}{shard_tag(ids.shard_of(arq_job_id))}{arq_job_id}"

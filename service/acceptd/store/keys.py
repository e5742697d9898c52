"""Every Redis key acceptd uses, and nothing else spells one out.

All keys share one prefix so an operator can tell them apart from other tenants of a
shared Redis. arq's own keys keep arq's prefixes, spelled here too (the store's scripts
write arq's job key with the record it runs): tests/unit/test_arq_seams.py holds them
against arq.constants, and queue/arqseams.py says what else of arq we rely on.
"""

from __future__ import annotations

import hashlib

PREFIX = "acceptd:"

JOB_QUEUE = PREFIX + "queue:jobs"
WEBHOOK_QUEUE = PREFIX + "queue:webhooks"
SCHEDULED_JOBS = PREFIX + "scheduled"
# Jobs in awaiting_input, scored by the deadline of their completion token.
AWAITING_INPUT = PREFIX + "awaiting"
EVENTS_STREAM = PREFIX + "events"
EVENTS_GROUP = "dispatchers"
TENANTS = PREFIX + "tenants"
DELIVERIES_DUE = PREFIX + "deliveries:due"
# Deliveries whose first attempt a dispatcher is sending inline, scored by when its lease
# lapses (dispatcher/inline.py).
INLINE_LEASES = PREFIX + "leases:inline-deliveries"
# Pub/sub channels: a message means "new work is due now" (polling is only the fallback).
JOBS_WAKEUP = PREFIX + "wakeup:jobs"
# Told when a job is scheduled: workers sleep until the earliest due time otherwise.
SCHEDULED_WAKEUP = PREFIX + "wakeup:scheduled"
WEBHOOKS_WAKEUP = PREFIX + "wakeup:webhooks"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def job(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def job_changes(job_id: str) -> str:
    """Pub/sub channel told of every status or progress change of the job."""
    return f"{job(job_id)}:changes"


def batch(batch_id: str) -> str:
    """Hash of the batch with its counts per status (the status scripts check that the key
    they are given ends in the job's `batch` field)."""
    return f"{PREFIX}batch:{batch_id}"


def batch_jobs(batch_id: str) -> str:
    """Sorted set of the batch's job ids, like tenant_jobs (expired with the batch)."""
    return f"{batch(batch_id)}:jobs"


def tenant(name: str) -> str:
    return f"{PREFIX}tenant:{name}"


def tenant_jobs(name: str) -> str:
    """Sorted set of the tenant's job ids (all scores 0, ordered by id = by creation time)."""
    return f"{PREFIX}tenant:{name}:jobs"


def tenant_usage(name: str) -> str:
    """Hash of the bytes the tenant stores (store/usage.py): field `bytes`, the total, and one
    field per retained job or batch id, what that record and its webhook bodies added to it
    (subtracted when the index trim finds them gone)."""
    return f"{PREFIX}tenant:{name}:usage"


def tenant_batches(name: str) -> str:
    """Sorted set of the tenant's batch ids, ordered like tenant_jobs."""
    return f"{PREFIX}tenant:{name}:batches"


def tenant_event_subscriptions(name: str) -> str:
    """Hash event type -> number of the tenant's enabled endpoints subscribed to it."""
    return f"{PREFIX}tenant:{name}:subs"


def tenant_endpoints(name: str) -> str:
    return f"{PREFIX}tenant:{name}:endpoints"


def tenant_api_keys(name: str) -> str:
    """Hash key id -> the key's name, scope, digest and creation time (never the key)."""
    return f"{PREFIX}tenant:{name}:apikeys"


def tenant_api_keys_used(name: str) -> str:
    """Hash key id -> when it was last used (ms)."""
    return f"{PREFIX}tenant:{name}:apikeys:used"


def api_key(raw_key: str) -> str:
    # Only a digest of the key is ever stored; API keys are 256-bit random, so a fast hash suffices.
    return api_key_by_digest(digest(raw_key))


def api_key_by_digest(key_digest: str) -> str:
    return f"{PREFIX}apikey:{key_digest}"


def idempotency(tenant_name: str, idempotency_key: str) -> str:
    return f"{PREFIX}idem:{tenant_name}:{digest(idempotency_key)}"


def rate_limit(tenant_name: str) -> str:
    return f"{PREFIX}ratelimit:{tenant_name}"


def test_event_limit(sender: str) -> str:
    """A tenant's test-event bucket, or one of its portal sessions' (`tenant:session id`)."""
    return f"{PREFIX}ratelimit:tests:{sender}"


def address_rate_limit(address: str) -> str:
    # Tenant names have no ':', so no tenant's bucket can be an address's.
    return f"{PREFIX}ratelimit:addr:{digest(address)}"


def auth_failures(address: str) -> str:
    """Failed API-key attempts from one client address in the current minute."""
    return f"{PREFIX}authfail:{digest(address)}"


def endpoint(endpoint_id: str) -> str:
    return f"{PREFIX}endpoint:{endpoint_id}"


def delivery(delivery_id: str) -> str:
    return f"{PREFIX}delivery:{delivery_id}"


def webhook_bodies(subject_id: str) -> str:
    """Hash of the webhook bodies of a job's (or a batch's) events, one field per (event,
    shape), shared by every delivery of it; field `p` counts its pending deliveries (it
    expires a retention after the last one ends)."""
    return f"{PREFIX}job:{subject_id}:bodies"


def delivery_attempts(delivery_id: str) -> str:
    return f"{PREFIX}delivery:{delivery_id}:attempts"


def job_deliveries(subject_id: str) -> str:
    """Deliveries of a job's events, or of a batch's (the subject is then the batch id)."""
    return f"{PREFIX}job:{subject_id}:deliveries"


def tenant_deliveries(name: str) -> str:
    """Every delivery of the tenant, by id (ids sort by time): the console's per-minute counts."""
    return f"{PREFIX}tenant:{name}:deliveries"


def endpoint_deliveries(endpoint_id: str) -> str:
    """The deliveries to one endpoint, by id: its page in the console and its health figures."""
    return f"{PREFIX}endpoint:{endpoint_id}:deliveries"


def endpoint_window(endpoint_id: str) -> str:
    """Sends to a rate-limited endpoint in the last second (store/throttle.py)."""
    return f"{PREFIX}endpoint:{endpoint_id}:window"


def endpoint_waiting(endpoint_id: str) -> str:
    """Deliveries to a rate-limited endpoint held back, with when each began to wait."""
    return f"{PREFIX}endpoint:{endpoint_id}:waiting"


def recovery(recovery_id: str) -> str:
    return f"{PREFIX}recovery:{recovery_id}"


def order_queue(endpoint_id: str, ordering_key: str) -> str:
    """The deliveries of one ordering key to one ordered endpoint, in emit order (sorted set,
    member = padded stream id|delivery id): the head is the one that may be in flight."""
    return f"{PREFIX}order:{endpoint_id}:{digest(ordering_key)}"


# The order queues that hold deliveries (a sweeper starts heads whose turn came).
ORDER_QUEUES = PREFIX + "order-queues"


def portal_link(token: str) -> str:
    # Only a digest of the one-time token is stored, like an API key's.
    return f"{PREFIX}portal-link:{digest(token)}"


def tenant_portal_links(name: str) -> str:
    """Sorted set of the digests of the tenant's unused portal links, by expiry: what caps
    how many it holds at once (store/portal.py)."""
    return f"{PREFIX}tenant:{name}:portal-links"


def tenant_portal_sessions(name: str) -> str:
    """Hash session id -> the session's scope, times, minting key and the digest of its
    bearer token (never the token): what lists and revokes the tenant's portal sessions."""
    return f"{PREFIX}tenant:{name}:portal-sessions"


# A counter the API increments after acknowledged writes and waits for with WAIT/WAITAOF
# (store/durability.py): the wait confirms every write before it in the primary's stream.
DURABILITY_MARK = PREFIX + "durability-mark"

# Heartbeats of workers and dispatchers (sorted set: member = role:host:pid, score = ms).
PROCESSES = PREFIX + "processes"


# arq's (arq.constants): the payload of a queued arq job, and the marker of its run.
ARQ_JOB_PREFIX = "arq:job:"
ARQ_IN_PROGRESS_PREFIX = "arq:in-progress:"


def arq_job(arq_job_id: str) -> str:
    return ARQ_JOB_PREFIX + arq_job_id


def arq_in_progress(arq_job_id: str) -> str:
    return ARQ_IN_PROGRESS_PREFIX + arq_job_id

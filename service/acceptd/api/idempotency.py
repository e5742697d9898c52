"""Idempotency-Key handling shared by the create routes (jobs, batches): the first request
with a key holds it while it runs; a retry of it gets what it created; another body, 422."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from aiohttp import web

from acceptd.api import state
from acceptd.api.problems import BadRequest, IdempotencyInProgress, IdempotencyKeyReused
from acceptd.store import keys
from acceptd.store.idempotency import HeldKey
from acceptd.store.outages import StoreUnavailable

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY_MAX = 255
# How long a first request holds its Idempotency-Key before a crash would free it again: a
# retry waits that long at most. Short is safe: a request whose claim lapsed creates
# nothing (store/idempotency.py), so a retry that claims the key after it cannot double it.
IDEMPOTENCY_LOCK_SECONDS = 10


def _fingerprint(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _header(request: web.Request) -> str | None:
    value = request.headers.get("Idempotency-Key")
    if value is None:
        return None
    if not 1 <= len(value) <= IDEMPOTENCY_KEY_MAX or not value.isprintable() or not value.isascii():
        raise BadRequest(
            f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} printable ASCII characters"
        )
    return value


async def claim(
    request: web.Request, raw_body: Any, scope: str = "", concurrency_key: str | None = None
) -> tuple[HeldKey | None, str | None]:
    """(the key now held, or None when the request has none; the id of what an earlier
    identical request created, or None). `scope` keeps one route's keys apart from another's;
    `concurrency_key` is the job's own (the submit's, or its type's default)."""
    header = _header(request)
    if header is None:
        return None, None
    tenant: str = request[state.TENANT]
    ordering_key = raw_body.get("ordering_key") if isinstance(raw_body, dict) else None
    # Where the create will land (store/placement.py), so it writes the claim's 'done' there.
    shard = await request.app[state.JOBS].shard_for(
        tenant,
        ordering_key if isinstance(ordering_key, str) else None,
        concurrency_key,
        idempotency=scope + header,
    )
    redis_key = keys.idempotency(tenant, scope + header, shard)
    fingerprint = _fingerprint(raw_body)
    outcome, found = await request.app[state.IDEMPOTENCY].claim(
        redis_key, fingerprint, IDEMPOTENCY_LOCK_SECONDS
    )
    if outcome == "mismatch":
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different request body")
    if outcome == "busy":
        raise IdempotencyInProgress(
            "the first request with this Idempotency-Key is still being handled; retry shortly",
            headers={"Retry-After": "1"},
        )
    if outcome == "done" and found:
        return None, found
    assert found is not None  # claimed: the claim's value
    ttl = request.app[state.SETTINGS].idempotency_ttl_seconds
    return HeldKey(redis_key, fingerprint, ttl, shard, found), None


async def release(request: web.Request, held: HeldKey | None) -> None:
    """A request that failed must not keep its key: the client's retry should run afresh."""
    if held is None:
        return
    try:
        await request.app[state.IDEMPOTENCY].release(held.redis_key, held.claim)
    except StoreUnavailable as exc:
        # The store is down as we give the key back: it frees itself after its lock time.
        log.warning("could not release an Idempotency-Key (%s)", exc.reason)

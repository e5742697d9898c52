"""Idempotency-Key records, one format for jobs and batches.

A key's value is 'P <fingerprint> <token>' while the first request with it is handled, and
'D <fingerprint> <id of what it created>' after (lua/idem_claim.lua reads the same format).
The 'D' value is written by the create step itself (submit.lua, the batch transaction), so
what a request created and the memory of having created it never split; and only while the
key still holds the request's own claim (its token): a request whose claim lapsed (a store
failing over, a slow create) creates nothing, so the retry that claimed the key after it
cannot make the job a second time, and the claim can be short."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from acceptd.store.outages import StoreUnavailable
from acceptd.store.scriptcalls import IdemClaim, IdemRelease
from acceptd.store.scripts import Scripts

IdempotencyClaim = Literal["claimed", "mismatch", "busy", "done"]


@dataclass(frozen=True)
class HeldKey:
    """An Idempotency-Key a request holds; the create step stores it with what it made."""

    redis_key: str
    fingerprint: str
    ttl_seconds: int
    # The shard of the key record, where the create step writes what it made
    # (store/placement.py).
    shard: int
    # The key's value while this request holds it ('P <fingerprint> <token>').
    claim: str

    def done_value(self, created_id: str) -> str:
        return f"D {self.fingerprint} {created_id}"

    @property
    def ttl_ms(self) -> int:
        return self.ttl_seconds * 1000


class ClaimLapsedError(StoreUnavailable):
    """The request's claim on its Idempotency-Key lapsed before its create step: nothing
    was created, and the key may be a retry's now. An outage to retry, with the same key."""

    def __init__(self) -> None:
        super().__init__("the claim on the Idempotency-Key lapsed before the create step")


class IdempotencyStore:
    def __init__(self, scripts: Scripts) -> None:
        self._scripts = scripts

    async def claim(
        self, redis_key: str, fingerprint: str, lock_seconds: int
    ) -> tuple[IdempotencyClaim, str | None]:
        """('claimed', the value of the claim) for a first request, which now holds the key
        for `lock_seconds`; ('done', id) for a repeat of a finished one; 'busy' or
        'mismatch' otherwise."""
        token = secrets.token_hex(8)
        reply = await self._scripts.idem_claim(
            IdemClaim(
                idempotency_key=redis_key,
                fingerprint=fingerprint,
                lock_ms=lock_seconds * 1000,
                token=token,
            )
        )
        outcome: IdempotencyClaim = reply[0]
        if outcome == "claimed":
            return outcome, f"P {fingerprint} {token}"
        return outcome, (reply[1] if len(reply) > 1 else None)

    async def release(self, redis_key: str, claim: str) -> None:
        """Drops the claim `claim` (and only it: not a retry's, not a finished key)."""
        await self._scripts.idem_release(IdemRelease(idempotency_key=redis_key, claim=claim))

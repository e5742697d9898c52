"""Idempotency-Key records, one format for jobs and batches.

A key's value is 'P <fingerprint>' while the first request with it is handled, and
'D <fingerprint> <id of what it created>' after (lua/idem_claim.lua reads the same format).
The 'D' value is written by the create step itself (submit.lua, the batch transaction), so
what a request created and the memory of having created it never split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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

    def done_value(self, created_id: str) -> str:
        return f"D {self.fingerprint} {created_id}"

    @property
    def ttl_ms(self) -> int:
        return self.ttl_seconds * 1000


class IdempotencyStore:
    def __init__(self, scripts: Scripts) -> None:
        self._scripts = scripts

    async def claim(
        self, redis_key: str, fingerprint: str, lock_seconds: int
    ) -> tuple[IdempotencyClaim, str | None]:
        """('claimed', None) for a first request, which now holds the key for `lock_seconds`;
        ('done', id) for a repeat of a finished one; 'busy' or 'mismatch' otherwise."""
        reply = await self._scripts.idem_claim(
            keys=[redis_key], args=[fingerprint, lock_seconds * 1000]
        )
        outcome: IdempotencyClaim = reply[0]
        return outcome, (reply[1] if len(reply) > 1 else None)

    async def release(self, redis_key: str, fingerprint: str) -> None:
        await self._scripts.idem_release(keys=[redis_key], args=[fingerprint])

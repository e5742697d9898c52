"""When a write the API acknowledges counts as written: ACCEPTD_DURABILITY.

`memory`: once Redis holds it (a crash or failover can lose the last second or so).
`fsync`: once the primary has fsynced it to its append-only file (`WAITAOF 1 0`).
`replica`: once at least one replica holds it (`WAIT 1`), so losing the primary loses it not.

WAIT and WAITAOF count the writes of the connection they are sent on, so a confirmed write
goes out on a connection of its own, and the wait follows it there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from redis.asyncio import Redis
from redis.exceptions import ResponseError

DurabilityLevel = Literal["memory", "fsync", "replica"]


class NotDurableError(Exception):
    """The write was made but not confirmed at the asked level in time: it may survive or
    not. The client retries with its Idempotency-Key and gets the same job either way."""

    def __init__(self, level: DurabilityLevel, reason: str) -> None:
        super().__init__(f"not confirmed at ACCEPTD_DURABILITY={level}: {reason}")
        self.level = level
        self.reason = reason


class Durability:
    def __init__(self, redis: Redis, level: DurabilityLevel, timeout_ms: int) -> None:
        self.level = level
        self._redis = redis
        self._timeout_ms = timeout_ms

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[Redis | None]:
        """The client to make an acknowledged write with: None (the shared pool) when
        nothing is confirmed, else a connection of its own, confirmed once the block ends
        without an error (NotDurableError if it is not, in time)."""
        if self.level == "memory":
            yield None
            return
        async with self._redis.client() as connection:
            yield connection
            await self._confirm(connection)

    async def _confirm(self, connection: Redis) -> None:
        try:
            if self.level == "fsync":
                local, _replicas = await connection.waitaof(1, 0, self._timeout_ms)
                if int(local) < 1:
                    raise NotDurableError(self.level, "the primary has not fsynced it yet")
            else:
                replicas = await connection.wait(1, self._timeout_ms)
                if int(replicas) < 1:
                    raise NotDurableError(self.level, "no replica has confirmed it yet")
        except ResponseError as exc:  # appendonly off, WAIT refused by a proxy, …
            raise NotDurableError(self.level, str(exc)) from exc

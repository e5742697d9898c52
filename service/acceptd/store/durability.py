"""When a write the API acknowledges counts as written: ACCEPTD_DURABILITY.

`memory`: once Redis holds it (a crash can lose the last second of the append-only file, a
failover whatever the replica had not received yet).
`fsync`: once the primary has fsynced it to its append-only file (`WAITAOF 1 0`).
`replica`: once at least one replica holds it (`WAIT 1`): losing the primary loses it not.

WAIT and WAITAOF wait for the writes of the connection they are sent on. A primary writes
one replication stream in order, so a mark written after the writes to confirm, on any
connection to the same server, and waited for there, confirms them too: scripts,
transactions and pipelines alike, without pinning each request's writes to a connection of
their own. "The same server" is why the mark goes out on a client that never retries: a
retry after a dropped connection may reach the replica promoted meanwhile, which never got
the write, and confirm it there (the red team's fourth round). A dropped connection is an
outage instead, and the client's retry under its Idempotency-Key finds out what survived."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from redis.exceptions import ResponseError

from acceptd.core import ids
from acceptd.core.settings import DurabilityLevel
from acceptd.store import keys
from acceptd.store.shards import Shards


class NotDurableError(Exception):
    """The write was made but not confirmed at the asked level in time: it may survive a
    crash or a failover, or not. A retry with the same Idempotency-Key gets the same job."""

    def __init__(self, level: DurabilityLevel, reason: str) -> None:
        super().__init__(f"not confirmed at ACCEPTD_DURABILITY={level}: {reason}")
        self.level = level
        self.reason = reason


class Durability:
    """`shards`: clients that do not retry (store.connection.connect(retries=0))."""

    def __init__(self, shards: Shards, level: DurabilityLevel, timeout_ms: int) -> None:
        self.level = level
        self._shards = shards
        self._timeout_ms = timeout_ms

    async def confirm(self, record_id: str, part_shards: Sequence[int] = ()) -> None:
        """Returns once every write this process has seen answered on the shard of
        `record_id` (a job's, a batch's) is held as the level asks; NotDurableError when it
        is not within the timeout. One round trip (the mark and the wait, pipelined, on the
        primary that holds the shard), none at `memory`. The wait asks the node that
        holds the record: one that lacks it (a primary promoted since the write, before its
        replica had it) is not taken for a confirmation. A batch over many shards names
        the other shards of its parts (`part_shards`): each is confirmed too, at once."""
        if self.level == "memory":
            return
        shard = ids.shard_of(record_id)
        if not record_id.startswith("bat_"):
            await self._confirm(shard, keys.job(record_id))
            return
        await asyncio.gather(
            self._confirm(shard, keys.batch(record_id)),
            *(self._confirm(part, keys.batch_part(record_id, part)) for part in part_shards),
        )

    async def _confirm(self, shard: int, record: str) -> None:
        try:
            async with self._shards.of(shard).pipeline(transaction=False) as pipe:
                pipe.exists(record)
                pipe.incr(keys.durability_mark(shard))
                if self.level == "fsync":
                    pipe.waitaof(1, 0, self._timeout_ms)
                else:
                    pipe.wait(1, self._timeout_ms)
                held, _, confirmed = await pipe.execute()
        except ResponseError as exc:  # appendonly off for fsync, WAIT refused by a proxy, …
            raise NotDurableError(self.level, str(exc)) from exc
        if not held:
            raise NotDurableError(self.level, "the node that answered does not hold the write")
        if self.level == "fsync" and int(confirmed[0]) < 1:
            raise NotDurableError(self.level, "the primary has not fsynced it in time")
        if self.level == "replica" and int(confirmed) < 1:
            raise NotDurableError(self.level, "no replica has confirmed it in time")

"""Which workers and dispatchers are alive: each beats every few seconds into one sorted set
(member role:host:pid, score the time), so the console can show them without a registry."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from redis.asyncio import Redis

from acceptd.core.clock import now_ms
from acceptd.store import keys

BEAT_EVERY_SECONDS = 5.0
# Silent this long: shown as gone. Longer than two missed beats, so a busy loop is not death.
ALIVE_WITHIN_MS = 15_000
# Silent this long: forgotten.
FORGET_AFTER_MS = 3_600_000


def process_name(role: str) -> str:
    return f"{role}:{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class ProcessBeat:
    role: str
    name: str
    last_seen_ms: int

    @property
    def alive(self) -> bool:
        return now_ms() - self.last_seen_ms < ALIVE_WITHIN_MS


class Processes:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def beat(self, name: str) -> None:
        now = now_ms()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.PROCESSES, {name: now})
            pipe.zremrangebyscore(keys.PROCESSES, "-inf", now - FORGET_AFTER_MS)
            await pipe.execute()

    async def seen(self) -> list[ProcessBeat]:
        found: list[tuple[str, float]] = await self._redis.zrange(
            keys.PROCESSES, 0, -1, withscores=True
        )
        return [ProcessBeat(name.partition(":")[0], name, int(score)) for name, score in found]

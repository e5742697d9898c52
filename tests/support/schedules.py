"""Recurring schedules in tests: a tick made due now, without waiting for the clock."""

from __future__ import annotations

from acceptd.core import ids
from acceptd.core.clock import now_ms
from acceptd.store import keys
from acceptd.store.layouts import ScheduleField
from acceptd.store.shards import Shards


async def make_due(shards: Shards, schedule_id: str, at_ms: int | None = None) -> int:
    """Moves the schedule's next tick to `at_ms` (default: now), in its record and in the
    due index, as if that tick had come (or had been missed while nothing ran); wakes the
    workers. Returns the tick. A deleted schedule gets its index entry back only (what a
    worker may still find there), not a record."""
    tick = now_ms() if at_ms is None else at_ms
    record = keys.schedule(schedule_id)
    shard = ids.shard_of(schedule_id)
    client = shards.for_key(record)
    if await client.exists(record):
        await client.hset(record, ScheduleField.NEXT_TICK, str(tick))  # type: ignore[misc]
    await client.zadd(keys.schedules_due(shard), {schedule_id: tick})
    await client.spublish(keys.wakeup(keys.SCHEDULED_WAKEUP, shard), "1")
    return tick

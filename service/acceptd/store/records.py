"""Reads shared by the stores whose records are hashes listed in a lexically ordered index
(jobs, batches): pages of ids newest first, and many records in one round trip."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
from collections.abc import Callable

from acceptd.core import ids as ids_module
from acceptd.core.clock import now_ms
from acceptd.store import keys
from acceptd.store.scriptcalls import Forget
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards


def _bounds(before: str | None, at_least: str | None) -> tuple[str, str]:
    return (f"({before}" if before else "+"), (f"[{at_least}" if at_least else "-")


async def newest_ids(
    shards: Shards,
    index: str,
    before: str | None,
    count: int,
    *,
    at_least: str | None = None,
) -> list[str]:
    """Ids in `index` (sorted set, all scores 0, ids sort by time), newest first, strictly
    older than `before` and not older than `at_least`."""
    upper, lower = _bounds(before, at_least)
    found: list[str] = await shards.for_key(index).zrevrangebylex(
        index, upper, lower, start=0, num=count
    )
    return found


async def newest_ids_across(
    shards: Shards,
    index: Callable[[int], str],
    before: str | None,
    count: int,
    *,
    at_least: str | None = None,
) -> list[str]:
    """`newest_ids` of an index kept per shard (`index(shard)`): the newest `count` of all
    shards, merged by id. Every record is filed on one shard, so each is listed once, and
    a cursor (`before`) is an id whatever shard it came from.

    Each shard is first asked for its share and some (`_first_share`), not for `count`:
    with S shards that is about 1.5 times `count` ids read, not S times `count`. A shard that may
    hold more of the newest `count` than it gave (it gave all it was asked, and its oldest
    is newer than the `count`-th merged) is asked again, twice as many, until none may:
    one round trip when a tenant's records spread evenly, a few when they do not."""
    upper, lower = _bounds(before, at_least)
    if shards.count == 1:
        return await newest_ids(shards, index(0), before, count, at_least=at_least)
    asked = dict.fromkeys(range(shards.count), _first_share(count, shards.count))
    uppers = dict.fromkeys(range(shards.count), upper)
    found: dict[int, list[str]] = {shard: [] for shard in range(shards.count)}
    wanted = list(range(shards.count))
    merged: list[str] = []
    for _round in range(MAX_MERGE_ROUNDS):
        replies = await shards.across(
            lambda pipe, shard: pipe.zrevrangebylex(
                index(shard), uppers[shard], lower, start=0, num=asked[shard]
            ),
            wanted,
        )
        more: list[int] = []
        for shard, (got,) in zip(sorted(wanted), replies, strict=True):
            found[shard] += got
            if len(got) == asked[shard]:  # there may be more
                more.append(shard)
                uppers[shard] = "(" + got[-1]
        merged = list(itertools.islice(heapq.merge(*found.values(), reverse=True), count))
        wanted = [shard for shard in more if len(merged) < count or found[shard][-1] > merged[-1]]
        if not wanted:
            return merged
        for shard in wanted:
            asked[shard] = min(count, asked[shard] * 2)
    return merged  # not reached: each round at least doubles what a blocking shard gave


# Rounds of newest_ids_across: asking twice as many each time, a shard gives `count` ids
# in fewer than this from its first share.
MAX_MERGE_ROUNDS = 24


def _first_share(count: int, shards: int) -> int:
    """What each of `shards` shards is first asked for: its even share of `count` and half
    again, plus a few (a random spread is uneven), at most `count`."""
    return min(count, -(-count * 3 // (2 * shards)) + 4)


async def hashes(shards: Shards, record_keys: list[str]) -> list[dict[str, str]]:
    """HGETALL of each key, pipelined per node; {} for a key that does not exist."""
    found = await shards.pipelined(record_keys, lambda pipe, i: pipe.hgetall(record_keys[i]))
    return [reply for (reply,) in found]


# One write in this many trims its tenant's index a step. Only entries older than the
# retention are looked at (no record can have expired sooner), so an index whose records
# all live costs one ZRANGEBYLEX per TRIM_EVERY writes, and one past the retention about
# one EXISTS per record that expired.
TRIM_EVERY = 32
TRIM_BATCH = 64


async def forget(
    scripts: Scripts,
    index: str,
    ids: list[str],
    record_key: Callable[[str], str],
    usage: str | None = None,
) -> int:
    """Drops the entries of `index` whose records (and their webhook bodies) are gone, and,
    given the tenant's `usage` hash, subtracts what each had added to it (lua/forget.lua
    checks that they are gone: a caller's stale read never drops a live one). Returns how
    many were dropped."""
    if not ids:
        return 0
    call = Forget(
        index=index,
        usage=usage or index,
        records_and_bodies=[(record_key(i), keys.webhook_bodies(i)) for i in ids],
        subtract="1" if usage else "0",
        entry_ids=ids,
    )
    dropped: int = await scripts.forget(call)
    return dropped


async def forget_across(
    scripts: Scripts,
    index: Callable[[int], str],
    ids: list[str],
    record_key: Callable[[str], str],
    usage: Callable[[int], str] | None = None,
) -> None:
    """`forget` for an index kept per shard (`index(shard)`, with its usage hash
    `usage(shard)` if any): each id from the index of the shard it names."""
    by_shard: dict[int, list[str]] = {}
    for found_id in ids:
        by_shard.setdefault(ids_module.shard_of(found_id), []).append(found_id)
    for shard, its_ids in by_shard.items():
        await forget(scripts, index(shard), its_ids, record_key, usage(shard) if usage else None)


class IndexTrimmer:
    """Drops index entries whose records expired, a window at a time, as writes happen
    (not only when a page is read). The window walks the whole index and starts over, so
    records that never expire (unfinished jobs) cannot stall it."""

    def __init__(self, shards: Shards, retention_ms: int, scripts: Scripts | None = None) -> None:
        self._shards = shards
        self._scripts = scripts or Scripts(shards)
        self._retention_ms = retention_ms
        self._positions: dict[str, str] = {}  # index key -> last id examined
        self._running: asyncio.Task[int] | None = None

    async def maybe_trim(
        self,
        index: str,
        record_key: Callable[[str], str],
        prefix: str,
        usage: str | None = None,
        *,
        now: bool = False,
    ) -> None:
        """Now and then (`now`: this time), a window trimmed in the background: off the
        writer's latency, and at most one at a time per process, so a burst of writes
        cannot pile them up. A refused submit trims `now`: it writes nothing, yet its
        tenant's count must go down as its records expire."""
        if not now and random.random() >= 1 / TRIM_EVERY:  # noqa: S311 - sampling
            return
        if self._running is not None and not self._running.done():
            return
        self._running = asyncio.get_running_loop().create_task(
            self.trim(index, record_key, prefix, usage)
        )
        self._running.add_done_callback(_log_failure)

    async def idle(self) -> None:
        """Returns once no background trim runs."""
        if self._running is not None:
            await asyncio.wait([self._running])

    async def trim(
        self,
        index: str,
        record_key: Callable[[str], str],
        prefix: str,
        usage: str | None = None,
    ) -> int:
        """One window of `index` (of ids made with `prefix`); returns how many entries it
        dropped. With the tenant's `usage` hash, their bytes are subtracted from it."""
        after = self._positions.pop(index, None)
        lower = f"({after}" if after else "-"
        upper = "(" + ids_module.id_at(prefix, now_ms() - self._retention_ms)
        ids: list[str] = await self._shards.for_key(index).zrangebylex(
            index, lower, upper, start=0, num=TRIM_BATCH
        )
        if not ids:
            return 0
        if len(ids) == TRIM_BATCH:
            if len(self._positions) > 100_000:
                self._positions.clear()
            self._positions[index] = ids[-1]
        return await forget(self._scripts, index, ids, record_key, usage)


log = logging.getLogger(__name__)


def _log_failure(task: asyncio.Task[int]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("index trim failed (the next one retries)", exc_info=task.exception())

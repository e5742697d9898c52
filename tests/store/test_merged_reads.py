"""A read across shards asks each shard for its share, not for the whole page: the newest
`count` of every shard merged are exact whatever the spread, and an even spread costs
about 1.5 times the page in ids read, not S times (what makes a tenant-wide list or count
cost the same with 16 shards as with one)."""

from __future__ import annotations

import random

import pytest
from redis.asyncio import Redis

from acceptd.core import ids
from acceptd.store import keys, records
from acceptd.store.shards import Shards
from tests.support.sharded import output_bytes, servers

TENANT = "merge"


def index(shard: int) -> str:
    return keys.tenant_jobs(TENANT, shard)


async def file_ids(three: Shards, shard_of: list[int]) -> list[str]:
    """An id for each entry of `shard_of`, made in that order on that shard; all of them,
    newest first."""
    made = [ids.new_id("job", shard) for shard in shard_of]
    for shard in range(three.count):
        mine = [job_id for job_id in made if ids.shard_of(job_id) == shard]
        for start in range(0, len(mine), 1000):
            await three.of(shard).zadd(index(shard), dict.fromkeys(mine[start : start + 1000], 0))
    return sorted(made, reverse=True)


SPREADS = {
    "even": lambda n: [i % 3 for i in range(n)],
    "random": lambda n: [random.randrange(3) for _ in range(n)],
    # The newest half on one shard, the rest on another: one shard gives far more than its
    # share of every page.
    "skewed": lambda n: [1] * (n // 2) + [2] * (n - n // 2),
    "one shard": lambda n: [0] * n,
}


@pytest.mark.parametrize("spread", list(SPREADS))
async def test_every_page_is_exact_whatever_the_spread(three: Shards, spread: str) -> None:
    every = await file_ids(three, SPREADS[spread](600))
    newest_first = every  # ids sort by time: `every` is the order every page must follow
    for count in (1, 7, 100, 599, 600, 1000):
        assert await records.newest_ids_across(three, index, None, count) == newest_first[:count]
    # Walking with a cursor, and within bounds.
    walked: list[str] = []
    cursor = None
    while page := await records.newest_ids_across(three, index, cursor, 37):
        walked += page
        cursor = page[-1]
    assert walked == newest_first
    lower = newest_first[400]
    bounded = await records.newest_ids_across(three, index, newest_first[99], 1000, at_least=lower)
    assert bounded == newest_first[100:401]


async def read_bytes(nodes: list[Redis], three: Shards, count: int) -> tuple[list[str], int]:
    before = await output_bytes(nodes)
    found = await records.newest_ids_across(three, index, None, count)
    return found, await output_bytes(nodes) - before


async def test_an_even_spread_reads_about_one_and_a_half_pages_not_one_per_shard(
    three: Shards,
) -> None:
    every = await file_ids(three, SPREADS["even"](9000))
    nodes = await servers(three)
    found, spent = await read_bytes(nodes, three, 3000)
    assert found == every[:3000]
    one_id = len(every[0]) + 7  # and RESP's framing: $30\r\n…\r\n
    assert spent < 1.6 * 3000 * one_id + 5000  # every shard's share and half again
    assert spent > 3000 * one_id  # (the page itself was read, at least)

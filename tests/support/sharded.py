"""Reading what the store keeps per shard, as a test needs it: every shard's, summed or merged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from acceptd.store import keys
from acceptd.store.shards import Shards
from tests.support.constants import TEST_SHARDS


async def summed(shards: Shards, command: Callable[[Pipeline, int], Any]) -> int:
    """`command(pipe, shard)` (one that counts) on every shard, the counts added up."""
    replies = await shards.across(command)
    return sum(int(reply or 0) for (reply,) in replies)


async def merged(shards: Shards, command: Callable[[Pipeline, int], Any]) -> list[Any]:
    """`command(pipe, shard)` (one that lists) on every shard, the lists concatenated."""
    replies = await shards.across(command)
    return [item for (found,) in replies for item in found]


# A test of a tenant-wide limit held exactly: true with one shard only. With more, each
# shard admits its share (JobStore.shard_share), which tests/store holds.
single_shard = pytest.mark.skipif(
    TEST_SHARDS > 1,
    reason="exact tenant-wide limits hold with one shard; per-shard shares are tested in "
    "tests/store",
)


def on_shard(shard: int, rest: str) -> str:
    """The key (or SCAN pattern) `rest` under a shard's prefix: `acceptd:{<tag>}:<rest>`."""
    return f"{keys.PREFIX}{keys.shard_tag(shard)}:{rest}"


async def scanned(shards: Shards, rest: str) -> list[str]:
    """Every key matching `on_shard(shard, rest)`, over every shard. Each shard's SCAN runs
    on its own client, so on a cluster it reaches the node that holds the shard; the
    pattern names the shard's tag, so a node (or one server) holding several shards lists
    each key once."""
    found: list[str] = []
    for shard in range(shards.count):
        found += [key async for key in shards.of(shard).scan_iter(match=on_shard(shard, rest))]
    return found


async def servers(shards: Shards) -> list[Redis]:
    """One client per server that holds a shard or the control plane: what a figure of
    the whole store (INFO) is summed over. Told apart by run_id, since a cluster has a
    client per tag, and several tags on one node."""
    by_server: dict[str, Redis] = {}
    for client in [shards.control, *(shards.of(shard) for shard in range(shards.count))]:
        by_server.setdefault(str((await client.info("server"))["run_id"]), client)
    return list(by_server.values())


async def output_bytes(nodes: list[Redis]) -> int:
    """The bytes these servers (`servers(shards)`, found once: finding them costs replies
    too) have sent to their clients so far (INFO stats)."""
    return sum([int((await node.info("stats"))["total_net_output_bytes"]) for node in nodes])

"""Reading what the store keeps per shard, as a test needs it: every shard's, summed or merged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio.client import Pipeline

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

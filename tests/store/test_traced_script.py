"""A script call on each kind of client it is given, after its server forgot the script (a
restart, a failover: NOSCRIPT): routed by its first key, on a client the caller chose (the
worker's pickup and finish), and in a pipeline (which loads its scripts before it runs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from redis.asyncio import Redis

from acceptd.store import keys
from acceptd.store.shards import Shards
from acceptd.store.tracedscript import TracedScript
from tests.store.test_batching import COUNTER_SCRIPT

KEY = "test:traced:{a}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Count:
    SCRIPT: ClassVar[str] = "tests/count.lua"
    KEYS: ClassVar[int] = 1
    counter: str
    by: int


def count_script(shards: Shards) -> TracedScript[Count]:
    return TracedScript(Count, shards.control.register_script(COUNTER_SCRIPT), shards)


async def test_a_routed_call_and_a_call_on_a_given_client_load_a_forgotten_script(
    shards: Shards, redis: Redis
) -> None:
    count = count_script(shards)
    assert await count(Count(counter=KEY, by=1)) == 1
    client = shards.for_key(KEY)
    await client.script_flush()
    assert await count(Count(counter=KEY, by=2)) == 3
    await client.script_flush()
    assert await count(Count(counter=KEY, by=3), client=client) == 6
    assert await redis.get(KEY) == "6"
    await redis.delete(KEY)


async def test_a_pipelined_call_has_its_pipeline_load_a_forgotten_script(
    shards: Shards, redis: Redis
) -> None:
    count = count_script(shards)
    client = shards.for_key(KEY)
    await client.script_flush()
    async with client.pipeline(transaction=False) as pipe:
        await count(Count(counter=KEY, by=4), client=pipe)
        await count(Count(counter=KEY, by=5), client=pipe)
        assert await pipe.execute() == [4, 9]
    await redis.delete(KEY)


async def test_a_script_without_shards_runs_on_the_client_it_was_registered_on(
    shards: Shards, redis: Redis
) -> None:
    # As the control plane's scripts (API keys, portal links) are.
    count = TracedScript(Count, shards.control.register_script(COUNTER_SCRIPT), None)
    await shards.control.script_flush()
    key = keys.CONTROL + "test:traced"  # on a cluster, in the control plane's slot
    assert await count(Count(counter=key, by=7)) == 7
    assert await redis.get(key) == "7"
    await redis.delete(key)

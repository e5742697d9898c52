"""The store's clients, found by the key they touch: one server or a cluster alike.

Every key carries a hash tag (store/keys.py): a shard's, or the control plane's. A caller
asks for the client of the key it touches (`for_key`), or of a shard (`of`), and every
script, transaction and pipeline it runs there touches that one tag's slot. On one server
(or a Sentinel-managed primary) every tag has the same client; on a cluster
(store/cluster.py) each tag's client reaches the primary that holds its slot.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from acceptd.store import keys
from acceptd.store.outages import StoreUnavailable

_TAG = re.compile(r"\{([^}]+)\}")


def tag_of(key: str) -> str:
    """The hash tag of a key, as the cluster reads it (the first `{…}` with something in
    it); every acceptd key has one."""
    match = _TAG.search(key)
    if match is None:
        raise ValueError(f"key {key!r} has no hash tag")
    return match.group(0)


class Shards:
    """What the store reaches Redis through. `count` is ACCEPTD_SHARDS."""

    def __init__(self, count: int) -> None:
        self.count = count

    def for_tag(self, tag: str) -> Redis:
        raise NotImplementedError

    @property
    def control(self) -> Redis:
        """The control plane's client (tenants, keys, endpoints, portal, rate limits), and
        the one pub/sub and server-wide commands go to."""
        return self.for_tag(tag_of(keys.CONTROL))

    def for_key(self, key: str) -> Redis:
        return self.for_tag(tag_of(key))

    def of(self, shard: int) -> Redis:
        return self.for_tag(keys.shard_tag(shard))

    async def across(
        self, commands: Callable[[Pipeline, int], object], shards: Sequence[int] | None = None
    ) -> list[list[Any]]:
        """Runs `commands(pipe, shard)` for every shard (or those named), one pipeline per
        client (transaction=False: each shard's commands touch that shard only), the
        clients concurrently; the replies of each shard's commands, in shard order."""
        wanted = sorted(set(range(self.count) if shards is None else shards))
        return await self.pipelined(
            [keys.durability_mark(shard) for shard in wanted],  # any key names its shard
            lambda pipe, i: commands(pipe, wanted[i]),
        )

    async def pipelined(
        self, item_keys: Sequence[str], commands: Callable[[Pipeline, int], object]
    ) -> list[list[Any]]:
        """Runs `commands(pipe, i)` for each item i, on the client of its key
        `item_keys[i]`: one pipeline per client, the clients concurrently; the replies of
        each item's commands, in item order. What reads many jobs (a page, a worker's
        running jobs) in one round trip per node: the items of one node go in one
        pipeline, on the client of the first of them (every key in it is that node's).
        The commands given are ones a resend may repeat (reads, and writes that end in
        the same state): on a stale slot map a node answers MOVED for some, and the whole
        pipeline fails and is sent again, regrouped, by the caller's retry."""
        by_item, failures = await self._per_node(item_keys, commands)
        if failures:
            raise failures[0]
        return [by_item[index] for index in range(len(item_keys))]

    async def across_reachable(
        self, commands: Callable[[Pipeline, int], object]
    ) -> tuple[list[list[Any] | None], list[Exception]]:
        """`across`, but a node that fails leaves None for its shards instead of failing
        the whole read: (each shard's replies or None, the errors). What the worker's poll
        uses, so one primary down (a failover under way) does not stop pickup on the
        shards of every other."""
        by_item, failures = await self._per_node(
            [keys.durability_mark(shard) for shard in range(self.count)], commands
        )
        return [by_item.get(shard) for shard in range(self.count)], failures

    async def _per_node(
        self, item_keys: Sequence[str], commands: Callable[[Pipeline, int], object]
    ) -> tuple[dict[int, list[Any]], list[Exception]]:
        by_client: dict[Hashable, tuple[Redis, list[int]]] = {}
        for index, key in enumerate(item_keys):
            group = by_client.get(self.node_of(key))
            if group is None:
                by_client[self.node_of(key)] = (self.for_key(key), [index])
            else:
                group[1].append(index)

        async def one(client: Redis, items: list[int]) -> list[tuple[int, list[Any]]]:
            spans: list[tuple[int, int, int]] = []
            async with client.pipeline(transaction=False) as pipe:
                for index in items:
                    before = len(pipe.command_stack)
                    await _queued(commands(pipe, index))
                    spans.append((index, before, len(pipe.command_stack)))
                replies = await pipe.execute() if pipe.command_stack else []
            return [(index, replies[start:end]) for index, start, end in spans]

        groups = list(by_client.values())
        if len(groups) == 1:  # one server: no tasks to make, the common case
            try:
                return dict(await one(*groups[0])), []
            except Exception as failure:
                return {}, [failure]
        found = await asyncio.gather(
            *(one(client, items) for client, items in groups), return_exceptions=True
        )
        by_item: dict[int, list[Any]] = {}
        failures: list[Exception] = []
        for part in found:
            if isinstance(part, Exception):
                failures.append(part)
            elif isinstance(part, BaseException):
                raise part  # a cancellation, not a failed node
            else:
                by_item.update(part)
        return by_item, failures

    def node_of(self, key: str) -> Hashable:
        """What tells the server holding `key` apart from the others (the client itself,
        here; a cluster's slot owner)."""
        return id(self.for_key(key))

    async def aclose(self) -> None:
        raise NotImplementedError


async def _queued(queuing: object) -> None:
    """Queuing a script call on a pipeline is a coroutine (it checks the script is loaded);
    other commands queue as they are called."""
    if inspect.isawaitable(queuing):
        await queuing


class OneServer(Shards):
    """One server, or one Sentinel-managed primary: every shard on it."""

    def __init__(self, redis: Redis, count: int = 1) -> None:
        super().__init__(count)
        self.redis = redis

    def for_tag(self, tag: str) -> Redis:
        return self.redis

    def for_key(self, key: str) -> Redis:
        return self.redis  # no tag to read: the submit path asks this several times

    def of(self, shard: int) -> Redis:
        return self.redis

    async def aclose(self) -> None:
        await self.redis.aclose()


class ShardCountMismatchError(RuntimeError):
    """This role's ACCEPTD_SHARDS differs from the count the deployment's first role
    recorded: its keys would name other shards than everybody else's."""


async def check_shard_count(shards: Shards) -> None:
    """Records ACCEPTD_SHARDS in Redis if no role has yet, else checks this role's against
    it (ShardCountMismatchError, said at start, in words). A store unavailable for now
    (unreachable, or refusing the write: out of memory, a read-only replica) is left to the
    roles' own retries."""
    try:
        # Two commands, not SET NX GET (Redis 7+ only): the second reads what the first
        # role wrote, whichever it was.
        await shards.control.set(keys.SHARD_COUNT, shards.count, nx=True)
        recorded = await shards.control.get(keys.SHARD_COUNT)
    except StoreUnavailable:
        return
    if recorded is not None and int(recorded) != shards.count:
        raise ShardCountMismatchError(
            f"ACCEPTD_SHARDS is {shards.count} here but {recorded} for this deployment "
            f"(recorded in Redis at {keys.SHARD_COUNT}): every role must use the same count, "
            "and it cannot change while the deployment holds data"
        )

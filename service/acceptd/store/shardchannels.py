"""Sharded pub/sub: every channel carries a shard's hash tag (a job's changes, a shard's
wake-ups: store/keys.py), scripts `SPUBLISH` on it, and listeners `SSUBSCRIBE` on the node
that holds its slot. On a cluster a plain `PUBLISH` goes to every node over the cluster
bus, so its cost grows with the cluster; a sharded one stays on one node (and its
replicas). On one server, sharded channels work the same way.

redis-py 5's asyncio PubSub does not know sharded channels (its sync one does; arq keeps us
below redis-py 6), so `ShardPubSub` teaches it: subscribe, resubscribe after a reconnect,
and deliver `smessage` like `message`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from redis.asyncio.client import PubSub
from redis.asyncio.connection import Connection

from acceptd.store.shards import Shards

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 5.0


class SlotMovedError(ConnectionError):
    """The server unsubscribed a sharded channel we did not leave: its slot moved to
    another node (a failover, a resharding). Subscribe again, where the slot is now."""


class ShardPubSub(PubSub):
    PUBLISH_MESSAGE_TYPES = ("message", "pmessage", "smessage")  # type: ignore[assignment]
    UNSUBSCRIBE_MESSAGE_TYPES = ("unsubscribe", "punsubscribe", "sunsubscribe")  # type: ignore[assignment]

    def __init__(
        self, *args: Any, on_reconnect: Callable[[], None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.shard_channels: set[str] = set()
        # SUNSUBSCRIBEs we sent whose confirmation has not come yet: a confirmation that
        # is not one of these is the server leaving a channel whose slot moved.
        self._leaving: Counter[str] = Counter()
        # Called when a dropped connection was made again and its channels subscribed
        # again inside a read (the client's retries): a message may have gone by.
        self._on_reconnect = on_reconnect

    @property
    def subscribed(self) -> bool:
        return bool(self.channels or self.patterns or self.shard_channels)

    async def ssubscribe(self, *channels: str) -> None:
        """One SSUBSCRIBE per channel: on a cluster, one command's channels must share a
        slot, and a node holds several shards. Connected first, so a new connection's
        resubscription (on_connect) does not send these twice."""
        await self.connect()  # type: ignore[no-untyped-call]
        for channel in channels:
            self.shard_channels.add(channel)
            await self.execute_command("SSUBSCRIBE", channel)

    async def sunsubscribe(self, *channels: str) -> None:
        self.shard_channels.difference_update(channels)
        for channel in channels:
            self._leaving[channel] += 1
            await self.execute_command("SUNSUBSCRIBE", channel)

    async def on_connect(self, connection: Connection) -> None:
        await super().on_connect(connection)
        self._leaving.clear()  # a new connection: no confirmation is owed on it
        for channel in list(self.shard_channels):
            await self.execute_command("SSUBSCRIBE", channel)
        if self.shard_channels and self._on_reconnect is not None:
            self._on_reconnect()

    async def handle_message(
        self, response: Any, ignore_subscribe_messages: bool = False
    ) -> dict[str, Any] | None:
        message: dict[str, Any] | None = await super().handle_message(  # type: ignore[no-untyped-call]
            response, ignore_subscribe_messages
        )
        if isinstance(response, list) and _text(response[0]) == "sunsubscribe":
            channel = _text(response[1])
            if self._leaving[channel] > 0:  # ours (the channel may be wanted again since)
                self._leaving[channel] -= 1
                if not self._leaving[channel]:
                    del self._leaving[channel]
            elif channel in self.shard_channels:
                raise SlotMovedError(f"the server left {channel}: its slot moved")
        if message is not None:
            message["channel"] = _text(message["channel"])
        return message


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def by_node(shards: Shards, channels: Iterable[str]) -> dict[Hashable, list[str]]:
    """The channels grouped by the node that holds each one's slot, as the clients see it
    now: one subscription connection per node."""
    groups: dict[Hashable, list[str]] = {}
    for channel in channels:
        groups.setdefault(shards.node_of(channel), []).append(channel)
    return groups


def open_pubsub(
    shards: Shards,
    channel: str,
    *,
    confirm: bool = False,
    on_reconnect: Callable[[], None] | None = None,
) -> ShardPubSub:
    """A pub/sub connection to the node that holds `channel`'s slot; `confirm`: its reader
    also gets the confirmations of its subscriptions."""
    client = shards.for_key(channel)
    return ShardPubSub(
        client.connection_pool, ignore_subscribe_messages=not confirm, on_reconnect=on_reconnect
    )


# What a listener is told when it cannot know what was said: after a reconnection
# (anything may have been published while nobody listened).
ANYTHING = ""


async def listen(shards: Shards, told: dict[str, Callable[[str], None]]) -> None:
    """Calls each channel's function with the message when one arrives on it, for as long as
    it runs. One connection per node; after a dropped connection or a moved slot every one
    is opened again, regrouped by where the slots are now, and every function is called
    with ANYTHING (anything may have been published while nobody listened)."""
    failures = 0

    def tell_all() -> None:
        for call in set(told.values()):
            call(ANYTHING)

    this = asyncio.current_task()
    while True:
        groups = list(by_node(shards, told).values())
        pubsubs = [open_pubsub(shards, names[0], on_reconnect=tell_all) for names in groups]
        try:
            for pubsub, names in zip(pubsubs, groups, strict=True):
                await pubsub.ssubscribe(*names)
            failures = 0
            tell_all()
            if this is not None and this.cancelling():
                # Asked to stop while subscribing, and the client swallowed it (seen on
                # a cluster, while a connection was being made): stop now, not never.
                raise asyncio.CancelledError
            await _deliver_all(pubsubs, told)
        except asyncio.CancelledError:
            raise
        except Exception:
            if this is not None and this.cancelling():
                raise asyncio.CancelledError from None
            failures += 1
            log.warning("wake-up subscription lost; polling until it is back", exc_info=True)
            await asyncio.sleep(min(MAX_BACKOFF_SECONDS, 0.1 * 2**failures))
        finally:
            for pubsub in pubsubs:
                await pubsub.aclose()  # type: ignore[no-untyped-call]


async def _deliver_all(pubsubs: list[ShardPubSub], told: dict[str, Callable[[str], None]]) -> None:
    """Reads every connection until one fails (its error raised here). Not a TaskGroup: a
    cancellation that comes while a reader fails would reach the caller inside an
    ExceptionGroup, which `except Exception` takes for a failure, and the listener would
    never stop (seen on a cluster: a worker's shutdown waiting for it forever)."""
    readers = [asyncio.ensure_future(_deliver(pubsub, told)) for pubsub in pubsubs]
    try:
        done, _ = await asyncio.wait(readers, return_when=asyncio.FIRST_EXCEPTION)
        for reader in done:
            reader.result()
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


async def _deliver(pubsub: ShardPubSub, told: dict[str, Callable[[str], None]]) -> None:
    while True:
        message = await pubsub.get_message(timeout=None)
        if message is not None and (call := told.get(message["channel"])) is not None:
            call(message["data"])

"""Ordered delivery: one delivery in flight per (endpoint, ordering key), in emit order.

A delivery to an ordered endpoint is created held, in its key's order queue, placed by its
event's stream id (the emit order). The head of a queue is started (its first attempt
queued) only when no older event is still waiting to be fanned out, since one could belong
to the same key; it then retries on the endpoint's schedule, holding its key. Once it ends,
succeeded or failed for good, it leaves the queue and the next one starts: a failure does
not block a key forever, and stays redeliverable by hand."""

from __future__ import annotations

import logging

from acceptd.core.statuses import DeliveryStatus
from acceptd.store import keys
from acceptd.store.deliveries import DeliveryStore, attempt_job_id
from acceptd.store.scriptcalls import OrderHead
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards

log = logging.getLogger(__name__)

# How many heads one advance may pass over (ended deliveries) before it yields.
MAX_STEPS = 50
SWEEP_BATCH = 500


def order_member(stream_id: str, delivery_id: str) -> str:
    """A delivery's place: its event's stream id, padded so members sort in emit order."""
    ms, _, seq = stream_id.partition("-")
    return f"{int(ms):015d}-{int(seq or 0):010d}|{delivery_id}"


def sequence(stream_id: str) -> int:
    """The per-key sequence number a payload carries: increasing in emit order."""
    ms, _, seq = stream_id.partition("-")
    return int(ms) * 1_000_000 + int(seq or 0)


def _stream_id(member: str) -> str:
    padded = member.partition("|")[0]
    ms, _, seq = padded.partition("-")
    return f"{int(ms)}-{int(seq)}"


class OrderQueues:
    def __init__(self, shards: Shards, scripts: Scripts, deliveries: DeliveryStore) -> None:
        self._shards = shards
        self._scripts = scripts
        self._deliveries = deliveries

    async def advance(self, queue: str) -> bool:
        """Starts the queue's head if its turn has come; True if one was started. A queue
        lives on the shard of its events' stream (store/keys.py: order_queue)."""
        shard = keys.shard_of_key(queue)
        redis = self._shards.of(shard)
        for _ in range(MAX_STEPS):
            head: str | None = await self._scripts.order_head(
                OrderHead(order_queue=queue, queue_set=keys.order_queues(shard))
            )
            if not head:
                return False
            delivery_id = head.partition("|")[2]
            delivery = await self._deliveries.view(delivery_id)
            if delivery is None or delivery.status is not DeliveryStatus.PENDING:
                await redis.zrem(queue, head)  # ended (or expired): the key moves on
                continue
            if delivery.attempt_count > 0 or await redis.exists(
                keys.arq_job(attempt_job_id(delivery_id, 1))
            ):
                return False  # in flight: the key waits for it
            older = await redis.xrange(
                keys.events_stream(shard), "-", "(" + _stream_id(head), count=1
            )
            if older:
                return False  # an older event may still join this key: wait for the fan-out
            return await self._deliveries.requeue(delivery, manual=False)
        return False

    async def sweep(self) -> int:
        """Advances every queue that holds deliveries, on every shard (after crashes, and
        for heads that waited on an older event); returns how many heads started."""
        started = 0
        for shard in range(self._shards.count):
            cursor = 0
            while True:
                cursor, queues = await self._shards.of(shard).sscan(
                    keys.order_queues(shard), cursor, count=SWEEP_BATCH
                )
                for queue in queues:
                    started += await self.advance(queue)
                if cursor == 0:
                    break
        return started

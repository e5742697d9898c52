"""Turns outbox events into deliveries: one per (event, destination), each persisted and queued.

Reads one shard's events stream (a FanOut per shard: store/keys.py) through a consumer
group shared by every dispatcher. An event is
acknowledged only after its deliveries exist; a dispatcher that dies before that leaves it
pending, and another one claims it. Delivery ids derive from (event, destination), so a
replayed event finds its deliveries instead of doubling them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from redis.exceptions import ResponseError

from acceptd.core import ids
from acceptd.core.clock import now_ms, to_rfc3339
from acceptd.core.events import CALLBACK_EVENTS, OPERATIONAL_EVENTS
from acceptd.core.jsonenc import compact_plain, parse_stored
from acceptd.store import keys
from acceptd.store.batches import PART_DONE_EVENT, BatchStore
from acceptd.store.deliveries import DeliveryRecord, DeliveryStore, NewDelivery, Persisted
from acceptd.store.endpoints import EndpointRecord, EndpointStore
from acceptd.store.jobs import JobStore
from acceptd.store.ordering import OrderQueues, order_member, sequence
from acceptd.store.shards import Shards
from acceptd.wire.resources import INPUT_NEEDED_EVENT, batch_resource, job_event_data, thin_data

log = logging.getLogger(__name__)

BATCH = 100
BLOCK_MS = 1000
# Events another dispatcher read and left unacknowledged this long are claimed (it died, or
# is cut off from the store), looked for this often. Within about the inline lease's time
# (dispatcher/inline.py), since a fresh event's first attempt may leave before its
# delivery is made (`handle`): a dispatcher that dies in between leaves only its event to
# say the webhook is owed. A live dispatcher's events are handled in milliseconds, or read
# again by it (its backlog) within seconds while the store fails; one claimed from it all
# the same is made at most once and, not fresh, sent only if its making was the claimer's.
CLAIM_IDLE_MS = 8_000
CLAIM_EVERY_SECONDS = 2.0
STALE_CONSUMER_MS = 86_400_000
# A body this long or longer, sent to several destinations, is stored once for all of them.
SHARED_BODY_MIN_BYTES = 4096


@dataclass(frozen=True)
class Subject:
    """What an event is about: its id, the resource its `data` shows, the callback URL
    owed it, its trace, its ordering key, and its channels (who may receive it)."""

    id: str
    resource: dict[str, Any]
    callback_url: str | None = None
    traceparent: str | None = None
    ordering_key: str = ""
    channels: list[str] = field(default_factory=list)


class InlineSender(Protocol):
    """Makes a new delivery's first attempt in this process, under a lease, when it has
    room (dispatcher/inline.py)."""

    lease_ms: int

    def accepts(self) -> bool: ...

    def send(
        self,
        delivery: DeliveryRecord,
        persisted: Persisted = None,
        endpoint: EndpointRecord | None = None,
    ) -> None: ...


class FanOut:
    def __init__(
        self,
        shards: Shards,
        jobs: JobStore,
        batches: BatchStore,
        endpoints: EndpointStore,
        deliveries: DeliveryStore,
        consumer: str,
        inline: InlineSender | None = None,
        stopping: asyncio.Event | None = None,
        order: OrderQueues | None = None,
        shard: int = 0,
    ) -> None:
        self.shard = shard
        self._redis = shards.of(shard)
        self._stream = keys.events_stream(shard)
        self._order = order
        self._jobs = jobs
        self._batches = batches
        self._endpoints = endpoints
        self._deliveries = deliveries
        self._consumer = consumer
        self.inline = inline
        # Stops between reads, never inside one (worker/scheduler.py, Scheduler.stopping: why).
        self.stopping = stopping or asyncio.Event()

    async def ensure_group(self) -> None:
        try:
            # From the stream's start: events written before any dispatcher ever ran still count.
            await self._redis.xgroup_create(self._stream, keys.EVENTS_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        await self._forget_stale_consumers()

    async def _forget_stale_consumers(self) -> None:
        for consumer in await self._redis.xinfo_consumers(self._stream, keys.EVENTS_GROUP):
            if consumer["pending"] == 0 and consumer["idle"] > STALE_CONSUMER_MS:
                await self._redis.xgroup_delconsumer(
                    self._stream, keys.EVENTS_GROUP, consumer["name"]
                )

    async def run(self) -> None:
        next_claim, failures = 0.0, 0
        # Events this consumer read but could not finish (a store outage mid-batch) are
        # its own pending entries: read them again first ("0"), not after another
        # dispatcher's claim timeout.
        backlog, group_ready = True, False
        # The batch read in the round trip that acknowledged the last one (under load: one
        # round trip a batch fewer); it is handled even if a stop began meanwhile.
        read_ahead: Any = None
        while read_ahead or not self.stopping.is_set():
            try:
                if not group_ready:
                    await self.ensure_group()
                    group_ready = True
                if time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + CLAIM_EVERY_SECONDS
                    await self._claim_abandoned()
                # Events no consumer read before (">"): none has deliveries yet.
                reply, read_ahead, fresh = read_ahead, None, True
                if not reply:
                    fresh = not backlog
                    reply = await self._redis.xreadgroup(
                        keys.EVENTS_GROUP,
                        self._consumer,
                        {self._stream: "0" if backlog else ">"},
                        count=BATCH,
                        block=None if backlog else BLOCK_MS,
                    )
                read = 0
                for _stream, entries in reply or []:
                    read += len(entries)
                    if entries:
                        ahead = not backlog and not self.stopping.is_set()
                        read_ahead = await self._handle_batch(entries, read_next=ahead, fresh=fresh)
                backlog = backlog and read > 0
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                backlog, group_ready, read_ahead = True, False, None
                log.warning("fan-out loop error (retrying)", exc_info=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), min(5.0, 0.2 * 2**failures))

    async def _claim_abandoned(self) -> None:
        _next, entries, *_ = await self._redis.xautoclaim(
            self._stream,
            keys.EVENTS_GROUP,
            self._consumer,
            min_idle_time=CLAIM_IDLE_MS,
            start_id="0-0",
            count=BATCH,
        )
        if entries:
            log.info("claimed %d events abandoned by another dispatcher", len(entries))
            await self._handle_batch(entries)

    async def _handle_batch(
        self,
        entries: list[tuple[str, dict[str, str] | None]],
        *,
        read_next: bool = False,
        fresh: bool = False,
    ) -> Any:
        """Creates the deliveries of a batch of events, then acknowledges them (and, with
        `read_next`, reads the next batch in the same round trip: its reply, else None).
        `fresh`: no consumer read these events before (`handle`)."""
        # Concurrently: each event's reads and writes are independent round trips. An entry
        # deleted while pending reads back without fields: only acknowledged.
        touched: set[str] = set()
        # One read of a tenant's endpoints per batch, not per event: every event in the batch
        # was written before this read, so every endpoint it was written for is seen. Read
        # while the events' subjects are (the same round trip: store/batching.py).
        loop = asyncio.get_running_loop()
        tenants = {fields["tenant"] for _, fields in entries if fields}
        endpoints = {t: loop.create_task(self._endpoints.for_tenant(t)) for t in tenants}
        try:
            await asyncio.gather(
                *(
                    self.handle(fields, entry_id, touched, endpoints[fields["tenant"]], fresh=fresh)
                    for entry_id, fields in entries
                    if fields
                )
            )
        finally:
            # Each read awaited (an outage in one is the batch's error, raised above).
            await asyncio.gather(*endpoints.values(), return_exceptions=True)
        entry_ids = [entry_id for entry_id, _ in entries]
        # With no ordering queue to advance, the acknowledgement goes in the round trip that
        # waits for the next batch (up to BLOCK_MS): an idle or lightly loaded dispatcher
        # spends one round trip per batch, not two. Not atomic, and need not be: the server
        # runs the three in order, an event acknowledged but not yet deleted is never read
        # again, and one read but not handled stays pending, read again after an error
        # (run). A batch that touched ordering queues is acknowledged in a MULTI, which
        # never blocks (an empty read when nothing is new): their heads start at once.
        waits = read_next and not touched
        async with self._redis.pipeline(transaction=not waits) as pipe:
            pipe.xack(self._stream, keys.EVENTS_GROUP, *entry_ids)
            pipe.xdel(self._stream, *entry_ids)
            if read_next:
                pipe.xreadgroup(
                    keys.EVENTS_GROUP,
                    self._consumer,
                    {self._stream: ">"},
                    count=BATCH,
                    block=BLOCK_MS if waits else None,
                )
            replies = await pipe.execute()
        # These events are gone from the stream now: heads that waited on them may start.
        if self._order is not None:
            for queue in touched:
                await self._order.advance(queue)
        return replies[2] if read_next else None

    async def _subject(self, fields: dict[str, str]) -> Subject | None:
        """What the event is about; None if it expired before it could be sent."""
        tenant, event = fields["tenant"], fields["event"]
        if "data" in fields:  # an operational event carries its data (store/operational.py)
            subject_id = fields["subject"]
            return Subject(subject_id, parse_stored(fields["data"]), ordering_key=subject_id)
        if "batch" in fields:
            batch = await self._batches.get(fields["batch"], tenant)
            if batch is None:
                return None
            return Subject(
                batch.id,
                batch_resource(batch),
                batch.callback_url,
                ordering_key=batch.id,
                channels=batch.channels,
            )
        # The job as its event left it, if it carried it (and not so long ago that the job
        # may be gone); else read.
        record = fields.get("record")
        if record is not None and not self._jobs.record_outlived(int(fields["at"])):
            job = self._jobs.as_of_event(fields["job"], tenant, record)
        else:
            job = await self._jobs.get(fields["job"], tenant)
        if job is None:
            return None
        return Subject(
            job.id,
            job_event_data(job, event),
            job.callback_url if event in CALLBACK_EVENTS else None,
            job.traceparent,
            job.ordering_key or job.id,
            job.channels,
        )

    async def handle(
        self,
        fields: dict[str, str],
        entry_id: str = "0-0",
        touched: set[str] | None = None,
        endpoints: asyncio.Future[list[EndpointRecord]] | None = None,
        *,
        fresh: bool = False,
    ) -> int:
        """Creates the event's deliveries; returns how many were new. The order queues it
        added to are put in `touched`; `endpoints`, the tenant's (a read under way, shared
        by the batch's events), are read here when not given. `fresh`: no consumer read
        the event before, so none of its deliveries exists yet: each first attempt made
        here leaves while its delivery is being made (one round trip sooner), and is
        recorded once that landed."""
        event, tenant = fields["event"], fields["tenant"]
        if event == PART_DONE_EVENT:
            # Internal: a part of a batch over many shards finished. Nobody is sent this.
            await self._batches.part_done(fields["batch"], tenant, self.shard)
            return 0
        if endpoints is None:
            reading = asyncio.ensure_future(self._endpoints.for_tenant(tenant))
            try:
                return await self.handle(fields, entry_id, touched, reading, fresh=fresh)
            finally:
                await asyncio.gather(reading, return_exceptions=True)
        # The subject is read in the round trip of the endpoints' read (store/batching.py),
        # or carried by the event (`_subject`).
        subject = await self._subject(fields)
        if subject is None:
            return 0  # expired before anyone could be told: nothing left to send
        subject_id, resource, callback_url = subject.id, subject.resource, subject.callback_url
        ordering_key = subject.ordering_key
        timestamp = to_rfc3339(int(fields["at"]))
        bodies: dict[tuple[bool, bool], str] = {}

        def body_for(thin: bool, ordered: bool) -> str:
            """The payload, built once per shape it is sent in: thin endpoints get the
            subject's identity and state only (no input, result or error); ordered ones
            also where the event stands in its key, and the key itself unless the body is
            thin and the key is the submitter's own (`ordering_key`: tenant data, which a
            portal session's endpoint must not learn)."""
            if (thin, ordered) not in bodies:
                payload: dict[str, Any] = {"type": event, "timestamp": timestamp}
                if ordered:
                    if not thin or ordering_key == subject_id:
                        payload["ordering_key"] = ordering_key
                    payload["sequence"] = sequence(entry_id)
                payload["data"] = thin_data(resource) if thin else resource
                bodies[thin, ordered] = compact_plain(payload)
            return bodies[thin, ordered]

        def make(to: Destination, shared: bool = False) -> Awaitable[int]:
            shape = (to.thin, to.queue is not None)
            return self._make(
                fields, entry_id, subject, to, body_for(*shape), shared, touched, fresh
            )

        created = 0
        # An endpoint's record as just read goes with its first attempt (dispatcher/inline.py)
        # only while nothing was awaited since the read: a making awaited in between, or the
        # subject's read if the endpoints' landed first, could have outlasted a change to
        # the endpoint (disabled, deleted, new headers), and that attempt would not see it.
        # Later ones read their endpoint as they start.
        just_read = not endpoints.done()
        callback = Destination(callback_url) if callback_url else None
        if callback is not None and len(body_for(False, False)) < SHARED_BODY_MIN_BYTES:
            # Too small to be shared with an endpoint, it needs nothing of theirs: made (and,
            # fresh, sent) before their read lands, one round trip sooner when the event
            # carried its subject.
            created += await make(callback)
            callback, just_read = None, False
        tenant_endpoints = await endpoints
        destinations = [callback] if callback is not None else []
        operational = event in OPERATIONAL_EVENTS
        for endpoint in tenant_endpoints:
            if endpoint.disabled or event not in endpoint.events:
                continue
            if not endpoint.serves(subject.channels):
                continue  # another customer's (channels): not for this endpoint
            if operational and endpoint.id == fields.get("about"):
                continue  # never about itself: a failing endpoint would feed its own failures
            queue = None
            if endpoint.ordering == "per_key":
                # On this stream's shard: every event of the key is emitted here.
                queue = keys.order_queue(self.shard, endpoint.id, ordering_key)
            destinations.append(
                Destination(
                    endpoint.url,
                    endpoint.id,
                    # An operational event holds no job data: every endpoint gets it whole.
                    thin=endpoint.thin and not operational,
                    # Inline only when nothing must be asked first (a rate limit, an order
                    # queue).
                    may_inline=not endpoint.rate_limit_per_second and queue is None,
                    queue=queue,
                    endpoint=endpoint,
                )
            )
        # A big body sent to several destinations in one shape is stored once, shared; a
        # small one, or one with a single destination, stays in each delivery's hash (a
        # shared one costs six Redis commands a delivery to keep; each copy is counted in
        # the tenant's bytes either way).
        per_shape = Counter((to.thin, to.queue is not None) for to in destinations)
        for to in destinations:
            shape = (to.thin, to.queue is not None)
            shared = per_shape[shape] > 1 and len(body_for(*shape)) >= SHARED_BODY_MIN_BYTES
            created += await make(to if just_read else replace(to, endpoint=None), shared)
            just_read = False
        return created

    async def _make(
        self,
        fields: dict[str, str],
        entry_id: str,
        subject: Subject,
        to: Destination,
        body: str,
        shared: bool,
        touched: set[str] | None,
        fresh: bool,
    ) -> int:
        """Makes the event's delivery to one destination, and starts its first attempt
        here when it may; 1 if it was new. The order queue it joined is put in `touched`."""
        event, msg_id = fields["event"], fields["msg"]
        shape = (to.thin, to.queue is not None)
        delivery_id = ids.derived_id("dlv", msg_id, to.endpoint_id or f"callback:{to.url}")
        new = NewDelivery(
            id=delivery_id,
            tenant=fields["tenant"],
            job_id=subject.id,
            event=event,
            webhook_id=msg_id,
            url=to.url,
            endpoint_id=to.endpoint_id,
            body=body,
            body_field=_body_field(msg_id, *shape) if shared else "",
            # A thin body holds no completion token: nothing to seal.
            confidential=event == INPUT_NEEDED_EVENT and not to.thin,
            # An operational event has no job to charge (its subject is a delivery or an
            # endpoint): like a test event, not counted.
            counted=event not in OPERATIONAL_EVENTS,
            traceparent=subject.traceparent,
            order_queue=to.queue,
            order_member=order_member(entry_id, delivery_id) if to.queue else None,
        )
        inline = self.inline if to.may_inline and self.inline and self.inline.accepts() else None
        if inline is not None and fresh:
            # Sent while it is made; should the making fail, the event is handled again
            # and the delivery made and sent anew (at least once, never lost).
            now = now_ms()
            creating: asyncio.Future[DeliveryRecord | None]
            creating = asyncio.get_running_loop().create_future()
            as_made = self._deliveries.as_created(new, now, inline.lease_ms)
            inline.send(as_made, creating, to.endpoint)
            try:
                # The attempt's task goes first: its request leaves before the making's
                # own preparation (a quarter of a millisecond, bench.gaps) is done.
                await asyncio.sleep(0)
                made = await self._deliveries.create(new, lease_ms=inline.lease_ms, now=now)
            except BaseException:
                creating.cancel()  # not made (as far as anyone can tell): not recorded
                raise
            creating.set_result(made)
            return int(made is not None)
        delivery = await self._deliveries.create(new, lease_ms=inline.lease_ms if inline else 0)
        if to.queue is not None and touched is not None:
            touched.add(to.queue)
        if delivery is None:
            return 0
        if inline is not None:
            inline.send(delivery)  # made first: its endpoint is read again as it starts
        return 1


@dataclass(frozen=True)
class Destination:
    """Where one of an event's deliveries goes: a URL, the endpoint it is of (None for a
    callback_url) and its record as just read, whether its body is thin, whether its first
    attempt may be made inline, and its key's order queue (an ordered endpoint)."""

    url: str
    endpoint_id: str | None = None
    thin: bool = False
    may_inline: bool = True
    queue: str | None = None
    endpoint: EndpointRecord | None = field(default=None, compare=False)


def _body_field(msg_id: str, thin: bool, ordered: bool) -> str:
    """The field of an event's body, in one shape, in its subject's bodies hash."""
    return f"{msg_id}:{'thin' if thin else 'full'}{':ordered' if ordered else ''}"

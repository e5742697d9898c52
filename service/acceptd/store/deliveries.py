"""Webhook deliveries: one per (event, destination), persisted before the first attempt.

A delivery does not hold its body: the bodies of a job's (or a batch's) events live in one
hash (keys.webhook_bodies), one field per (event, payload shape), shared by every delivery
of that event in that shape; each delivery names its field (`bf`). So an event sent to N
endpoints stores its body once (per shape), not N times; the hash counts its pending
deliveries (`p`) and expires a retention after the last one ends. A body with one
destination in its shape stays in its delivery's hash (`body`), as every body did before:
nothing to share, so no shared record to keep. Reads for the API (`view`, `views`) name
the fields they return and never load a body."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from redis.asyncio.client import Pipeline

from acceptd.core import ids
from acceptd.core.clock import now_ms
from acceptd.core.secretbox import SecretBox
from acceptd.core.statuses import DeliveryStatus
from acceptd.store import keys
from acceptd.store.arqjobs import DELIVER_FUNCTION, arq_payload
from acceptd.store.layouts import DeliveryField as F
from acceptd.store.operational import OperationalEvent
from acceptd.store.records import TRIM_EVERY, newest_ids_across
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from acceptd.store.usage import DELIVERY_ALLOWANCE, ByteBudgetExceededError, stored_bytes
from acceptd.store.webhookcalls import (
    DeliveryAttempt,
    DeliveryCreate,
    DeliveryKeys,
    DeliveryRequeue,
)

# Attempts a delivery keeps (the newest; its count goes on): manual retries could otherwise
# grow one delivery, and every answer that lists its attempts, without end.
KEPT_ATTEMPTS = 20


class BodyExpiredError(Exception):
    """A finished delivery's shared body has expired: nothing is left to send again."""

    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"the body of delivery {delivery_id} has expired: nothing to send")


@dataclass(frozen=True)
class NewDelivery:
    id: str
    tenant: str
    job_id: str
    event: str
    webhook_id: str
    url: str
    endpoint_id: str | None
    body: str
    # Its field in the subject's bodies hash: one per (event, shape), shared by every
    # delivery of the event in that shape; '' keeps the body in the delivery's own hash
    # (an event with one destination in that shape has nothing to share).
    body_field: str
    # Whether its bytes count against the tenant's budget, charged to the subject (its job
    # or batch) until that is gone. Test events have no job to charge and are not counted.
    counted: bool = True
    # The body carries a credential (a completion token): it is stored sealed.
    confidential: bool = False
    # The trace of the job's submit: each attempt is a span of it, sent as `traceparent`.
    traceparent: str | None = None
    # To an ordered endpoint: its key's queue and its place there (created held, started
    # when its turn comes, store/ordering.py).
    order_queue: str | None = None
    order_member: str | None = None


@dataclass(frozen=True, kw_only=True)
class DeliveryRecord(NewDelivery):
    status: DeliveryStatus
    attempt_count: int
    next_attempt_ms: int | None
    created_ms: int

    @classmethod
    def from_hash(cls, delivery_id: str, raw: dict[str, str], body: str) -> DeliveryRecord:
        return cls(
            id=delivery_id,
            tenant=raw[F.TENANT],
            job_id=raw[F.SUBJECT],
            event=raw[F.EVENT],
            webhook_id=raw[F.WEBHOOK_ID],
            url=raw[F.URL],
            endpoint_id=raw.get(F.ENDPOINT) or None,
            body=body,
            body_field=raw.get(F.BODY_FIELD, ""),
            confidential=raw.get(F.SEALED) == "1",
            traceparent=raw.get(F.TRACEPARENT) or None,
            order_queue=raw.get(F.ORDER_QUEUE) or None,
            status=DeliveryStatus(raw[F.STATUS]),
            attempt_count=int(raw.get(F.ATTEMPT_COUNT, "0")),
            next_attempt_ms=int(raw[F.NEXT_ATTEMPT]) if raw.get(F.NEXT_ATTEMPT) else None,
            created_ms=int(raw[F.CREATED]),
        )


# The fields a view reads (HMGET): never `body` (deliveries made before bodies were shared
# hold theirs in their own hash).
_VIEW_FIELDS = (
    F.TENANT,
    F.SUBJECT,
    F.EVENT,
    F.WEBHOOK_ID,
    F.URL,
    F.ENDPOINT,
    F.STATUS,
    F.ATTEMPT_COUNT,
    F.NEXT_ATTEMPT,
    F.CREATED,
    F.ATTEMPTS_IN_HASH,
)


@dataclass(frozen=True)
class DeliveryView:
    """What the API shows of a delivery, and what re-queuing it needs: everything but its
    body, which lists, statistics and retries never load."""

    id: str
    tenant: str
    job_id: str
    event: str
    webhook_id: str
    url: str
    endpoint_id: str | None
    status: DeliveryStatus
    attempt_count: int
    next_attempt_ms: int | None
    created_ms: int

    @classmethod
    def from_values(cls, delivery_id: str, values: list[str | None]) -> DeliveryView | None:
        raw = dict(zip(_VIEW_FIELDS, values, strict=True))
        tenant, job, status, created = raw[F.TENANT], raw[F.SUBJECT], raw[F.STATUS], raw[F.CREATED]
        if tenant is None or job is None or status is None or created is None:
            return None  # expired
        next_attempt = raw[F.NEXT_ATTEMPT]
        return cls(
            id=delivery_id,
            tenant=tenant,
            job_id=job,
            event=raw[F.EVENT] or "",
            webhook_id=raw[F.WEBHOOK_ID] or "",
            url=raw[F.URL] or "",
            endpoint_id=raw[F.ENDPOINT] or None,
            status=DeliveryStatus(status),
            attempt_count=int(raw[F.ATTEMPT_COUNT] or "0"),
            next_attempt_ms=int(next_attempt) if next_attempt else None,
            created_ms=int(created),
        )


# A new delivery's creation, while it may still be under way: its first attempt is sent
# meanwhile (dispatcher/fanout.py), and recorded only once it landed
# (dispatcher/attempts.py `landed`). None: it exists.
Persisted = asyncio.Future[DeliveryRecord | None] | None


def _mode(new: NewDelivery, lease_ms: int) -> Literal["queue", "inline", "held"]:
    """How a new delivery's first attempt is made (lua/delivery_create.lua, ARGV[10])."""
    return "held" if new.order_queue else "inline" if lease_ms else "queue"


def attempt_job_id(delivery_id: str, attempt_no: int) -> str:
    """arq job id of one attempt: re-queuing the same attempt moves it rather than adding one."""
    return f"{delivery_id}:{attempt_no}"


class DeliveryStore:
    def __init__(
        self,
        shards: Shards,
        scripts: Scripts,
        retention_seconds: int,
        box: SecretBox | None = None,
    ) -> None:
        self._shards = shards
        self._scripts = scripts
        self._retention_ms = retention_seconds * 1000
        self._box = box

    def _sealed_body(self, new: NewDelivery) -> str:
        if not new.confidential:
            return new.body
        if self._box is None:
            raise RuntimeError(
                "this DeliveryStore has no SecretBox: confidential bodies are sealed"
            )
        # A shared body is sealed for its field (the first delivery's seal is the one
        # kept), a body of its own for its delivery.
        return self._box.encrypt(new.body, self._context(new.id, new.job_id, new.body_field))

    @staticmethod
    def _context(delivery_id: str, subject_id: str, body_field: str) -> str:
        if body_field:
            return f"webhook:{subject_id}:{body_field}:body"
        return f"delivery:{delivery_id}:body"

    def _opened(self, record: DeliveryRecord) -> DeliveryRecord:
        if not record.confidential or self._box is None:
            return record
        context = self._context(record.id, record.job_id, record.body_field)
        return replace(record, body=self._box.decrypt(record.body, context))

    def _attempt_keys(
        self, delivery: DeliveryRecord | DeliveryView, attempt_no: int
    ) -> DeliveryKeys:
        shard = ids.shard_of(delivery.id)
        return DeliveryKeys(
            delivery=keys.delivery(delivery.id),
            attempts=keys.delivery_attempts(delivery.id),
            due=keys.deliveries_due(shard),
            arq_job=keys.arq_job(attempt_job_id(delivery.id, attempt_no)),
            queue=keys.webhook_queue(shard),
            inline_leases=keys.inline_leases(shard),
            bodies=keys.webhook_bodies(delivery.job_id),
            usage=keys.tenant_usage(delivery.tenant, shard),
        )

    @staticmethod
    def _payload(delivery_id: str, attempt_no: int, at_ms: int) -> str:
        return arq_payload(DELIVER_FUNCTION, [delivery_id, attempt_no], at_ms)

    async def create(
        self, new: NewDelivery, lease_ms: int = 0, now: int | None = None
    ) -> DeliveryRecord | None:
        """The new delivery, or None when it already existed (a replayed fan-out).

        With `lease_ms`, the caller sends the first attempt itself, under an inline lease
        that long (renewed while it sends); no arq job is made unless the lease lapses.
        `now`: its creation time, as `as_created` was given it.
        """
        now = now_ms() if now is None else now
        mode = _mode(new, lease_ms)
        # Every field of every retained delivery costs Redis memory: defaults are left out.
        fields: list[str | int] = [
            F.TENANT, new.tenant,
            F.SUBJECT, new.job_id,
            F.EVENT, new.event,
            F.WEBHOOK_ID, new.webhook_id,
            F.URL, new.url,
            F.STATUS, DeliveryStatus.PENDING.value,
            F.ATTEMPT_COUNT, 0,
            F.CREATED, now,
            # Its attempts are fields of this hash (lua/delivery_attempt.lua).
            F.ATTEMPTS_IN_HASH, "1",
        ]  # fmt: skip
        fields += (
            [F.BODY_FIELD, new.body_field] if new.body_field else [F.BODY, self._sealed_body(new)]
        )
        if new.counted and not new.body_field:
            fields += [F.OWED, "1"]  # owed in its subject's bodies hash (lua/delivery_create.lua)
        if not new.counted:
            fields += [F.UNCOUNTED, "1"]
        if new.endpoint_id:
            fields += [F.ENDPOINT, new.endpoint_id]
        if new.confidential:
            fields += [F.SEALED, "1"]
        # Where it waits (each is cleared where it was set): the due set, or a lease.
        if mode == "queue":
            fields += [F.NEXT_ATTEMPT, now]
        elif mode == "inline":
            fields += [F.LEASE, "1"]
        if new.traceparent:
            fields += [F.TRACEPARENT, new.traceparent]
        if new.order_queue:
            fields += [F.ORDER_QUEUE, new.order_queue]
        # The indexes are cut to the retention one write in so many (the cut is a range
        # removal, bounded by what expired since the last one).
        trim = random.random() < 1 / TRIM_EVERY  # noqa: S311 - sampling, not security
        # A delivery lives on its event's shard (its id is derived from the event's), where
        # its subject's bodies and, for an ordered endpoint, its order queue are.
        shard = ids.shard_of(new.id)
        created: int = await self._scripts.delivery_create(
            DeliveryCreate(
                delivery=keys.delivery(new.id),
                job_deliveries=keys.job_deliveries(new.job_id),
                due=keys.deliveries_due(shard),
                arq_job=keys.arq_job(attempt_job_id(new.id, 1)),
                queue=keys.webhook_queue(shard),
                tenant_index=keys.tenant_deliveries(new.tenant, shard),
                endpoint_index=keys.endpoint_deliveries(new.endpoint_id or "none", shard),
                # Touched only for a delivery to an ordered endpoint.
                order_queue=new.order_queue or keys.delivery(new.id),
                order_queues=keys.order_queues(shard),
                inline_leases=keys.inline_leases(shard),
                bodies=keys.webhook_bodies(new.job_id),
                usage=keys.tenant_usage(new.tenant, shard),
                delivery_id=new.id,
                arq_payload=self._payload(new.id, 1, now),
                due_ms=now + lease_ms,
                retention_ms=self._retention_ms,
                arq_job_id=attempt_job_id(new.id, 1),
                wakeup=keys.wakeup(keys.WEBHOOKS_WAKEUP, shard),
                to_endpoint="1" if new.endpoint_id else "",
                oldest_id=ids.id_at("dlv", now - self._retention_ms) if trim else "",
                order_place=new.order_member or "",
                way=mode,
                body_field=new.body_field,
                shared_body=self._sealed_body(new) if new.body_field else "",
                # Charged to its job (or batch): subtracted when that is gone.
                usage_field=new.job_id if new.counted else "",
                charged=stored_bytes(fields) + DELIVERY_ALLOWANCE,
                fields=fields,
            )
        )
        if created != 1:
            return None
        return self.as_created(new, now, lease_ms)

    @staticmethod
    def as_created(new: NewDelivery, now: int, lease_ms: int = 0) -> DeliveryRecord:
        """The record `create(new, lease_ms, now)` makes, before it is made: what a fresh
        delivery's inline attempt sends while its creation is under way (dispatcher/
        fanout.py)."""
        return DeliveryRecord(
            **vars(new),  # its fields, all immutable: asdict's deep copy cost 3 % of a dispatcher
            status=DeliveryStatus.PENDING,
            attempt_count=0,
            next_attempt_ms=now if _mode(new, lease_ms) == "queue" else None,
            created_ms=now,
        )

    async def get(self, delivery_id: str) -> DeliveryRecord | None:
        """The delivery with its body, for sending it: None when it (or its body) expired."""
        redis = self._shards.for_key(keys.delivery(delivery_id))
        raw: dict[str, str] = await redis.hgetall(keys.delivery(delivery_id))  # type: ignore[misc]
        if not raw:
            return None
        body: str | None = raw.get(F.BODY)
        if body is None:
            bodies = keys.webhook_bodies(raw[F.SUBJECT])
            body = await redis.hget(bodies, raw.get(F.BODY_FIELD, ""))  # type: ignore[misc]
            if body is None:
                return None
        return self._opened(DeliveryRecord.from_hash(delivery_id, raw, body))

    async def view(self, delivery_id: str, tenant: str | None = None) -> DeliveryView | None:
        """The delivery without its body or attempts (one HMGET); None when it expired or
        is another tenant's."""
        key = keys.delivery(delivery_id)
        values = await self._shards.for_key(key).hmget(key, list(_VIEW_FIELDS))  # type: ignore[misc]
        view = DeliveryView.from_values(delivery_id, values)
        if view is None or (tenant is not None and view.tenant != tenant):
            return None
        return view

    async def for_job(self, job_id: str) -> list[tuple[DeliveryView, list[dict[str, Any]]]]:
        key = keys.job_deliveries(job_id)
        delivery_ids: list[str] = await self._shards.for_key(key).lrange(key, 0, -1)  # type: ignore[misc]
        return await self.views(delivery_ids)

    async def attempts(self, delivery_id: str) -> list[dict[str, Any]]:
        found = await self.views([delivery_id])
        return found[0][1] if found else []

    async def record_attempt(
        self,
        delivery: DeliveryRecord,
        attempt_no: int,
        attempt: dict[str, Any],
        status: DeliveryStatus,
        next_attempt_ms: int | None = None,
        exhausted: OperationalEvent | None = None,
    ) -> bool:
        """`exhausted`: the `delivery.exhausted` event owed if this attempt ends it failed,
        written in the same step (store/operational.py)."""
        due = next_attempt_ms if next_attempt_ms is not None else 0
        event_keys: tuple[str, ...] = ()
        event_fields: list[str] = []
        if exhausted is not None and status is DeliveryStatus.FAILED:
            shard = ids.shard_of(delivery.id)
            event_keys = (
                keys.events_stream(shard),
                keys.tenant_event_subscriptions(delivery.tenant, shard),
            )
            event_fields = exhausted.fields()
        recorded: int = await self._scripts.delivery_attempt(
            DeliveryAttempt(
                delivery=self._attempt_keys(delivery, attempt_no + 1),
                exhausted_event_keys=event_keys,
                delivery_id=delivery.id,
                attempt_no=attempt_no,
                # UTF-8, not \u escapes: a receiver's answer of 0xFF bytes decoded to U+FFFD
                # would be stored at six bytes a character.
                attempt_json=json.dumps(attempt, separators=(",", ":"), ensure_ascii=False),
                status=status.value,
                due_ms=due,
                arq_payload=self._payload(delivery.id, attempt_no + 1, now_ms()),
                retention_ms=self._retention_ms,
                arq_job_id=attempt_job_id(delivery.id, attempt_no + 1),
                usage_field=delivery.job_id,
                kept_attempts=KEPT_ATTEMPTS,
                wakeup=keys.wakeup(keys.WEBHOOKS_WAKEUP, ids.shard_of(delivery.id)),
                event_fields=event_fields,
            )
        )
        return recorded == 1

    async def requeue(
        self, delivery: DeliveryRecord | DeliveryView, *, manual: bool, byte_budget: int = 0
    ) -> bool:
        """Queue the next attempt now. Manual: also reopens a finished delivery (unless its
        body expired: then nothing can be sent), unless its tenant stores `byte_budget`
        bytes already (ByteBudgetExceededError: each attempt is stored and counted)."""
        next_no, now = delivery.attempt_count + 1, now_ms()
        done: int = await self._scripts.delivery_requeue(
            DeliveryRequeue(
                delivery=self._attempt_keys(delivery, next_no),
                delivery_id=delivery.id,
                now_ms=now,
                arq_payload=self._payload(delivery.id, next_no, now),
                attempt_count=delivery.attempt_count,
                mode="manual" if manual else "sweep",
                arq_job_id=attempt_job_id(delivery.id, next_no),
                wakeup=keys.wakeup(keys.WEBHOOKS_WAKEUP, ids.shard_of(delivery.id)),
                budget=byte_budget,
            )
        )
        if done == -2:
            raise BodyExpiredError(delivery.id)
        if done == -3:
            raise ByteBudgetExceededError(delivery.tenant, byte_budget)
        return done == 1

    async def renew_leases(self, delivery_ids: list[str], lease_ms: int) -> None:
        """Inline leases of attempts still being sent here (XX: never revives one ended)."""
        deadline = now_ms() + lease_ms
        by_shard: dict[int, dict[str, int]] = {}
        for delivery_id in delivery_ids:
            by_shard.setdefault(ids.shard_of(delivery_id), {})[delivery_id] = deadline
        for shard, renewed in by_shard.items():
            await self._shards.of(shard).zadd(keys.inline_leases(shard), renewed, xx=True)

    async def lapsed_leases(self, limit: int) -> list[str]:
        """Deliveries whose inline sender stopped renewing its lease (it died): up to
        `limit` of each shard's, one round trip per node."""
        now = now_ms()
        per_shard = await self._shards.across(
            lambda pipe, shard: pipe.zrangebyscore(
                keys.inline_leases(shard), "-inf", now, start=0, num=limit
            )
        )
        return [delivery_id for (found,) in per_shard for delivery_id in found]

    async def drop_lease(self, delivery_id: str) -> None:
        shard = ids.shard_of(delivery_id)
        await self._shards.of(shard).zrem(keys.inline_leases(shard), delivery_id)

    async def overdue(self, older_than_ms: int, limit: int) -> list[str]:
        """Pending deliveries due before `older_than_ms`: up to `limit` of each shard's."""
        per_shard = await self._shards.across(
            lambda pipe, shard: pipe.zrangebyscore(
                keys.deliveries_due(shard), "-inf", older_than_ms, start=0, num=limit
            )
        )
        return [delivery_id for (found,) in per_shard for delivery_id in found]

    async def ids_between(
        self,
        index: Callable[[int], str],
        since_ms: int,
        until_ms: int,
        limit: int,
        *,
        before: str | None = None,
    ) -> list[str]:
        """Newest first: ids in a per-shard index (`index(shard)`: every shard's read and
        merged) made in [since_ms, until_ms) and older than `before`, at most `limit`."""
        upper = ids.id_at("dlv", until_ms)
        if before is not None:
            upper = min(upper, before)
        return await newest_ids_across(
            self._shards, index, upper, limit, at_least=ids.id_at("dlv", since_ms)
        )

    async def views(
        self, delivery_ids: list[str]
    ) -> list[tuple[DeliveryView, list[dict[str, Any]]]]:
        """The deliveries that still exist, each with its attempts, in the order given: the
        named fields of each (HMGET, never the body), then its last KEPT_ATTEMPTS attempts
        (fields `a:N`, after those of a list for deliveries made before attempts were
        fields). Two round trips, whatever the bodies weigh or however often it was retried."""
        delivery_keys = [keys.delivery(delivery_id) for delivery_id in delivery_ids]

        def heads(pipe: Pipeline, index: int) -> None:
            pipe.hmget(delivery_keys[index], list(_VIEW_FIELDS))
            pipe.lrange(keys.delivery_attempts(delivery_ids[index]), 0, -1)

        raw = await self._shards.pipelined(delivery_keys, heads)
        found: list[tuple[DeliveryView, list[str]]] = []
        for delivery_id, (values, listed) in zip(delivery_ids, raw, strict=True):
            view = DeliveryView.from_values(delivery_id, values)
            if view is not None:
                found.append((view, listed))

        def numbered(pipe: Pipeline, index: int) -> None:
            view = found[index][0]
            if view.attempt_count:
                first = max(1, view.attempt_count - KEPT_ATTEMPTS + 1)
                names = [f"{F.ATTEMPT}{n}" for n in range(first, view.attempt_count + 1)]
                pipe.hmget(keys.delivery(view.id), names)

        fields = await self._shards.pipelined([keys.delivery(v.id) for v, _ in found], numbered)
        return [
            (
                view,
                [json.loads(a) for a in listed]
                + [json.loads(a) for a in (attempts[0] if attempts else []) if a],
            )
            for (view, listed), attempts in zip(found, fields, strict=True)
        ]

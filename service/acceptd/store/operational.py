"""Operational events (core/events.py OPERATIONAL_EVENTS): what the dispatcher tells a
tenant's operations endpoints about delivery itself. Written to a shard's events stream like
a job's, with their data in the entry (the fan-out sends it as it is), for the tenants with
an endpoint subscribed to them (the shard's copy of the tenant's subscription counts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from acceptd.core import ids
from acceptd.core.clock import now_ms
from acceptd.core.jsonenc import compact
from acceptd.store import keys
from acceptd.store.layouts import flat
from acceptd.store.shards import Shards


@dataclass(frozen=True)
class OperationalEvent:
    """One event: `subject` (a delivery's id, an endpoint's) names its shard and is where its
    deliveries are listed; `about`, the endpoint it must not be sent to."""

    tenant: str
    event: str
    subject: str
    about: str | None
    data: dict[str, Any]

    def fields(self) -> list[str]:
        """Its entry in the events stream (store/lua/delivery_attempt.lua writes these)."""
        shard = ids.shard_of(self.subject)
        entry = {
            "msg": ids.new_id("msg", shard),
            "event": self.event,
            "tenant": self.tenant,
            "at": str(now_ms()),
            "subject": self.subject,
            "about": self.about or "",
            "data": compact(self.data),
        }
        return flat(entry)


async def subscribed(shards: Shards, tenant: str, event: str, subject: str) -> bool:
    """Whether the tenant has an endpoint subscribed to `event` (the copy of its counts on
    the shard `subject` names): what makes an event worth building."""
    shard = ids.shard_of(subject)
    key = keys.tenant_event_subscriptions(tenant, shard)
    wanted = await shards.of(shard).hget(key, event)  # type: ignore[misc]
    return int(wanted or 0) > 0


async def emit(shards: Shards, event: OperationalEvent) -> bool:
    """Writes the event if its tenant has an endpoint subscribed to it; True if written."""
    if not await subscribed(shards, event.tenant, event.event, event.subject):
        return False
    shard, fields = ids.shard_of(event.subject), event.fields()
    await shards.of(shard).xadd(
        keys.events_stream(shard), dict(zip(fields[::2], fields[1::2], strict=True))
    )
    return True

"""Registered webhook endpoints: URL, event filter, sealed secret, health and disabling."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from acceptd.core import ids
from acceptd.core.clock import now_ms
from acceptd.core.credentials import generate_secret, generate_signing_key
from acceptd.core.secretbox import SecretBox
from acceptd.store import keys
from acceptd.store.layouts import EndpointField as F
from acceptd.store.layouts import flat
from acceptd.store.scripts import Scripts
from acceptd.store.sealed import open_secrets, rotation_fields
from acceptd.store.shards import Shards
from acceptd.store.webhookcalls import (
    EndpointCreate,
    EndpointHealth,
    EndpointWrite,
    RecountSubs,
    SubsCopied,
    SubsCopy,
)

# Each try loses only to another change of the same tenant's endpoints in between.
RECOUNT_TRIES = 20


@dataclass(frozen=True)
class EndpointRecord:
    id: str
    tenant: str
    url: str
    events: list[str]
    description: str
    disabled: bool
    disabled_reason: str | None
    disabled_ms: int | None
    failing_since_ms: int | None
    created_ms: int
    updated_ms: int
    signing: str = "v1"
    payload: str = "full"
    public_key: str | None = None
    rate_limit_per_second: int | None = None
    ordering: str = "none"
    # Who made it: the API key's id, or the portal session's (an `endpoints` session may
    # change only what it made); None for endpoints made before this was recorded.
    created_by: str | None = None
    # The names of the headers sent with its webhooks (their values: `sealed_headers`,
    # opened by EndpointStore.headers_of only to send them).
    header_names: list[str] = field(default_factory=list)
    sealed_headers: str | None = None
    # Its own seconds between attempts, or None for ACCEPTD_WEBHOOK_RETRY_SCHEDULE.
    retry_schedule: list[float] | None = None
    # It gets only the events of jobs and batches with one of these; None: every event.
    channels: list[str] | None = None

    def serves(self, channels: list[str]) -> bool:
        """Whether an event of a subject with these channels is for this endpoint."""
        return self.channels is None or not set(self.channels).isdisjoint(channels)

    def of_channel(self, channel: str) -> bool:
        """Whether a portal session of `channel` manages it: exactly that channel's."""
        return self.channels == [channel]

    @property
    def thin(self) -> bool:
        return self.payload == "thin"

    @classmethod
    def from_hash(cls, endpoint_id: str, raw: dict[str, str]) -> EndpointRecord:
        def opt_int(name: F) -> int | None:
            return int(raw[name]) if raw.get(name) else None

        def opt_json(name: F) -> Any:
            return json.loads(raw[name]) if raw.get(name) else None

        return cls(
            id=endpoint_id,
            tenant=raw[F.TENANT],
            url=raw[F.URL],
            events=json.loads(raw[F.EVENTS]),
            description=raw.get(F.DESCRIPTION, ""),
            disabled=raw.get(F.DISABLED) == "1",
            disabled_reason=raw.get(F.DISABLED_REASON) or None,
            disabled_ms=opt_int(F.DISABLED_AT),
            failing_since_ms=opt_int(F.FAILING_SINCE),
            created_ms=int(raw[F.CREATED]),
            updated_ms=int(raw[F.UPDATED]),
            signing=raw.get(F.SIGNING, "v1"),
            payload=raw.get(F.PAYLOAD, "full"),
            public_key=raw.get(F.PUBLIC_KEY) or None,
            rate_limit_per_second=opt_int(F.RATE_LIMIT_PER_SECOND),
            ordering=raw.get(F.ORDERING, "none"),
            created_by=raw.get(F.CREATED_BY) or None,
            header_names=opt_json(F.HEADER_NAMES) or [],
            sealed_headers=raw.get(F.SEALED_HEADERS) or None,
            retry_schedule=opt_json(F.RETRY_SCHEDULE),
            channels=opt_json(F.CHANNELS),
        )


def _context(endpoint_id: str) -> str:
    return f"endpoint:{endpoint_id}"


def signs_with(signing: str, version: str) -> bool:
    """Whether a signing mode ("v1", "v1a", "v1+v1a") includes a signature version."""
    return version in signing.split("+")


def _headers_context(endpoint_id: str) -> str:
    return f"endpoint:{endpoint_id}:headers"


def _key_context(endpoint_id: str) -> str:
    return f"endpoint:{endpoint_id}:signing-key"


# Where its sealed secrets live, each with its predecessor through a rotation (store/sealed.py):
# the whsec_ secret (signing v1) and the Ed25519 private key (v1a).
_SECRET_FIELDS = [F.SECRET, F.PREVIOUS_SECRET, F.PREVIOUS_SECRET_UNTIL]
_KEY_FIELDS = [F.SIGNING_KEY, F.PREVIOUS_SIGNING_KEY, F.PREVIOUS_SIGNING_KEY_UNTIL]


def _channel_fields(channels: list[str] | None) -> dict[str, str]:
    """[] and None alike: no channels, every event."""
    return {F.CHANNELS: json.dumps(sorted(set(channels))) if channels else ""}


def _retry_fields(schedule: list[float] | None) -> dict[str, str]:
    return {F.RETRY_SCHEDULE: json.dumps(schedule) if schedule else ""}


class EndpointLimitError(Exception):
    """The tenant holds its limit of endpoints already; nothing was written."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"a tenant may register at most {limit} endpoints")
        self.limit = limit


class EndpointStore:
    def __init__(self, shards: Shards, scripts: Scripts, box: SecretBox) -> None:
        self._shards = shards
        self._redis = shards.control
        self._scripts = scripts
        self._box = box

    async def _recount(self, tenant: str) -> None:
        # The script rebuilds from the endpoints we name and refuses (0) when the set
        # changed since we read it, so a recount racing another change is done again.
        for _ in range(RECOUNT_TRIES):
            endpoint_ids: list[str] = sorted(
                await self._redis.smembers(keys.tenant_endpoints(tenant))  # type: ignore[misc]
            )
            counts = await self._scripts.recount_subs(
                RecountSubs(
                    tenant_endpoints=keys.tenant_endpoints(tenant),
                    counts=keys.tenant_subscription_counts(tenant),
                    pending=keys.SUBSCRIPTION_COPIES_PENDING,
                    endpoints=[keys.endpoint(i) for i in endpoint_ids],
                    tenant=tenant,
                    endpoint_ids=endpoint_ids,
                )
            )
            if counts:
                await self._copy_counts(tenant, counts)
                return
        raise RuntimeError(f"the endpoints of {tenant} kept changing while being counted")

    async def _copy_counts(self, tenant: str, counts: list[str]) -> None:
        """Each shard's copy of the counts (`~v` and its version first), read by its status
        scripts; then the tenant leaves the pending copies. A crash before that leaves it
        pending: `resync_pending` (the dispatcher's sweeper) writes them again."""
        await self._shards.across(
            lambda pipe, shard: self._scripts.subs_copy(
                SubsCopy(copy=keys.tenant_event_subscriptions(tenant, shard), counts=counts),
                client=pipe,
            )
        )
        await self._scripts.subs_copied(
            SubsCopied(pending=keys.SUBSCRIPTION_COPIES_PENDING, tenant=tenant, version=counts[1])
        )

    async def resync_pending(self) -> int:
        """Writes the copies of every tenant whose last rebuild's copies may be missing (a
        role died in between); returns how many tenants. One HGETALL when there are none."""
        pending: dict[str, str] = await self._redis.hgetall(  # type: ignore[misc]
            keys.SUBSCRIPTION_COPIES_PENDING
        )
        for tenant in pending:
            await self.resync_counts(tenant)
        return len(pending)

    async def resync_counts(self, tenant: str) -> None:
        """Writes the shards' copies of the tenant's counts again from the truth."""
        truth: dict[str, str] = await self._redis.hgetall(  # type: ignore[misc]
            keys.tenant_subscription_counts(tenant)
        )
        version = truth.pop("~v", None)
        if version is not None:
            await self._copy_counts(tenant, ["~v", version, *flat(truth)])

    async def count(self, tenant: str) -> int:
        found: int = await self._redis.scard(keys.tenant_endpoints(tenant))  # type: ignore[misc]
        return found

    def _key_pair_fields(self, endpoint_id: str, old_sealed: str | None) -> dict[str, str]:
        """A new Ed25519 key pair: the private half sealed, the previous one (if any) kept
        signing beside it through the rotation window, like a secret."""
        private, public = generate_signing_key()
        sealed = rotation_fields(
            self._box, _key_context(endpoint_id), private, old_sealed, _KEY_FIELDS
        )
        return sealed | {F.PUBLIC_KEY: public}

    async def create(
        self,
        tenant: str,
        url: str,
        events: list[str],
        description: str,
        *,
        signing: str = "v1",
        payload: str = "full",
        rate_limit_per_second: int | None = None,
        ordering: str = "none",
        created_by: str | None = None,
        limit: int = 0,
        headers: dict[str, str] | None = None,
        retry_schedule: list[float] | None = None,
        channels: list[str] | None = None,
    ) -> tuple[EndpointRecord, str]:
        """A new endpoint and its secret; EndpointLimitError if the tenant already holds
        `limit` endpoints (0: no limit), checked in the same step as the write."""
        endpoint_id, secret, now = ids.new_id("ep"), generate_secret(), now_ms()
        fields = {
            F.TENANT: tenant,
            F.URL: url,
            F.EVENTS: json.dumps(events),
            F.DESCRIPTION: description,
            F.CREATED: str(now),
            F.UPDATED: str(now),
            F.SIGNING: signing,
            F.PAYLOAD: payload,
            F.RATE_LIMIT_PER_SECOND: str(rate_limit_per_second or ""),
            F.ORDERING: ordering,
            F.CREATED_BY: created_by or "",
            **rotation_fields(self._box, _context(endpoint_id), secret, None, _SECRET_FIELDS),
            **self._header_fields(endpoint_id, headers or {}),
            **_retry_fields(retry_schedule),
            **_channel_fields(channels),
        }
        if signs_with(signing, "v1a"):
            fields.update(self._key_pair_fields(endpoint_id, None))
        created: int = await self._scripts.endpoint_create(
            EndpointCreate(
                endpoint=keys.endpoint(endpoint_id),
                tenant_endpoints=keys.tenant_endpoints(tenant),
                limit=limit,
                endpoint_id=endpoint_id,
                fields=flat(fields),
            )
        )
        if not created:
            raise EndpointLimitError(limit)
        await self._recount(tenant)
        record = await self.get(endpoint_id)
        assert record is not None
        return record, secret

    async def get(self, endpoint_id: str, tenant: str | None = None) -> EndpointRecord | None:
        raw: dict[str, str] = await self._redis.hgetall(keys.endpoint(endpoint_id))  # type: ignore[misc]
        if not raw or (tenant is not None and raw.get(F.TENANT) != tenant):
            return None
        return EndpointRecord.from_hash(endpoint_id, raw)

    async def for_tenant(self, tenant: str) -> list[EndpointRecord]:
        endpoint_ids = sorted(await self._redis.smembers(keys.tenant_endpoints(tenant)))  # type: ignore[misc]
        async with self._redis.pipeline(transaction=False) as pipe:
            for endpoint_id in endpoint_ids:
                pipe.hgetall(keys.endpoint(endpoint_id))
            raws: list[dict[str, str]] = await pipe.execute()
        return [
            EndpointRecord.from_hash(i, raw)
            for i, raw in zip(endpoint_ids, raws, strict=True)
            if raw and raw.get(F.TENANT) == tenant
        ]

    async def update(
        self,
        endpoint_id: str,
        tenant: str,
        *,
        url: str | None = None,
        events: list[str] | None = None,
        description: str | None = None,
        disabled: bool | None = None,
        signing: str | None = None,
        payload: str | None = None,
        rate_limit_per_second: int | None = None,
        ordering: str | None = None,
        headers: dict[str, str] | None = None,
        retry_schedule: list[float] | None = None,
        channels: list[str] | None = None,
    ) -> EndpointRecord | None:
        """Changes what is not None; `headers` replaces the whole set ({} removes them),
        `retry_schedule` [] goes back to the global schedule."""
        current = await self.get(endpoint_id, tenant)
        if current is None:
            return None
        fields: dict[str, str] = {F.UPDATED: str(now_ms())}
        if signing is not None:
            fields[F.SIGNING] = signing
            if signs_with(signing, "v1a") and current.public_key is None:
                fields.update(self._key_pair_fields(endpoint_id, None))
        if payload is not None:
            fields[F.PAYLOAD] = payload
        if rate_limit_per_second is not None:
            fields[F.RATE_LIMIT_PER_SECOND] = str(rate_limit_per_second or "")
        if ordering is not None:
            fields[F.ORDERING] = ordering
        if url is not None:
            fields[F.URL] = url
        if events is not None:
            fields[F.EVENTS] = json.dumps(events)
        if description is not None:
            fields[F.DESCRIPTION] = description
        if headers is not None:
            fields.update(self._header_fields(endpoint_id, headers))
        if retry_schedule is not None:
            fields.update(_retry_fields(retry_schedule))
        if channels is not None:
            fields.update(_channel_fields(channels))
        if disabled is True:
            fields[F.DISABLED] = "1"
            fields[F.DISABLED_REASON] = "disabled by the API"
            fields[F.DISABLED_AT] = fields[F.UPDATED]
        elif disabled is False:
            fields[F.DISABLED] = "0"
        if not await self._write(endpoint_id, tenant, fields, enabled=disabled is False):
            return None  # deleted since it was read
        await self._recount(tenant)
        return await self.get(endpoint_id, tenant)

    async def _write(
        self, endpoint_id: str, tenant: str, fields: dict[str, str], *, enabled: bool = False
    ) -> bool:
        """Sets `fields` on the endpoint if it is still the tenant's (lua/endpoint_write.lua):
        a change racing its deletion leaves nothing behind. `enabled`: why it was disabled
        goes too."""
        written: int = await self._scripts.endpoint_write(
            EndpointWrite(
                endpoint=keys.endpoint(endpoint_id),
                tenant=tenant,
                enabled="1" if enabled else "0",
                fields=list(fields.items()),
            )
        )
        return bool(written)

    async def delete(self, endpoint_id: str, tenant: str) -> bool:
        if await self.get(endpoint_id, tenant) is None:
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.endpoint(endpoint_id))
            pipe.srem(keys.tenant_endpoints(tenant), endpoint_id)
            await pipe.execute()
        await self._recount(tenant)
        return True

    async def rotate_secret(
        self, endpoint_id: str, tenant: str
    ) -> tuple[EndpointRecord, str] | None:
        if await self.get(endpoint_id, tenant) is None:
            return None
        old, old_key, signing = await self._redis.hmget(  # type: ignore[misc]
            keys.endpoint(endpoint_id), [F.SECRET, F.SIGNING_KEY, F.SIGNING]
        )
        secret = generate_secret()
        fields = rotation_fields(self._box, _context(endpoint_id), secret, old, _SECRET_FIELDS)
        if signs_with(signing or "v1", "v1a"):
            fields.update(self._key_pair_fields(endpoint_id, old_key))
        if not await self._write(endpoint_id, tenant, {**fields, F.UPDATED: str(now_ms())}):
            return None  # deleted since it was read
        record = await self.get(endpoint_id, tenant)
        if record is None:
            return None  # deleted since
        return record, secret

    def _header_fields(self, endpoint_id: str, headers: dict[str, str]) -> dict[str, str]:
        """The record's fields for `headers`: their names in the clear (shown back), the
        names and values sealed together under the master key ("" for none)."""
        if not headers:
            return {F.HEADER_NAMES: "", F.SEALED_HEADERS: ""}
        sealed = self._box.encrypt(json.dumps(headers), _headers_context(endpoint_id))
        return {F.HEADER_NAMES: json.dumps(list(headers)), F.SEALED_HEADERS: sealed}

    def headers_of(self, endpoint: EndpointRecord) -> dict[str, str]:
        """The headers to send with each webhook to the endpoint, opened."""
        if not endpoint.sealed_headers:
            return {}
        opened: dict[str, str] = json.loads(
            self._box.decrypt(endpoint.sealed_headers, _headers_context(endpoint.id))
        )
        return opened

    async def signing_secrets(self, endpoint_id: str) -> list[str]:
        """What signs its webhooks, by its signing mode: whsec_ secrets (v1) and whsk_ keys
        (v1a), each with its predecessor during a rotation."""
        names = [*_SECRET_FIELDS, *_KEY_FIELDS, F.SIGNING]
        values = await self._redis.hmget(keys.endpoint(endpoint_id), names)  # type: ignore[misc]
        mode = values[-1] or "v1"
        found = []
        if signs_with(mode, "v1"):
            found += open_secrets(self._box, _context(endpoint_id), *values[0:3])
        if signs_with(mode, "v1a"):
            found += open_secrets(self._box, _key_context(endpoint_id), *values[3:6])
        return found

    async def record_success(self, endpoint_id: str) -> None:
        await self._redis.hdel(keys.endpoint(endpoint_id), F.FAILING_SINCE)  # type: ignore[misc]

    async def record_failure(self, endpoint_id: str, at_ms: int) -> int:
        """Marks the start of a failing streak (kept until a success); returns when it began
        (`at_ms` for an endpoint deleted meanwhile, which stays deleted)."""
        since: int = await self._scripts.endpoint_health(
            EndpointHealth(
                endpoint=keys.endpoint(endpoint_id), kind="failure", now_ms=at_ms, reason=""
            )
        )
        return since or at_ms

    async def disable(self, endpoint: EndpointRecord, reason: str) -> bool:
        """Disable it, unless it was deleted meanwhile (then it stays deleted) or is disabled
        already (its first reason stays); True when this disabled it."""
        done = await self._scripts.endpoint_health(
            EndpointHealth(
                endpoint=keys.endpoint(endpoint.id), kind="disable", now_ms=now_ms(), reason=reason
            )
        )
        if done == 1:
            await self._recount(endpoint.tenant)
        return bool(done == 1)

"""A tenant's API keys: several, each named, with a scope and a last-used time, each
revocable on its own. Only a digest of a key is stored; the key is shown once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from acceptd.core import ids
from acceptd.core.clock import now_ms
from acceptd.core.credentials import generate_api_key
from acceptd.store import keys
from acceptd.store.capped import CapReachedError
from acceptd.store.scriptcalls import ApiKeyCreate
from acceptd.store.scripts import layouts_source
from acceptd.store.tracedscript import TracedScript

# admin and standard are API keys; the portal scopes are sessions made from portal links
# (store/portal.py): `portal` sees the tenant's console, `portal-endpoints` only its endpoints
# and their deliveries. No session can manage keys or make links. An `operator` key is an
# admin key of its tenant that also sees the whole system (every tenant's queues, the
# processes): only the operator's own tools make one (`acceptd tenants operator-key`, or the
# bootstrap key with ACCEPTD_BOOTSTRAP_OPERATOR), never POST /v1/api-keys.
Scope = Literal["admin", "standard", "portal", "portal-endpoints", "operator"]
SCOPES: tuple[Scope, ...] = ("admin", "standard")
ALL_SCOPES: tuple[Scope, ...] = ("admin", "standard", "portal", "portal-endpoints", "operator")
ADMIN_SCOPES: tuple[Scope, ...] = ("admin", "operator")
# A key's last use is written at most this often per key and API process.
TOUCH_EVERY_MS = 60_000


PORTAL_SCOPES: tuple[Scope, ...] = ("portal", "portal-endpoints")


@dataclass(frozen=True)
class KeyIdentity:
    """Who a presented key is: its tenant, its id (None for a key made before key ids; a
    portal session's own id for a session), and what it may do. A portal session also names
    the API key that minted its link (`minted_by`): it works only while that key does."""

    tenant: str
    key_id: str | None
    scope: Scope
    minted_by: str | None = None
    # A portal session of one channel: the endpoints of that channel only (api/endpoints.py).
    channel: str | None = None

    @property
    def is_session(self) -> bool:
        return self.scope in PORTAL_SCOPES

    def encode(self) -> str:
        encoded = f"{self.tenant} {self.key_id or '-'} {self.scope}"
        if self.channel:  # channels are tokens (wire/models.py Channel): no spaces
            return f"{encoded} {self.minted_by or '-'} {self.channel}"
        return f"{encoded} {self.minted_by}" if self.minted_by else encoded

    @classmethod
    def decode(cls, value: str) -> KeyIdentity:
        tenant, _, rest = value.partition(" ")
        if not rest:  # written before keys had ids: the tenant's one key, all powers
            return cls(tenant, None, "admin")
        key_id, _, rest = rest.partition(" ")
        scope, _, rest = rest.partition(" ")
        minted_by, _, channel = rest.partition(" ")
        # An unknown scope gets the least power, never the most.
        known: Scope = next((s for s in ALL_SCOPES if s == scope), "portal-endpoints")
        return cls(
            tenant,
            None if key_id == "-" else key_id,
            known,
            None if minted_by in ("", "-") else minted_by,
            channel or None,
        )


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    name: str
    scope: Scope
    created_ms: int
    last_used_ms: int | None


# Read once: a store is made per request that exchanges a portal link.
_CREATE_SOURCE = layouts_source(ApiKeyCreate)
# API keys one tenant may hold at once (they never expire; revoked ones do not count).
MAX_KEYS_PER_TENANT = 200


class ApiKeyStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._touched: dict[str, int] = {}
        # On `redis`, the control plane's client, which every key here is on.
        self._create_script = TracedScript(
            ApiKeyCreate, redis.register_script(_CREATE_SOURCE), shards=None
        )

    async def identify(self, raw_key: str) -> KeyIdentity | None:
        """Who the key (or portal session) is; None when unknown, revoked, expired, or a
        session whose minting key was revoked since (checked here, at every lookup, so no
        session outlives its key whatever raced the revocation)."""
        value: str | None = await self._redis.get(keys.api_key(raw_key))
        if not value:
            return None
        identity = KeyIdentity.decode(value)
        if identity.minted_by is not None and not await self.exists(
            identity.tenant, identity.minted_by
        ):
            return None
        return identity

    async def exists(self, tenant: str, key_id: str) -> bool:
        """Whether the tenant still has this key (not revoked)."""
        found: bool = await self._redis.hexists(keys.tenant_api_keys(tenant), key_id)  # type: ignore[misc]
        return bool(found)

    async def create(
        self, tenant: str, name: str, scope: Scope, raw_key: str | None = None
    ) -> tuple[ApiKeyRecord, str]:
        """A new key for the tenant (or `raw_key` registered as one, for bootstrap); at most
        MAX_KEYS_PER_TENANT (CapReachedError): keys never expire, and each is stored."""
        key_id, raw = ids.new_id("key"), raw_key or generate_api_key()
        record = ApiKeyRecord(key_id, name, scope, now_ms(), None)
        entry = {
            "name": name,
            "scope": scope,
            "digest": keys.digest(raw),
            "created": record.created_ms,
        }
        written = await self._create_script(
            ApiKeyCreate(
                tenant_keys=keys.tenant_api_keys(tenant),
                lookup=keys.api_key(raw),
                cap=MAX_KEYS_PER_TENANT,
                key_id=key_id,
                entry=json.dumps(entry),
                identity=KeyIdentity(tenant, key_id, scope).encode(),
            )
        )
        if not written:
            raise CapReachedError("API keys", MAX_KEYS_PER_TENANT)
        return record, raw

    async def list(self, tenant: str) -> list[ApiKeyRecord]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.tenant_api_keys(tenant))
            pipe.hgetall(keys.tenant_api_keys_used(tenant))
            entries, used = await pipe.execute()
        found = []
        for key_id, raw in sorted(entries.items()):
            entry = json.loads(raw)
            last = used.get(key_id)
            found.append(
                ApiKeyRecord(
                    key_id,
                    entry["name"],
                    entry["scope"],
                    int(entry["created"]),
                    int(last) if last else None,
                )
            )
        return found

    async def revoke(self, tenant: str, key_id: str) -> bool:
        """The key stops working at once in Redis (API processes cache a key at most a
        second). False when the tenant has no such key."""
        raw: str | None = await self._redis.hget(keys.tenant_api_keys(tenant), key_id)  # type: ignore[misc]
        if raw is None:
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.api_key_by_digest(json.loads(raw)["digest"]))
            pipe.hdel(keys.tenant_api_keys(tenant), key_id)
            pipe.hdel(keys.tenant_api_keys_used(tenant), key_id)
            await pipe.execute()
        return True

    async def revoke_by_digest(self, tenant: str, digest: str) -> None:
        """Forget a key known only by its digest (a replaced bootstrap key)."""
        await self._redis.delete(keys.api_key_by_digest(digest))
        for record_id, raw in (await self._redis.hgetall(keys.tenant_api_keys(tenant))).items():  # type: ignore[misc]
            if json.loads(raw)["digest"] == digest:
                await self._redis.hdel(keys.tenant_api_keys(tenant), record_id)  # type: ignore[misc]

    async def touch(self, identity: KeyIdentity) -> None:
        """Record a use, at most once a minute per key in this process."""
        if identity.key_id is None or identity.is_session:
            return
        now = now_ms()
        if now - self._touched.get(identity.key_id, 0) < TOUCH_EVERY_MS:
            return
        if len(self._touched) > 100_000:
            self._touched.clear()
        self._touched[identity.key_id] = now
        await self._redis.hset(  # type: ignore[misc]
            keys.tenant_api_keys_used(identity.tenant), identity.key_id, str(now)
        )

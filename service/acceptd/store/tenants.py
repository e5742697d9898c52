"""Tenants: hashed API keys and encrypted webhook signing secrets (with a rotation window)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from redis.asyncio import Redis

from acceptd.core.clock import now_ms
from acceptd.core.credentials import generate_secret
from acceptd.core.secretbox import SecretBox
from acceptd.store import keys
from acceptd.store.apikeys import ApiKeyStore, Scope
from acceptd.store.fairshare import MAX_WEIGHT, TenantLimits
from acceptd.store.sealed import SECRET_FIELDS, open_secrets, rotation_fields

TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class TenantExistsError(Exception):
    pass


@dataclass(frozen=True)
class TenantCredentials:
    tenant: str
    api_key: str
    secret: str


class TenantStore:
    def __init__(self, redis: Redis, box: SecretBox) -> None:
        self._redis = redis
        self._box = box
        self.keys = ApiKeyStore(redis)

    def _seal(self, tenant: str, secret: str) -> str:
        return self._box.encrypt(secret, f"tenant:{tenant}")

    async def create(self, name: str) -> TenantCredentials:
        if not TENANT_NAME.match(name):
            raise ValueError("tenant names are 1-63 of a-z, 0-9, _ and -, starting alphanumeric")
        secret = generate_secret()
        created = await self._redis.hsetnx(keys.tenant(name), "created", str(now_ms()))  # type: ignore[misc]
        if not created:
            raise TenantExistsError(name)
        await self._write_secret(name, secret)
        _, api_key = await self.keys.create(name, "default", "admin")
        return TenantCredentials(name, api_key, secret)

    async def ensure(self, name: str, api_key: str, secret: str, scope: Scope = "admin") -> None:
        """Bootstrap: the tenant exists with this key (a key of `scope` named "bootstrap")
        afterwards, and a bootstrap key it replaces stops working. `secret` becomes its
        signing secret only if it has none yet: a secret rotated since is kept, or every
        restart would undo the rotation and receivers that moved on would refuse everything."""
        digest = keys.digest(api_key)
        old_digest = await self._redis.hget(keys.tenant(name), "api_key_digest")  # type: ignore[misc]
        await self._redis.hsetnx(keys.tenant(name), "created", str(now_ms()))  # type: ignore[misc]
        current = await self.keys.identify(api_key)
        # A new key replaces the old; the same key changes scope only while it still works
        # (a bootstrap key revoked through the API stays revoked).
        rescoped = old_digest == digest and current is not None and current.scope != scope
        if old_digest != digest or rescoped:
            if old_digest:
                await self.keys.revoke_by_digest(name, old_digest)
            await self.keys.create(name, "bootstrap", scope, raw_key=api_key)
            await self._redis.hset(keys.tenant(name), "api_key_digest", digest)  # type: ignore[misc]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(keys.tenant(name), "secret", self._seal(name, secret))
            pipe.sadd(keys.TENANTS, name)
            await pipe.execute()

    async def _write_secret(self, name: str, secret: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.tenant(name), "secret", self._seal(name, secret))
            pipe.sadd(keys.TENANTS, name)
            await pipe.execute()

    async def operator_key(self, name: str, key_name: str) -> str:
        """A new operator key of tenant `name` (shown once): only the operator's own tools
        call this, never a tenant's API request."""
        _, api_key = await self.keys.create(name, key_name, "operator")
        return api_key

    async def names(self) -> list[str]:
        found: set[str] = await self._redis.smembers(keys.TENANTS)  # type: ignore[misc]
        return sorted(found)

    async def rotate_secret(self, name: str) -> str:
        """A new signing secret; the previous one keeps signing beside it for 24 h, so
        receivers can switch over without missing a webhook."""
        old: str | None = await self._redis.hget(keys.tenant(name), "secret")  # type: ignore[misc]
        secret = generate_secret()
        fields = rotation_fields(self._box, f"tenant:{name}", secret, old)
        await self._redis.hset(keys.tenant(name), mapping=fields)  # type: ignore[misc]
        return secret

    async def signing_secrets(self, name: str) -> list[str]:
        """The tenant's current secret, then the previous one while its rotation window lasts."""
        fields = await self._redis.hmget(keys.tenant(name), SECRET_FIELDS)  # type: ignore[misc]
        return open_secrets(self._box, f"tenant:{name}", *fields)

    async def limits(self, name: str) -> TenantLimits:
        weight, cap = await self._redis.hmget(keys.tenant(name), ["weight", "max_running"])  # type: ignore[misc]
        return TenantLimits(int(weight or 1), int(cap) if cap is not None else None)

    async def set_limits(self, name: str, limits: TenantLimits) -> None:
        """Records the tenant's share of the workers (store/fairshare.py); the caller
        applies it to the shards (fairshare.apply_limits), which is what workers read."""
        if not 1 <= limits.weight <= MAX_WEIGHT:
            raise ValueError(f"a weight is 1-{MAX_WEIGHT}")
        if limits.max_running is not None and limits.max_running < 1:
            raise ValueError("max running is at least 1 (or none)")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.tenant(name), "weight", str(limits.weight))
            if limits.max_running is None:
                pipe.hdel(keys.tenant(name), "max_running")
            else:
                pipe.hset(keys.tenant(name), "max_running", str(limits.max_running))
            await pipe.execute()

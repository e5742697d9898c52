"""Tenants: hashed API keys and encrypted webhook signing secrets (with a rotation window)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from redis.asyncio import Redis

from acceptd.core.clock import now_ms
from acceptd.core.credentials import generate_api_key, generate_secret
from acceptd.core.secretbox import SecretBox
from acceptd.store import keys
from acceptd.store.sealed import SECRET_FIELDS, open_secrets

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

    def _seal(self, tenant: str, secret: str) -> str:
        return self._box.encrypt(secret, f"tenant:{tenant}")

    async def create(self, name: str) -> TenantCredentials:
        if not TENANT_NAME.match(name):
            raise ValueError("tenant names are 1-63 of a-z, 0-9, _ and -, starting alphanumeric")
        api_key, secret = generate_api_key(), generate_secret()
        created = await self._redis.hsetnx(keys.tenant(name), "created", str(now_ms()))  # type: ignore[misc]
        if not created:
            raise TenantExistsError(name)
        await self._write(name, api_key, secret)
        return TenantCredentials(name, api_key, secret)

    async def ensure(self, name: str, api_key: str, secret: str) -> None:
        """Bootstrap: the tenant exists with exactly this key and secret afterwards."""
        old_digest = await self._redis.hget(keys.tenant(name), "api_key_digest")  # type: ignore[misc]
        async with self._redis.pipeline(transaction=True) as pipe:
            if old_digest and old_digest != keys.digest(api_key):
                pipe.delete(keys.api_key_by_digest(old_digest))
            pipe.hsetnx(keys.tenant(name), "created", str(now_ms()))
            await pipe.execute()
        await self._write(name, api_key, secret)

    async def _write(self, name: str, api_key: str, secret: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                keys.tenant(name),
                mapping={
                    "api_key_digest": keys.digest(api_key),
                    "secret": self._seal(name, secret),
                },
            )
            pipe.set(keys.api_key(api_key), name)
            pipe.sadd(keys.TENANTS, name)
            await pipe.execute()

    async def tenant_for_api_key(self, api_key: str) -> str | None:
        name: str | None = await self._redis.get(keys.api_key(api_key))
        return name

    async def signing_secrets(self, name: str) -> list[str]:
        """The tenant's current secret, then the previous one while its rotation window lasts."""
        fields = await self._redis.hmget(keys.tenant(name), SECRET_FIELDS)  # type: ignore[misc]
        return open_secrets(self._box, f"tenant:{name}", *fields)

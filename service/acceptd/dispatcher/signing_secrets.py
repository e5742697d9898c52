"""The decrypted signing secrets of tenants and endpoints, kept briefly in memory.

A rotation keeps the old secret valid for 24 h, so a new one joining the signatures a few
seconds late breaks no receiver; the cache saves a read and a decryption per attempt."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from acceptd.core.ttlcache import TtlCache
from acceptd.store.endpoints import EndpointStore
from acceptd.store.tenants import TenantStore

CACHE_SECONDS = 5.0
CACHE_MAX = 10_000


class SigningSecrets:
    def __init__(self, tenants: TenantStore, endpoints: EndpointStore) -> None:
        self._tenants = tenants
        self._endpoints = endpoints
        self._cache: TtlCache[str, list[str]] = TtlCache(CACHE_SECONDS, CACHE_MAX)

    async def for_endpoint(self, endpoint_id: str) -> list[str]:
        return await self._cached(
            f"endpoint:{endpoint_id}", self._endpoints.signing_secrets, endpoint_id
        )

    async def for_tenant(self, tenant: str) -> list[str]:
        """What signs a job's own callback_url: the tenant's secret."""
        return await self._cached(f"tenant:{tenant}", self._tenants.signing_secrets, tenant)

    async def _cached(
        self, key: str, load: Callable[[str], Awaitable[list[str]]], owner: str
    ) -> list[str]:
        found = self._cache.get(key)
        if found is None:
            found = await load(owner)
            self._cache.put(key, found)
        return found

"""The decrypted signing secrets of tenants and endpoints, kept briefly in memory.

A rotation keeps the old secret valid for 24 h, so a new one joining the signatures a few
seconds late breaks no receiver; the cache saves a read and a decryption per attempt."""

from __future__ import annotations

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
        key = f"endpoint:{endpoint_id}"
        found = self._cache.get(key)
        if found is None:
            found = await self._endpoints.signing_secrets(endpoint_id)
            self._cache.put(key, found)
        return found

    async def for_tenant(self, tenant: str) -> list[str]:
        """What signs a job's own callback_url: the tenant's secret."""
        key = f"tenant:{tenant}"
        found = self._cache.get(key)
        if found is None:
            found = await self._tenants.signing_secrets(tenant)
            self._cache.put(key, found)
        return found

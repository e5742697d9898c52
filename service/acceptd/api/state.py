"""Typed application state (web.AppKey) shared by the API's modules."""

from __future__ import annotations

from aiohttp import web

from acceptd.core.settings import Settings
from acceptd.core.ttlcache import TtlCache
from acceptd.jobs.registry import JobRegistry
from acceptd.runtime import opsserver
from acceptd.runtime.ssrf import AddressPolicy
from acceptd.store.batches import BatchStore
from acceptd.store.changes import JobChanges
from acceptd.store.deliveries import DeliveryStore
from acceptd.store.endpoints import EndpointStore
from acceptd.store.idempotency import IdempotencyStore
from acceptd.store.jobs import JobStore
from acceptd.store.ratelimit import RateLimiter
from acceptd.store.tenants import TenantStore

SETTINGS = web.AppKey("settings", Settings)
REGISTRY = web.AppKey("registry", JobRegistry)
# The ops handlers (acceptd.runtime.opsserver) read Redis under this same key.
REDIS = opsserver.REDIS
JOBS = web.AppKey("jobs", JobStore)
IDEMPOTENCY = web.AppKey("idempotency", IdempotencyStore)
BATCHES = web.AppKey("batches", BatchStore)
TENANTS = web.AppKey("tenants", TenantStore)
ENDPOINTS = web.AppKey("endpoints", EndpointStore)
DELIVERIES = web.AppKey("deliveries", DeliveryStore)
CALLBACK_POLICY = web.AppKey("callback_policy", AddressPolicy)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
CHANGES = web.AppKey("changes", JobChanges)
API_KEY_CACHE = web.AppKey("api_key_cache", TtlCache[str, str])

# Per-request: the authenticated tenant's name.
TENANT = web.RequestKey("tenant", str)

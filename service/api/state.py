"""Typed application state (web.AppKey) shared by the API's modules."""

from __future__ import annotations

from aiohttp import web

from service import opsserver
from service.jobs.registry import JobRegistry
from service.settings import Settings
from service.store.batches import BatchStore
from service.store.changes import JobChanges
from service.store.deliveries import DeliveryStore
from service.store.endpoints import EndpointStore
from service.store.jobs import JobStore
from service.store.ratelimit import RateLimiter
from service.store.tenants import TenantStore
from service.ttlcache import TtlCache
from service.webhooks.ssrf import AddressPolicy

SETTINGS = web.AppKey("settings", Settings)
REGISTRY = web.AppKey("registry", JobRegistry)
# The ops handlers (service.opsserver) read Redis under this same key.
REDIS = opsserver.REDIS
JOBS = web.AppKey("jobs", JobStore)
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

"""Typed application state (web.AppKey) shared by the API's modules."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractResolver

from acceptd.core.caps import ByteBudget, ConcurrencyCaps
from acceptd.core.settings import Settings
from acceptd.core.ssrf import AddressPolicy
from acceptd.core.ttlcache import TtlCache
from acceptd.jobs.registry import JobRegistry
from acceptd.runtime import opsserver
from acceptd.store.apikeys import KeyIdentity
from acceptd.store.authfailures import AuthFailures
from acceptd.store.batches import BatchStore
from acceptd.store.changes import JobChanges
from acceptd.store.deliveries import DeliveryStore
from acceptd.store.durability import Durability
from acceptd.store.endpoints import EndpointStore
from acceptd.store.idempotency import IdempotencyStore
from acceptd.store.jobs import JobStore
from acceptd.store.ratelimit import RateLimiter
from acceptd.store.schedules import ScheduleStore
from acceptd.store.tenants import TenantStore

SETTINGS = web.AppKey("settings", Settings)
REGISTRY = web.AppKey("registry", JobRegistry)
# The ops handlers (acceptd.runtime.opsserver) read Redis under this same key.
REDIS = opsserver.REDIS  # the control plane's client (store/shards.py)
SHARDS = opsserver.SHARDS
JOBS = web.AppKey("jobs", JobStore)
IDEMPOTENCY = web.AppKey("idempotency", IdempotencyStore)
BATCHES = web.AppKey("batches", BatchStore)
SCHEDULES = web.AppKey("schedules", ScheduleStore)
TENANTS = web.AppKey("tenants", TenantStore)
ENDPOINTS = web.AppKey("endpoints", EndpointStore)
DELIVERIES = web.AppKey("deliveries", DeliveryStore)
CALLBACK_POLICY = web.AppKey("callback_policy", AddressPolicy)
RESOLVER = web.AppKey("resolver", AbstractResolver)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
DURABILITY = web.AppKey("durability", Durability)
ADDRESS_LIMITER = web.AppKey("address_limiter", RateLimiter)
# Test events per tenant (api/endpoints.py): each is a delivery kept for the retention.
TEST_EVENT_LIMITER = web.AppKey("test_event_limiter", RateLimiter)
AUTH_FAILURES = web.AppKey("auth_failures", AuthFailures)
# Long-polls and SSE streams held open per tenant (this process).
WAITERS = web.AppKey("waiters", ConcurrencyCaps)
# Requests in flight per client address on the routes that need no API key (this process).
IN_FLIGHT_BY_ADDRESS = web.AppKey("in_flight_by_address", ConcurrencyCaps)
# And of all of them together (this process), under one key.
IN_FLIGHT_KEYLESS = web.AppKey("in_flight_keyless", ConcurrencyCaps)
# Bytes of keyless bodies being read and handled, all callers together (this process).
KEYLESS_BODIES = web.AppKey("keyless_bodies", ByteBudget)
CHANGES = web.AppKey("changes", JobChanges)
API_KEY_CACHE = web.AppKey("api_key_cache", TtlCache[str, KeyIdentity])

# Per-request: the authenticated tenant's name.
TENANT = web.RequestKey("tenant", str)
# Per-request: the key it came with (its id and scope).
KEY = web.RequestKey("key", KeyIdentity)
# The body, once read (api/body.py): the keyless routes read it before their handler runs.
RAW_BODY = web.RequestKey("raw_body", bytes)
# What reading it took from KEYLESS_BODIES, given back when the request is done.
BODY_BYTES_HELD = web.RequestKey("body_bytes_held", int)

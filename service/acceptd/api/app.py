"""The API's app factory, `create_app(settings)`; what it opens at start, cleanup_ctx closes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib.metadata import version
from typing import Any

from aiohttp import web

from acceptd.api import ops, state
from acceptd.api.body import keyless_body_limit
from acceptd.api.endpoints import TEST_EVENTS_PER_RETENTION
from acceptd.api.middlewares import (
    API_KEY_CACHE_MAX,
    API_KEY_CACHE_SECONDS,
    auth_middleware,
    metrics_middleware,
    problem_middleware,
    request_id_middleware,
)
from acceptd.api.openapi import build_openapi
from acceptd.api.routes import ROUTES, register
from acceptd.console import serve as console
from acceptd.core.caps import ByteBudget, ConcurrencyCaps
from acceptd.core.settings import Settings
from acceptd.core.ssrf import AddressPolicy, async_resolver
from acceptd.core.ttlcache import TtlCache
from acceptd.jobs.registry import JobRegistry
from acceptd.runtime import opsserver
from acceptd.store.authfailures import AuthFailures
from acceptd.store.batches import BatchStore
from acceptd.store.bootstrap import bootstrap_tenant, secret_box
from acceptd.store.changes import JobChanges
from acceptd.store.connection import open_shards
from acceptd.store.deliveries import DeliveryStore
from acceptd.store.durability import Durability
from acceptd.store.endpoints import EndpointStore
from acceptd.store.idempotency import IdempotencyStore
from acceptd.store.jobs import JobStore
from acceptd.store.ratelimit import RateLimiter
from acceptd.store.schedules import ScheduleStore
from acceptd.store.scripts import Scripts
from acceptd.store.shards import check_shard_count
from acceptd.store.tenants import TenantStore


def handler_options(settings: Settings) -> dict[str, Any]:
    """What the HTTP server of `create_app` runs with, wherever it is served."""
    # aiohttp closes a connection that has no complete request this long after it opened
    # or after its last answer: trickled headers hold a socket no longer than this.
    return {"keepalive_timeout": settings.http_keepalive_seconds}


def create_app(settings: Settings, registry: JobRegistry | None = None) -> web.Application:
    app = web.Application(
        middlewares=[
            request_id_middleware,
            metrics_middleware,
            problem_middleware,
            auth_middleware,
        ],
        # Leave headroom over the JSON limit so read_json, not the transport, reports it.
        client_max_size=settings.max_body_bytes + 1,
    )
    app[state.SETTINGS] = settings
    app[state.REGISTRY] = registry or JobRegistry.from_modules(settings.job_modules)
    app[state.CALLBACK_POLICY] = AddressPolicy.build(
        settings.allow_private_callbacks, settings.callback_allow_cidrs
    )
    app[state.API_KEY_CACHE] = TtlCache(API_KEY_CACHE_SECONDS, API_KEY_CACHE_MAX)
    app[state.IN_FLIGHT_BY_ADDRESS] = ConcurrencyCaps(settings.public_concurrency_per_address)
    app[state.IN_FLIGHT_KEYLESS] = ConcurrencyCaps(settings.public_concurrency)
    # Each caller holds at most one full body's worth: a few addresses cannot fill it.
    app[state.KEYLESS_BODIES] = ByteBudget(
        settings.public_body_buffer_bytes, per_key=keyless_body_limit(settings)
    )
    app[state.WAITERS] = ConcurrencyCaps(settings.max_waiters_per_tenant)
    app[ops.OPENAPI] = ops.encode(build_openapi(ROUTES, version("acceptd")))
    app[ops.OPENAPI_WITH_JOBS] = ops.encode(
        build_openapi(ROUTES, version("acceptd"), app[state.REGISTRY])
    )
    register(app, ROUTES)
    _add_console(app, settings)
    app.cleanup_ctx.append(_redis_ctx)
    return app


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[state.SETTINGS]
    shards = await open_shards(settings)
    try:
        await check_shard_count(shards)
    except BaseException:
        await shards.aclose()
        raise
    box = secret_box(settings)
    app[state.SHARDS] = shards
    app[state.REDIS] = redis = shards.control
    scripts = Scripts(shards)
    app[state.JOBS] = jobs = JobStore(
        shards,
        scripts,
        settings.job_retention_seconds,
        box,
        quota=settings.max_jobs_per_tenant,
        byte_budget=settings.max_bytes_per_tenant,
    )
    app[state.BATCHES] = BatchStore(shards, scripts, jobs)
    app[state.SCHEDULES] = ScheduleStore(shards, scripts, jobs)
    app[state.IDEMPOTENCY] = IdempotencyStore(scripts)
    app[state.TENANTS] = TenantStore(redis, box)
    app[state.ENDPOINTS] = EndpointStore(shards, scripts, box)
    app[state.DELIVERIES] = DeliveryStore(shards, scripts, settings.job_retention_seconds, box)
    # Its own clients, which never retry: a mark that reached another server confirms nothing.
    confirmer = await open_shards(settings, retries=0)
    app[state.DURABILITY] = Durability(
        confirmer, settings.durability, settings.durability_timeout_ms
    )
    app[state.RATE_LIMITER] = RateLimiter(
        scripts, settings.rate_limit_per_second, settings.rate_limit_burst
    )
    app[state.TEST_EVENT_LIMITER] = RateLimiter(
        scripts,
        TEST_EVENTS_PER_RETENTION / settings.job_retention_seconds,
        TEST_EVENTS_PER_RETENTION,
    )
    app[state.ADDRESS_LIMITER] = RateLimiter(
        scripts, settings.public_rate_limit_per_second, settings.public_rate_limit_burst
    )
    app[state.AUTH_FAILURES] = AuthFailures(redis, settings.auth_failures_per_minute)
    app[state.CHANGES] = JobChanges(shards, scripts)
    app[state.RESOLVER] = resolver = async_resolver()
    await bootstrap_tenant(settings, app[state.TENANTS])
    ops = await opsserver.start(shards, settings.metrics_host, settings.metrics_port_for("api"))
    yield
    if ops is not None:
        await ops.cleanup()
    await app[state.CHANGES].close()
    await resolver.close()
    await confirmer.aclose()
    await shards.aclose()


def _add_console(app: web.Application, settings: Settings) -> None:
    """The web console at /ui/: static files, no API key (they hold no data)."""
    from acceptd.api.middlewares import public

    console.install(app, settings.portal_frame_ancestors)
    app.router.add_get("/ui", public(console.redirect_to_console))
    app.router.add_get("/ui/", public(console.console_page))
    app.router.add_get("/ui/{name:.+}", public(console.console_asset))

"""Request middlewares: problem+json for every error, and API-key authentication."""

from __future__ import annotations

import logging
import random
import re
import time

from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from acceptd.api import state
from acceptd.api.body import body_bytes_held, keyless_body_limit, receive_body
from acceptd.api.callers import caller_of
from acceptd.api.problems import (
    Conflict,
    Forbidden,
    ProblemError,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    from_http_exception,
)
from acceptd.core.logs import log_context
from acceptd.runtime.metrics import http_seconds
from acceptd.store.apikeys import KeyIdentity
from acceptd.store.capped import CapReachedError
from acceptd.store.durability import NotDurableError
from acceptd.store.jobs import QuotaExceededError
from acceptd.store.outages import StoreUnavailable
from acceptd.store.usage import ByteBudgetExceededError

log = logging.getLogger(__name__)

# How long an API process trusts a key it looked up: a revoked key stops working on every
# process within this.
API_KEY_CACHE_SECONDS = 1.0
OUTAGE_RETRY_AFTER_SECONDS = 2
QUOTA_RETRY_AFTER_SECONDS = 60
API_KEY_CACHE_MAX = 10_000
PUBLIC_ROUTE = "acceptd.public"
BY_ADDRESS_ROUTE = "acceptd.by_address"
KEYLESS_BODY_BYTES = "acceptd.keyless_body_bytes"
# The one key of the in-flight count of every keyless caller together.
ALL_CALLERS = "*"
ENDPOINTS_PORTAL_ROUTE = "acceptd.endpoints_portal"
KEY_OPTIONAL_ROUTE = "acceptd.key_optional"


REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _new_request_id() -> str:
    """32 random hex digits, as uuid4().hex gave. Not a secret (it is echoed and logged, and
    grants nothing), so not from the OS: its getrandom call was 3 % of a submit."""
    return f"{random.getrandbits(128):032x}"


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer carries an X-Request-Id (the client's, if sane) that every log line of
    the request repeats, so one call can be traced through the logs."""
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = offered if _REQUEST_ID_OK.match(offered) else _new_request_id()
    with log_context(request_id=request_id):
        response = await handler(request)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        http_seconds(route, request.method, status).observe(time.perf_counter() - started)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProblemError as exc:
        return exc.response()
    except QuotaExceededError as exc:
        return RateLimited(
            f"this tenant holds {exc.quota} jobs already (ACCEPTD_MAX_JOBS_PER_TENANT); "
            "finished ones expire after the retention period",
            headers={"Retry-After": str(QUOTA_RETRY_AFTER_SECONDS)},
        ).response()
    except ByteBudgetExceededError as exc:
        # Only this tenant is refused: the Redis every tenant shares is not filled by one.
        return RateLimited(
            f"this tenant stores {exc.budget} bytes already (ACCEPTD_MAX_BYTES_PER_TENANT): "
            "its jobs' inputs, results and metadata and the webhooks it is owed; they count "
            "until they expire after the retention period",
            headers={"Retry-After": str(QUOTA_RETRY_AFTER_SECONDS)},
        ).response()
    except CapReachedError as exc:
        return Conflict(str(exc)).response()
    except NotDurableError as exc:
        log.warning("%s during %s %s", exc, request.method, request.path)
        return ServiceUnavailable(
            f"the change was made but is not yet held as ACCEPTD_DURABILITY={exc.level} asks "
            f"({exc.reason}); retry with the same Idempotency-Key",
            headers={"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)},
        ).response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return from_http_exception(exc).response()
    except StoreUnavailable as exc:
        # Redis refusing writes (out of memory, failing over, loading) is an outage the
        # client can wait out; creates are idempotent under their Idempotency-Key.
        log.warning("%s during %s %s", exc.reason, request.method, request.path)
        return ServiceUnavailable(
            f"the job store is unavailable right now ({exc.reason}); retry shortly",
            headers={"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)},
        ).response()
    except RedisError:
        # Any other: a bug (ours, or a server that does not do what we ask), not an outage.
        log.exception("unexpected Redis error in %s %s", request.method, request.path)
        return ProblemError("an unexpected error occurred; it has been logged").response()
    except Exception:
        # The trace goes to our log, never to the client.
        log.exception("unhandled error in %s %s", request.method, request.path)
        return ProblemError("an unexpected error occurred; it has been logged").response()


def public(handler: Handler) -> Handler:
    """Mark a handler as needing no API key."""
    setattr(handler, PUBLIC_ROUTE, True)
    return handler


def open_to_endpoints_portal(handler: Handler) -> Handler:
    """Mark a handler a portal session of the `endpoints` scope may call."""
    setattr(handler, ENDPOINTS_PORTAL_ROUTE, True)
    return handler


def key_optional(handler: Handler) -> Handler:
    """Mark a keyless handler that answers more to a caller who sends a key: with an
    Authorization header it is checked as on any route (a wrong key is a 401)."""
    setattr(handler, KEY_OPTIONAL_ROUTE, True)
    return handler


def limited_by_address(handler: Handler, body_bytes: int | None = None) -> Handler:
    """Mark a keyless handler whose callers are limited by their network address, with its
    own body cap when it reads less than the completion routes do."""
    setattr(handler, BY_ADDRESS_ROUTE, True)
    if body_bytes is not None:
        setattr(handler, KEYLESS_BODY_BYTES, body_bytes)
    return handler


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route_handler = request.match_info.handler
    if getattr(route_handler, BY_ADDRESS_ROUTE, False):
        return await _by_address(request, handler)
    keyless = getattr(route_handler, PUBLIC_ROUTE, False) and not (
        getattr(route_handler, KEY_OPTIONAL_ROUTE, False) and "Authorization" in request.headers
    )
    if keyless or request.match_info.http_exception:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <api key>")
    identity = await _identity_for(request, token.strip())
    if identity.scope == "portal-endpoints" and not getattr(
        route_handler, ENDPOINTS_PORTAL_ROUTE, False
    ):
        raise Forbidden("this portal session manages the tenant's endpoints only")
    request[state.TENANT] = tenant = identity.tenant
    request[state.KEY] = identity
    limiter = request.app[state.RATE_LIMITER]
    if limiter.enabled:
        wait = await limiter.take(tenant)
        if wait:
            raise RateLimited(
                f"over {request.app[state.SETTINGS].rate_limit_per_second:g} requests a second; "
                f"retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
    with log_context(tenant=tenant):
        return await handler(request)


async def _by_address(request: web.Request, handler: Handler) -> web.StreamResponse:
    """What one caller may cost us on a route anyone can call: a rate (in Redis, shared by
    every API process), requests in flight per caller, and requests being handled (their
    bodies in) for all callers together (per process), each a 429 past it. A caller is an
    IPv4 address or an IPv6 /64."""
    app = request.app
    caller = caller_of(request)
    limiter = app[state.ADDRESS_LIMITER]
    if limiter.enabled:
        wait = await limiter.take_for_address(caller)
        if wait:
            raise RateLimited(
                f"too many requests from your address; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
    in_flight = app[state.IN_FLIGHT_BY_ADDRESS]
    if not in_flight.try_acquire(caller):
        raise RateLimited(
            "too many requests from your address at once; retry shortly",
            headers={"Retry-After": "1"},
        )
    everyone = app[state.IN_FLIGHT_KEYLESS]
    try:
        # The body arrives under the caller's own slot only: uploads trickled by a crowd of
        # addresses hold no slot every caller shares (16 addresses held it shut for good).
        # Their bytes, though, come from one budget for all: gzip makes each cost its caller
        # a thousandth of what it holds here, and addresses are many.
        limit = getattr(
            request.match_info.handler, KEYLESS_BODY_BYTES, keyless_body_limit(app[state.SETTINGS])
        )
        await receive_body(request, limit, app[state.KEYLESS_BODIES], caller)
        if not everyone.try_acquire(ALL_CALLERS):
            raise RateLimited(
                "too many requests on this route at once; retry shortly",
                headers={"Retry-After": "1"},
            )
        try:
            return await handler(request)
        finally:
            everyone.release(ALL_CALLERS)
    finally:
        app[state.KEYLESS_BODIES].give_back(body_bytes_held(request), caller)
        in_flight.release(caller)


async def _identity_for(request: web.Request, api_key: str) -> KeyIdentity:
    # A short positive cache keeps the hot path at one Redis round trip per submit.
    app = request.app
    cache = app[state.API_KEY_CACHE]
    identity = cache.get(api_key)
    if identity is not None:
        return identity
    keys, failures = app[state.TENANTS].keys, app[state.AUTH_FAILURES]
    identity = await keys.identify(api_key)
    if identity is None and failures.enabled:
        # A valid key always gets in: keys are 256 bits of randomness, so a guesser gains
        # nothing from telling right from wrong, while blocking valid keys would let anyone
        # lock out everybody behind an address they share (a NAT, an untrusted proxy, a /64).
        # Wrong keys past the limit get 429 instead of 401, so a flood is told to slow down.
        address = caller_of(request)  # behind a trusted proxy, the client it forwarded
        wait = await failures.blocked_for(address)
        if wait:
            raise RateLimited(
                f"too many requests with a wrong API key from your address; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        await failures.record(address)
    if identity is None:
        raise Unauthorized("the API key is not valid")
    cache.put(api_key, identity)
    await keys.touch(identity)
    return identity

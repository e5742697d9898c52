"""/v1/endpoints: registered webhook receivers, their secrets and test events.

A portal session of the `endpoints` scope is someone the tenant handed a link to, not the
tenant: it must never receive job data or settle a review. So the endpoints it makes send
thin payloads only and never `job.awaiting_input` (the event that carries the completion
token), and it may change only the endpoints it made itself (403 for the tenant's others).
A session of one channel (a portal link with `channel`: one customer of the tenant's) sees,
makes and manages only the endpoints of exactly that channel, whoever made them, and their
deliveries; another customer's endpoints are not even listed to it."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from acceptd.api import state
from acceptd.api.body import read_model
from acceptd.api.problems import (
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    ValidationFailed,
    field_error,
)
from acceptd.api.respond import json_response
from acceptd.api.validation import check_callback
from acceptd.core import ids
from acceptd.core.clock import now_ms, to_rfc3339
from acceptd.core.events import DEFAULT_ENDPOINT_EVENTS, NOT_FOR_PORTAL_SESSIONS, TEST_EVENT
from acceptd.core.jsonenc import compact
from acceptd.store.apikeys import KeyIdentity
from acceptd.store.deliveries import NewDelivery
from acceptd.store.endpoints import EndpointLimitError, EndpointRecord
from acceptd.wire.models import EndpointCreate, EndpointUpdate
from acceptd.wire.resources import delivery_resource, endpoint_path, endpoint_resource


def _endpoint_id(request: web.Request) -> str:
    endpoint_id = request.match_info["endpoint_id"]
    if not ids.looks_like("ep", endpoint_id):
        raise NotFound(f"no endpoint {endpoint_id}")
    return endpoint_id


async def owned_endpoint(request: web.Request) -> EndpointRecord:
    endpoint_id = _endpoint_id(request)
    endpoint = await request.app[state.ENDPOINTS].get(endpoint_id, request[state.TENANT])
    if endpoint is None:
        raise NotFound(f"no endpoint {endpoint_id}")
    return endpoint


def endpoints_session(request: web.Request) -> KeyIdentity | None:
    """The caller, when it is a portal session of the `endpoints` scope."""
    identity = request[state.KEY]
    return identity if identity.scope == "portal-endpoints" else None


def check_changeable(
    request: web.Request, endpoint: EndpointRecord, doing: str = "change"
) -> EndpointRecord:
    """The endpoint, if the caller may `doing` it: an `endpoints` session only those it
    manages (_manages), and, unless it only reads, only those that send no job data."""
    session = endpoints_session(request)
    if session is not None and not _manages(session, endpoint):
        what = (
            f"the endpoints of channel {session.channel}"
            if session.channel
            else "the endpoints it created"
        )
        raise Forbidden(f"this portal session may {doing} only {what}, not {endpoint.id}")
    if session is not None and not doing.startswith("read") and not _sends_no_job_data(endpoint):
        # A channel's endpoint the tenant made to send job data: were the session to point it
        # at a receiver of its own, that data would follow. It reads it; the tenant changes it.
        raise Forbidden(
            f"{endpoint.id} sends job data (a full payload or job.awaiting_input): only the "
            "tenant changes it"
        )
    return endpoint


def _sends_no_job_data(endpoint: EndpointRecord) -> bool:
    return endpoint.thin and NOT_FOR_PORTAL_SESSIONS.isdisjoint(endpoint.events)


def _manages(session: KeyIdentity, endpoint: EndpointRecord) -> bool:
    """A channel's session: that channel's endpoints (a customer's portal), whoever made
    them. Any other `endpoints` session: those it made itself."""
    if session.channel is not None:
        return endpoint.of_channel(session.channel)
    return session.key_id is not None and endpoint.created_by == session.key_id


def _channels_for(request: web.Request, given: list[str] | None) -> list[str] | None:
    """The channels an endpoint gets: a channel session's endpoints get its channel, and
    it may give no other (422)."""
    session = endpoints_session(request)
    if session is None or session.channel is None:
        return given
    if given is not None and given != [session.channel]:
        detail = f"this portal session's endpoints have the channel {session.channel} only"
        raise ValidationFailed(detail, errors=[field_error(("channels",), detail)])
    return [session.channel]


async def changeable_endpoint(request: web.Request, doing: str = "change") -> EndpointRecord:
    """The caller's tenant's endpoint of the path, if the caller may `doing` it (404, 403:
    check_changeable)."""
    return check_changeable(request, await owned_endpoint(request), doing)


async def check_session_reaches(
    request: web.Request, endpoint_id: str | None, doing: str, missing: str
) -> None:
    """For an `endpoints` session, that what it asks for (a delivery, a recovery) belongs to
    an endpoint it made: NotFound(`missing`) when it belongs to none (a job's own callback),
    Forbidden for the tenant's others. Anyone else passes."""
    if endpoints_session(request) is None:
        return
    endpoint = None
    if endpoint_id is not None:
        endpoint = await request.app[state.ENDPOINTS].get(endpoint_id, request[state.TENANT])
    if endpoint is None:
        raise NotFound(missing)
    check_changeable(request, endpoint, doing)


def _refuse_job_data(
    request: web.Request,
    payload: str | None,
    events: Sequence[str] | None,
    *,
    payload_default: bool,
) -> None:
    """422 for what would send job data to an `endpoints` session's receiver."""
    if endpoints_session(request) is None:
        return
    errors = []
    if payload == "full" and not payload_default:
        detail = "a portal session's endpoints send thin payloads only"
        errors.append(field_error(("payload",), detail))
    for index, event in enumerate(events or []):
        if event in NOT_FOR_PORTAL_SESSIONS:
            detail = f"a portal session's endpoints cannot subscribe to {event}"
            errors.append(field_error(("events", index), detail))
    if errors:
        raise ValidationFailed(
            "a portal session's endpoints receive no job data: thin payloads, no "
            "job.awaiting_input",
            errors=errors,
        )


def _unique(events: list[str]) -> list[str]:
    return list(dict.fromkeys(events))


async def create_endpoint(request: web.Request) -> web.Response:
    settings, tenant = request.app[state.SETTINGS], request[state.TENANT]
    body, _ = await read_model(request, EndpointCreate, settings.max_body_bytes)
    explicit_payload = "payload" in body.model_fields_set
    _refuse_job_data(request, body.payload, body.events, payload_default=not explicit_payload)
    # A session's endpoint is thin whatever the default is.
    payload = "thin" if endpoints_session(request) is not None else body.payload
    await check_callback(request, body.url, "url")
    store = request.app[state.ENDPOINTS]
    events = _unique(list(body.events)) if body.events else DEFAULT_ENDPOINT_EVENTS
    try:
        endpoint, secret = await store.create(
            tenant,
            body.url,
            events,
            body.description,
            signing=body.signing,
            payload=payload,
            rate_limit_per_second=body.rate_limit_per_second,
            ordering=body.ordering,
            created_by=request[state.KEY].key_id,
            limit=settings.max_endpoints_per_tenant,
            headers=body.headers,
            retry_schedule=body.retry_schedule,
            channels=_channels_for(request, body.channels),
        )
    except EndpointLimitError as exc:
        raise Conflict(str(exc)) from None
    return json_response(
        endpoint_resource(endpoint, secret), 201, {"Location": endpoint_path(endpoint.id)}
    )


async def list_endpoints(request: web.Request) -> web.Response:
    endpoints = await request.app[state.ENDPOINTS].for_tenant(request[state.TENANT])
    session = endpoints_session(request)
    if session is not None:
        # Its own only: the tenant's endpoints' URLs often hold credentials (Slack-style
        # paths, query tokens), and their names and statistics are the tenant's business.
        endpoints = [e for e in endpoints if _manages(session, e)]
    return json_response({"items": [endpoint_resource(e) for e in endpoints]})


async def get_endpoint(request: web.Request) -> web.Response:
    return json_response(endpoint_resource(await changeable_endpoint(request, "read")))


async def update_endpoint(request: web.Request) -> web.Response:
    settings = request.app[state.SETTINGS]
    body, _ = await read_model(request, EndpointUpdate, settings.max_body_bytes)
    endpoint = await changeable_endpoint(request)
    _refuse_job_data(request, body.payload, body.events, payload_default=False)
    await check_callback(request, body.url, "url")
    updated = await request.app[state.ENDPOINTS].update(
        endpoint.id,
        request[state.TENANT],
        url=body.url,
        events=_unique(list(body.events)) if body.events else None,
        description=body.description,
        disabled=body.disabled,
        signing=body.signing,
        payload=body.payload,
        rate_limit_per_second=body.rate_limit_per_second,
        ordering=body.ordering,
        headers=body.headers,
        retry_schedule=body.retry_schedule,
        channels=_channels_for(request, body.channels) if body.channels is not None else None,
    )
    if updated is None:
        raise NotFound(f"no endpoint {request.match_info['endpoint_id']}")
    return json_response(endpoint_resource(updated))


async def delete_endpoint(request: web.Request) -> web.Response:
    endpoint = await changeable_endpoint(request)
    if not await request.app[state.ENDPOINTS].delete(endpoint.id, request[state.TENANT]):
        raise NotFound(f"no endpoint {request.match_info['endpoint_id']}")
    return web.Response(status=204)


async def rotate_endpoint_secret(request: web.Request) -> web.Response:
    endpoint = await changeable_endpoint(request)
    rotated = await request.app[state.ENDPOINTS].rotate_secret(endpoint.id, request[state.TENANT])
    if rotated is None:
        raise NotFound(f"no endpoint {request.match_info['endpoint_id']}")
    endpoint, secret = rotated
    return json_response(endpoint_resource(endpoint, secret))


# Test events one tenant may send within the retention (state.TEST_EVENT_LIMITER), and
# the share of them one portal session may spend.
TEST_EVENTS_PER_RETENTION = 100
SESSION_SHARE = 10


async def test_endpoint(request: web.Request) -> web.Response:
    """Sends the endpoint one signed `webhook.test` event, through the ordinary delivery path
    (its own secret, retries, recorded attempts): what a receiver's first check needs."""
    endpoint = await changeable_endpoint(request)
    # Test deliveries are kept for the retention like any, but charged to no job: at most
    # TEST_EVENTS_PER_RETENTION of them live per tenant (a token bucket refilled over the
    # retention; per endpoint, deleting and re-creating one would reset it), each with at
    # most KEPT_ATTEMPTS attempts, or one key could store a delivery a request for a week.
    limiter = request.app[state.TEST_EVENT_LIMITER]
    session = endpoints_session(request)
    # A portal session spends its own share first, so one customer cannot spend the
    # tenant's allowance for everyone.
    wait = (
        await limiter.take_test_event(f"{endpoint.tenant}:{session.key_id}", SESSION_SHARE)
        if session is not None and session.key_id
        else 0
    ) or await limiter.take_test_event(endpoint.tenant)
    if wait:
        raise RateLimited(
            f"at most {TEST_EVENTS_PER_RETENTION} test events a tenant within the retention; "
            f"retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    msg_id = ids.new_id("msg", ids.shard_of(endpoint.id))  # where its subject's keys are
    body = compact(
        {
            "type": TEST_EVENT,
            "timestamp": to_rfc3339(now_ms()),
            "data": {"endpoint_id": endpoint.id, "message": "a test event from acceptd"},
        }
    )
    new = NewDelivery(
        id=ids.derived_id("dlv", msg_id, endpoint.id),
        tenant=endpoint.tenant,
        # Test deliveries are listed under the endpoint, as a job's are under the job.
        job_id=endpoint.id,
        event=TEST_EVENT,
        webhook_id=msg_id,
        url=endpoint.url,
        endpoint_id=endpoint.id,
        body=body,
        body_field="",  # one destination: its body stays in its own hash
        counted=False,  # no job to charge it to (it is small, and expires with its delivery)
    )
    store = request.app[state.DELIVERIES]
    delivery = await store.create(new)
    if delivery is None:  # a fresh id cannot exist already
        raise Conflict("the test delivery could not be created; retry")
    return json_response(delivery_resource(delivery, []), 202)

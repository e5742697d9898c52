"""/v1/endpoints: registered webhook receivers, their secrets and test events."""

from __future__ import annotations

from aiohttp import web

from acceptd.api import state
from acceptd.api.body import read_model
from acceptd.api.problems import Conflict, NotFound
from acceptd.api.respond import json_response
from acceptd.api.validation import check_callback
from acceptd.core import ids
from acceptd.core.clock import now_ms, to_rfc3339
from acceptd.core.events import DEFAULT_ENDPOINT_EVENTS, TEST_EVENT
from acceptd.core.jsonenc import compact
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


def _unique(events: list[str]) -> list[str]:
    return list(dict.fromkeys(events))


async def create_endpoint(request: web.Request) -> web.Response:
    settings, tenant = request.app[state.SETTINGS], request[state.TENANT]
    body, _ = await read_model(request, EndpointCreate, settings.max_body_bytes)
    await check_callback(request, body.url, "url")
    store = request.app[state.ENDPOINTS]
    events = _unique(list(body.events)) if body.events else DEFAULT_ENDPOINT_EVENTS
    try:
        endpoint, secret = await store.create(
            tenant, body.url, events, body.description, signing=body.signing,
            payload=body.payload, rate_limit_per_second=body.rate_limit_per_second,
            ordering=body.ordering, limit=settings.max_endpoints_per_tenant,
        )  # fmt: skip
    except EndpointLimitError as exc:
        raise Conflict(str(exc)) from None
    return json_response(
        endpoint_resource(endpoint, secret), 201, {"Location": endpoint_path(endpoint.id)}
    )


async def list_endpoints(request: web.Request) -> web.Response:
    endpoints = await request.app[state.ENDPOINTS].for_tenant(request[state.TENANT])
    return json_response({"items": [endpoint_resource(e) for e in endpoints]})


async def get_endpoint(request: web.Request) -> web.Response:
    return json_response(endpoint_resource(await owned_endpoint(request)))


async def update_endpoint(request: web.Request) -> web.Response:
    settings = request.app[state.SETTINGS]
    body, _ = await read_model(request, EndpointUpdate, settings.max_body_bytes)
    await check_callback(request, body.url, "url")
    updated = await request.app[state.ENDPOINTS].update(
        _endpoint_id(request),
        request[state.TENANT],
        url=body.url,
        events=_unique(list(body.events)) if body.events else None,
        description=body.description,
        disabled=body.disabled,
        signing=body.signing,
        payload=body.payload,
        rate_limit_per_second=body.rate_limit_per_second,
        ordering=body.ordering,
    )
    if updated is None:
        raise NotFound(f"no endpoint {request.match_info['endpoint_id']}")
    return json_response(endpoint_resource(updated))


async def delete_endpoint(request: web.Request) -> web.Response:
    if not await request.app[state.ENDPOINTS].delete(_endpoint_id(request), request[state.TENANT]):
        raise NotFound(f"no endpoint {request.match_info['endpoint_id']}")
    return web.Response(status=204)


async def rotate_endpoint_secret(request: web.Request) -> web.Response:
    rotated = await request.app[state.ENDPOINTS].rotate_secret(
        _endpoint_id(request), request[state.TENANT]
    )
    if rotated is None:
        raise NotFound(f"no endpoint {request.match_info['endpoint_id']}")
    endpoint, secret = rotated
    return json_response(endpoint_resource(endpoint, secret))


async def test_endpoint(request: web.Request) -> web.Response:
    """Sends the endpoint one signed `webhook.test` event, through the ordinary delivery path
    (its own secret, retries, recorded attempts): what a receiver's first check needs."""
    endpoint = await owned_endpoint(request)
    msg_id = ids.new_id("msg")
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

"""Webhook deliveries: one, a job's or a batch's, with every attempt; sending one again."""

from __future__ import annotations

from aiohttp import web

from acceptd.api import state
from acceptd.api.endpoints import check_session_reaches
from acceptd.api.owned import owned_batch, owned_job_id
from acceptd.api.problems import Conflict, NotFound
from acceptd.api.respond import json_response
from acceptd.core import ids
from acceptd.store.deliveries import BodyExpiredError, DeliveryView
from acceptd.wire.resources import delivery_resource


async def list_job_deliveries(request: web.Request) -> web.Response:
    job_id, tenant = await owned_job_id(request), request[state.TENANT]
    found = await request.app[state.DELIVERIES].for_job(job_id)
    items = [delivery_resource(d, attempts) for d, attempts in found if d.tenant == tenant]
    return json_response({"items": items})


async def _owned_delivery(request: web.Request, doing: str) -> DeliveryView:
    delivery_id = request.match_info["delivery_id"]
    delivery = None
    if ids.looks_like("dlv", delivery_id):
        delivery = await request.app[state.DELIVERIES].view(delivery_id, request[state.TENANT])
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}")
    # Attempts hold the receivers' answers, and a retry is a change: an `endpoints` session
    # reaches the deliveries of the endpoints it made only.
    await check_session_reaches(request, delivery.endpoint_id, doing, f"no delivery {delivery_id}")
    return delivery


async def get_delivery(request: web.Request) -> web.Response:
    delivery = await _owned_delivery(request, "read the deliveries of")
    attempts = await request.app[state.DELIVERIES].attempts(delivery.id)
    return json_response(delivery_resource(delivery, attempts))


async def retry_delivery(request: web.Request) -> web.Response:
    delivery = await _owned_delivery(request, "redeliver to")
    delivery_id, store = delivery.id, request.app[state.DELIVERIES]
    # Checked on the delivery's shard, against that shard's share (as a submit is).
    budget = request.app[state.JOBS].byte_share
    for _ in range(3):  # an attempt may finish between our read and the requeue: read again
        try:
            if await store.requeue(delivery, manual=True, byte_budget=budget):
                break
        except BodyExpiredError as exc:
            raise Conflict(str(exc)) from None
        delivery = await _owned_delivery(request, "redeliver to")
    else:
        raise Conflict("the delivery is changing right now; retry shortly")
    refreshed = await store.view(delivery_id)
    if refreshed is None:
        raise NotFound(f"no delivery {delivery_id}")
    return json_response(delivery_resource(refreshed, await store.attempts(delivery_id)), 202)


async def list_batch_deliveries(request: web.Request) -> web.Response:
    batch = await owned_batch(request)
    found = await request.app[state.DELIVERIES].for_job(batch.id)
    items = [delivery_resource(d, attempts) for d, attempts in found if d.tenant == batch.tenant]
    return json_response({"items": items})

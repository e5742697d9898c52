"""Bulk recovery: POST /v1/endpoints/{id}/recover re-sends every failed delivery of a window
(as long-running work: 202 + the operation to poll), GET /v1/recoveries/{id} its progress."""

from __future__ import annotations

from aiohttp import web

from acceptd.api import state
from acceptd.api.body import read_model
from acceptd.api.endpoints import changeable_endpoint, check_session_reaches
from acceptd.api.problems import BadRequest, NotFound
from acceptd.api.respond import json_response
from acceptd.core import ids
from acceptd.core.clock import now_ms
from acceptd.store.recoveries import RecoveryRecord, RecoveryStore
from acceptd.store.usage import check_budget
from acceptd.wire.models import RecoverDeliveries
from acceptd.wire.resources import recovery_path, recovery_resource


def _store(request: web.Request) -> RecoveryStore:
    settings = request.app[state.SETTINGS]
    return RecoveryStore(
        request.app[state.SHARDS], request.app[state.DELIVERIES], settings.job_retention_seconds
    )


def _answer(recovery: RecoveryRecord, *, created: bool = False) -> web.Response:
    headers = {"Location": recovery_path(recovery.id)}
    if recovery.status != "done":
        headers["Retry-After"] = "1"
        return json_response(recovery_resource(recovery), 202, headers)
    return json_response(recovery_resource(recovery), 201 if created else 200, headers)


async def recover_endpoint(request: web.Request) -> web.Response:
    endpoint = await changeable_endpoint(request)
    settings = request.app[state.SETTINGS]
    body, _ = await read_model(request, RecoverDeliveries, settings.max_body_bytes)
    since_ms = int(body.since.timestamp() * 1000)
    until_ms = int(body.until.timestamp() * 1000) if body.until else now_ms() + 60_000
    if until_ms <= since_ms:
        raise BadRequest("until must come after since")
    store = _store(request)
    total = await store.count(endpoint.id, since_ms, until_ms)
    if request.query.get("dry_run") in ("true", "1"):
        return json_response({"total": total})
    # Each delivery sent again stores one more attempt, counted in the tenant's bytes.
    await check_budget(request.app[state.SHARDS], endpoint.tenant, settings.max_bytes_per_tenant)
    recovery = await store.create(endpoint.tenant, endpoint.id, since_ms, until_ms, total)
    return _answer(recovery, created=True)


async def get_recovery(request: web.Request) -> web.Response:
    recovery_id = request.match_info["recovery_id"]
    recovery = None
    if ids.looks_like("rcv", recovery_id):
        recovery = await _store(request).get(recovery_id, request[state.TENANT])
    if recovery is None:
        raise NotFound(f"no recovery {recovery_id}")
    await check_session_reaches(
        request, recovery.endpoint_id, "read the recoveries of", f"no recovery {recovery_id}"
    )
    return _answer(recovery)

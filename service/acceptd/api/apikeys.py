"""/v1/api-keys and /v1/signing-secret/rotate: a tenant manages its own credentials with an
admin-scoped key. A revoked key stops working on every API process within a second, and
so do the portal links and sessions it minted."""

from __future__ import annotations

from aiohttp import web

from acceptd.api import state
from acceptd.api.body import read_model
from acceptd.api.problems import Forbidden, NotFound
from acceptd.api.respond import json_response
from acceptd.core import ids
from acceptd.core.clock import now_ms, to_rfc3339
from acceptd.store.apikeys import ADMIN_SCOPES
from acceptd.store.portal import PortalLinks
from acceptd.store.sealed import ROTATION_OVERLAP_SECONDS
from acceptd.wire.models import ApiKeyCreate
from acceptd.wire.resources import api_key_path, api_key_resource


def admin_tenant(
    request: web.Request, what: str = "managing API keys and the signing secret"
) -> str:
    """The tenant, if the request's key has the admin scope; 403 otherwise."""
    if request[state.KEY].scope not in ADMIN_SCOPES:
        raise Forbidden(f"{what} needs an admin-scoped key")
    tenant: str = request[state.TENANT]
    return tenant


async def list_api_keys(request: web.Request) -> web.Response:
    tenant = admin_tenant(request)
    records = await request.app[state.TENANTS].keys.list(tenant)
    return json_response({"items": [api_key_resource(r) for r in records]})


async def create_api_key(request: web.Request) -> web.Response:
    tenant = admin_tenant(request)
    body, _ = await read_model(request, ApiKeyCreate, request.app[state.SETTINGS].max_body_bytes)
    record, key = await request.app[state.TENANTS].keys.create(tenant, body.name, body.scope)
    return json_response(api_key_resource(record, key), 201, {"Location": api_key_path(record.id)})


async def revoke_api_key(request: web.Request) -> web.Response:
    tenant = admin_tenant(request)
    key_id = request.match_info["key_id"]
    if not ids.looks_like("key", key_id) or not await request.app[state.TENANTS].keys.revoke(
        tenant, key_id
    ):
        raise NotFound(f"no API key {key_id}")
    # Its links no longer exchange and its sessions are refused from now on (both check
    # their key at use); this also drops the sessions from the tenant's list.
    await PortalLinks(request.app[state.REDIS]).end_minted_by(tenant, key_id)
    return web.Response(status=204)


async def rotate_signing_secret(request: web.Request) -> web.Response:
    tenant = admin_tenant(request)
    secret = await request.app[state.TENANTS].rotate_secret(tenant)
    until = to_rfc3339(now_ms() + ROTATION_OVERLAP_SECONDS * 1000)
    return json_response({"secret": secret, "previous_valid_until": until})

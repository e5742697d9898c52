"""Portal links (POST /v1/portal-links), their one-time exchange for a console session
(POST /v1/portal-sessions, no API key), the tenant's live sessions (listed and ended by an
admin key), and who a credential is (GET /v1/whoami)."""

from __future__ import annotations

from aiohttp import web

from acceptd.api import state
from acceptd.api.apikeys import admin_tenant
from acceptd.api.body import read_model
from acceptd.api.forwarded import client_view, networks
from acceptd.api.problems import Forbidden, NotFound, ValidationFailed
from acceptd.api.respond import json_response
from acceptd.core import ids
from acceptd.core.clock import to_rfc3339
from acceptd.store.portal import SESSION_ID_PREFIX, PortalLinks, SessionRecord
from acceptd.wire.models import PortalLinkCreate, PortalSessionCreate

CONSOLE_PATH = "/ui/"


# A link's token and the JSON around it: all a session exchange reads.
SESSION_BODY_BYTES = 4096


def _base_url(request: web.Request) -> str:
    settings = request.app[state.SETTINGS]
    if settings.public_url:
        return settings.public_url.rstrip("/")
    scheme, host, _ = client_view(
        request, networks(tuple(settings.trusted_proxies)), settings.forwarded_headers
    )
    return f"{scheme}://{host}"


async def create_portal_link(request: web.Request) -> web.Response:
    identity = request[state.KEY]
    if identity.is_session:
        # A session must not outlive itself by minting links.
        raise Forbidden("portal links are made with an API key, not from a portal session")
    settings = request.app[state.SETTINGS]
    body, _ = await read_model(request, PortalLinkCreate, settings.max_body_bytes)
    if body.ttl_seconds > settings.portal_link_max_ttl_seconds:
        most = settings.portal_link_max_ttl_seconds
        detail = f"at most {most} (ACCEPTD_PORTAL_LINK_MAX_TTL_SECONDS)"
        raise ValidationFailed(
            f"ttl_seconds: {detail}",
            errors=[{"pointer": "#/ttl_seconds", "field": "ttl_seconds", "detail": detail}],
        )
    token, expires_ms = await PortalLinks(request.app[state.REDIS]).create(
        request[state.TENANT], body.scope, body.ttl_seconds, identity.key_id, body.channel
    )
    url = f"{_base_url(request)}{CONSOLE_PATH}#token={token}"
    return json_response({"url": url, "expires_at": to_rfc3339(expires_ms)}, 201)


async def create_portal_session(request: web.Request) -> web.Response:
    body, _ = await read_model(request, PortalSessionCreate, SESSION_BODY_BYTES)
    most = request.app[state.SETTINGS].portal_session_max_seconds
    session = await PortalLinks(request.app[state.REDIS]).exchange(body.token, most)
    if session is None:
        raise NotFound(
            "this portal link was used already, has expired, was revoked with its API key, "
            "or never existed"
        )
    return json_response(
        {
            "session": session.token,
            "id": session.id,
            "tenant": session.tenant,
            "scope": session.scope,
            "channel": session.channel,
            "expires_at": to_rfc3339(session.expires_ms),
        },
        201,
    )


def _session_resource(record: SessionRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "scope": record.scope,
        "channel": record.channel,
        "created_at": to_rfc3339(record.created_ms),
        "expires_at": to_rfc3339(record.expires_ms),
        "minted_by": record.minted_by,
    }


async def list_portal_sessions(request: web.Request) -> web.Response:
    tenant = admin_tenant(request, "listing portal sessions")
    found = await PortalLinks(request.app[state.REDIS]).sessions(tenant)
    return json_response({"items": [_session_resource(r) for r in found]})


async def revoke_portal_session(request: web.Request) -> web.Response:
    tenant = admin_tenant(request, "ending portal sessions")
    session_id = request.match_info["session_id"]
    if not ids.looks_like(SESSION_ID_PREFIX, session_id) or not await PortalLinks(
        request.app[state.REDIS]
    ).revoke(tenant, session_id):
        raise NotFound(f"no live portal session {session_id}")
    return web.Response(status=204)


async def whoami(request: web.Request) -> web.Response:
    identity = request[state.KEY]
    return json_response({"tenant": identity.tenant, "scope": identity.scope})

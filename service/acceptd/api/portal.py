"""Portal links (POST /v1/portal-links), their one-time exchange for a console session
(POST /v1/portal-sessions, no API key), and who a credential is (GET /v1/whoami)."""

from __future__ import annotations

from aiohttp import web

from acceptd.api import state
from acceptd.api.body import read_model
from acceptd.api.problems import Forbidden, NotFound, ValidationFailed
from acceptd.api.respond import json_response
from acceptd.core.clock import to_rfc3339
from acceptd.store.portal import PortalLinks
from acceptd.wire.models import PortalLinkCreate, PortalSessionCreate

CONSOLE_PATH = "/ui/"


def _base_url(request: web.Request) -> str:
    configured = request.app[state.SETTINGS].public_url
    if configured:
        return configured.rstrip("/")
    return f"{request.scheme}://{request.host}"


async def create_portal_link(request: web.Request) -> web.Response:
    if request[state.KEY].scope not in ("admin", "standard", "operator"):
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
        request[state.TENANT], body.scope, body.ttl_seconds
    )
    url = f"{_base_url(request)}{CONSOLE_PATH}#token={token}"
    return json_response({"url": url, "expires_at": to_rfc3339(expires_ms)}, 201)


async def create_portal_session(request: web.Request) -> web.Response:
    body, _ = await read_model(request, PortalSessionCreate, 4096)
    session = await PortalLinks(request.app[state.REDIS]).exchange(body.token)
    if session is None:
        raise NotFound("this portal link was used already, has expired, or never existed")
    return json_response(
        {
            "session": session.token,
            "tenant": session.tenant,
            "scope": session.scope,
            "expires_at": to_rfc3339(session.expires_ms),
        },
        201,
    )


async def whoami(request: web.Request) -> web.Response:
    identity = request[state.KEY]
    return json_response({"tenant": identity.tenant, "scope": identity.scope})

"""Portal links: a one-time token a tenant hands to someone (its own customer, in an iframe)
that signs a browser in to the console, limited to that tenant and, for the `endpoints`
scope, to its endpoints and their deliveries.

The link's token is stored as a digest with the link's lifetime; exchanging it deletes it
in the same command (GETDEL), so a link works once even when two browsers race. The
session it becomes is a short-lived bearer credential kept where API keys are (so the API's
ordinary authentication finds it), with the scope `portal` or `portal-endpoints` and the
link's expiry as its own: it ends when the link would have."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from acceptd.core.clock import now_ms
from acceptd.store import keys
from acceptd.store.apikeys import KeyIdentity, Scope

LinkScope = Literal["tenant", "endpoints"]
SESSION_SCOPES: dict[LinkScope, Scope] = {"tenant": "portal", "endpoints": "portal-endpoints"}
LINK_PREFIX = "ptl_"
SESSION_PREFIX = "pss_"


@dataclass(frozen=True)
class PortalSession:
    token: str
    tenant: str
    scope: LinkScope
    expires_ms: int


class PortalLinks:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def create(self, tenant: str, scope: LinkScope, ttl_seconds: int) -> tuple[str, int]:
        """(the link's token, when it expires in ms)."""
        token = LINK_PREFIX + secrets.token_urlsafe(32)
        expires_ms = now_ms() + ttl_seconds * 1000
        await self._redis.set(
            keys.portal_link(token), f"{tenant} {scope} {expires_ms}", px=ttl_seconds * 1000
        )
        return token, expires_ms

    async def exchange(self, token: str) -> PortalSession | None:
        """The session for a link never used and not expired; None otherwise (used, expired,
        or never made: the caller cannot tell which, and need not)."""
        if not token.startswith(LINK_PREFIX) or len(token) > 100:
            return None
        value: str | None = await self._redis.getdel(keys.portal_link(token))
        if value is None:
            return None
        tenant, scope_name, expires = value.split(" ")
        expires_ms = int(expires)
        remaining = expires_ms - now_ms()
        if remaining <= 0 or scope_name not in SESSION_SCOPES:
            return None
        scope: LinkScope = "tenant" if scope_name == "tenant" else "endpoints"
        session = SESSION_PREFIX + secrets.token_urlsafe(32)
        identity = KeyIdentity(tenant, None, SESSION_SCOPES[scope])
        await self._redis.set(keys.api_key(session), identity.encode(), px=remaining)
        return PortalSession(session, tenant, scope, expires_ms)

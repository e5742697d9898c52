"""Portal links: a one-time token a tenant hands to someone (its own customer, in an iframe)
that signs a browser in to the console, limited to that tenant and, for the `endpoints`
scope, to its endpoints and their deliveries.

The link's token is stored as a digest with the link's lifetime; exchanging it deletes it
in the same command (GETDEL), so a link works once even when two browsers race. The
session it becomes is a short-lived bearer credential kept where API keys are (so the API's
ordinary authentication finds it), with the scope `portal` or `portal-endpoints`; it ends
when the link would have, or after the session cap, whichever comes first.

Both name the API key that minted the link. A link whose key was revoked no longer
exchanges, and a session whose key was revoked is refused at every lookup
(ApiKeyStore.identify): revoking a key ends what it handed out. Each tenant's live sessions
are listed in one hash (id -> scope, times, minting key, digest of the bearer token), so an
admin can see and end them one by one."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis

from acceptd.core import ids
from acceptd.core.clock import now_ms
from acceptd.store import keys
from acceptd.store.apikeys import ApiKeyStore, KeyIdentity, Scope
from acceptd.store.capped import CapReachedError
from acceptd.store.scriptcalls import PortalLinkCreate, PortalSessionCreate
from acceptd.store.scripts import layouts_source
from acceptd.store.tracedscript import TracedScript

LinkScope = Literal["tenant", "endpoints"]
SESSION_SCOPES: dict[LinkScope, Scope] = {"tenant": "portal", "endpoints": "portal-endpoints"}
LINK_PREFIX = "ptl_"
SESSION_PREFIX = "pss_"
# A session's id (what lists and revokes it); its bearer token is SESSION_PREFIX + random.
SESSION_ID_PREFIX = "ps"
# Unused links, and live sessions, one tenant may hold at once.
MAX_UNUSED_LINKS = 1000
MAX_LIVE_SESSIONS = 1000
# Read once (a PortalLinks is made per request): registering one computes only its SHA.
_LINK_CREATE = layouts_source(PortalLinkCreate)
_SESSION_CREATE = layouts_source(PortalSessionCreate)


@dataclass(frozen=True)
class PortalSession:
    """A session just opened: the only time its bearer token is known."""

    token: str
    id: str
    tenant: str
    scope: LinkScope
    expires_ms: int
    channel: str | None = None


@dataclass(frozen=True)
class SessionRecord:
    """A live session as listed: never its bearer token."""

    id: str
    scope: LinkScope
    created_ms: int
    expires_ms: int
    minted_by: str | None
    channel: str | None = None


def _link_scope(name: str) -> LinkScope:
    return "tenant" if name == "tenant" else "endpoints"


class PortalLinks:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._keys = ApiKeyStore(redis)
        # On `redis`, the control plane's client, which every key here is on.
        self._link_create = TracedScript(
            PortalLinkCreate, redis.register_script(_LINK_CREATE), shards=None
        )
        self._session_create = TracedScript(
            PortalSessionCreate, redis.register_script(_SESSION_CREATE), shards=None
        )

    async def create(
        self,
        tenant: str,
        scope: LinkScope,
        ttl_seconds: int,
        minted_by: str | None,
        channel: str | None = None,
    ) -> tuple[str, int]:
        """(the link's token, when it expires in ms). `minted_by`: the API key's id;
        `channel`: the one channel an `endpoints` session of it manages."""
        token = LINK_PREFIX + secrets.token_urlsafe(32)
        now = now_ms()
        expires_ms = now + ttl_seconds * 1000
        value = f"{tenant} {scope} {expires_ms} {minted_by or '-'}"
        if channel:
            value += f" {channel}"
        # Each unused link is stored until it expires (a week at most): capped per tenant.
        written = await self._link_create(
            PortalLinkCreate(
                link=keys.portal_link(token),
                tenant_links=keys.tenant_portal_links(tenant),
                now_ms=now,
                cap=MAX_UNUSED_LINKS,
                value=value,
                lifetime_ms=ttl_seconds * 1000,
                digest=keys.digest(token),
                expiry_ms=expires_ms,
            )
        )
        if not written:
            raise CapReachedError("unused portal links", MAX_UNUSED_LINKS)
        return token, expires_ms

    async def exchange(self, token: str, max_session_seconds: int) -> PortalSession | None:
        """The session for a link never used, not expired, whose minting key still exists;
        None otherwise (the caller cannot tell which, and need not). The session lives until
        the link would have expired, and at most `max_session_seconds`."""
        if not token.startswith(LINK_PREFIX) or len(token) > 100:
            return None
        # At the cap the link is refused, not spent: its holder can use it once a session
        # ends (the script that opens the session checks again, against races).
        unused: str | None = await self._redis.get(keys.portal_link(token))
        if unused is None:
            return None
        if len(await self._prune(unused.split(" ", 1)[0])) >= MAX_LIVE_SESSIONS:
            raise CapReachedError("live portal sessions", MAX_LIVE_SESSIONS)
        value: str | None = await self._redis.getdel(keys.portal_link(token))
        if value is None:
            return None
        tenant, scope_name, expires, *rest = value.split(" ")
        await self._redis.zrem(keys.tenant_portal_links(tenant), keys.digest(token))
        minted_by = rest[0] if rest and rest[0] != "-" else None
        channel = rest[1] if len(rest) > 1 else None
        now = now_ms()
        expires_ms = min(int(expires), now + max_session_seconds * 1000)
        if expires_ms <= now or scope_name not in SESSION_SCOPES:
            return None
        if minted_by is not None and not await self._keys.exists(tenant, minted_by):
            return None
        scope = _link_scope(scope_name)
        session_id = ids.new_id(SESSION_ID_PREFIX)
        bearer = SESSION_PREFIX + secrets.token_urlsafe(32)
        identity = KeyIdentity(tenant, session_id, SESSION_SCOPES[scope], minted_by, channel)
        entry = {
            "scope": scope,
            "created": now,
            "expires": expires_ms,
            "minted_by": minted_by,
            "digest": keys.digest(bearer),
            "channel": channel,
        }
        # Each live session is stored, listed and pruned as a whole: capped per tenant.
        opened = await self._session_create(
            PortalSessionCreate(
                bearer=keys.api_key(bearer),
                tenant_sessions=keys.tenant_portal_sessions(tenant),
                cap=MAX_LIVE_SESSIONS,
                identity=identity.encode(),
                lifetime_ms=expires_ms - now,
                session_id=session_id,
                entry=json.dumps(entry),
            )
        )
        if not opened:
            raise CapReachedError("live portal sessions", MAX_LIVE_SESSIONS)
        return PortalSession(bearer, session_id, tenant, scope, expires_ms, channel)

    async def sessions(self, tenant: str) -> list[SessionRecord]:
        """The tenant's live sessions, oldest first (expired ones and those of revoked keys
        are dropped from the index on the way)."""
        live = await self._prune(tenant)
        return [
            SessionRecord(
                session_id,
                _link_scope(entry["scope"]),
                int(entry["created"]),
                int(entry["expires"]),
                entry.get("minted_by"),
                entry.get("channel"),
            )
            for session_id, entry in sorted(live.items())
        ]

    async def revoke(self, tenant: str, session_id: str) -> bool:
        """Ends one session at once in Redis (API processes cache a credential at most a
        second). False when the tenant has no such live session."""
        raw: str | None = await self._redis.hget(keys.tenant_portal_sessions(tenant), session_id)  # type: ignore[misc]
        if raw is None:
            return False
        entry = json.loads(raw)
        await self._end(tenant, {session_id: entry})
        return int(entry["expires"]) > now_ms()

    async def end_minted_by(self, tenant: str, key_id: str) -> None:
        """Ends every session a (revoked) key minted. Identify refuses them anyway; this
        frees them and keeps the list true."""
        entries = await self._entries(tenant)
        await self._end(tenant, {i: e for i, e in entries.items() if e.get("minted_by") == key_id})

    async def _entries(self, tenant: str) -> dict[str, dict[str, Any]]:
        raw: dict[str, str] = await self._redis.hgetall(keys.tenant_portal_sessions(tenant))  # type: ignore[misc]
        return {session_id: json.loads(value) for session_id, value in raw.items()}

    async def _prune(self, tenant: str) -> dict[str, dict[str, Any]]:
        """Drops expired sessions and those of revoked keys from the index; the rest."""
        entries, now = await self._entries(tenant), now_ms()
        minters = {e["minted_by"] for e in entries.values() if e.get("minted_by")}
        alive = {k for k in minters if await self._keys.exists(tenant, k)}
        dead = {
            session_id: entry
            for session_id, entry in entries.items()
            if int(entry["expires"]) <= now
            or (entry.get("minted_by") and entry["minted_by"] not in alive)
        }
        await self._end(tenant, dead)
        return {i: e for i, e in entries.items() if i not in dead}

    async def _end(self, tenant: str, entries: dict[str, dict[str, Any]]) -> None:
        if not entries:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            for entry in entries.values():
                pipe.delete(keys.api_key_by_digest(entry["digest"]))
            pipe.hdel(keys.tenant_portal_sessions(tenant), *entries)
            await pipe.execute()

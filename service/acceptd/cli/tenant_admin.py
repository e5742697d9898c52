"""`acceptd tenants list | keys NAME | rotate-secret NAME | operator-key NAME`: an operator's
view of tenants, straight against the store (API keys themselves are never stored, so never
shown, except a new operator key, once). Operator keys are made only here: whoever reaches
the store is the operator; no tenant's API request can make one."""

from __future__ import annotations

import sys
from typing import Any

from acceptd.core.clock import to_rfc3339
from acceptd.core.settings import Settings
from acceptd.runtime.bootstrap import secret_box
from acceptd.store.connection import open_shards
from acceptd.store.tenants import TenantStore


async def run_tenant_admin(settings: Settings, verb: str, name: str | None) -> dict[str, Any]:
    """What the verb found, as JSON-able data with a `lines` rendering for people."""
    shards = await open_shards(settings)
    try:
        tenants = TenantStore(shards.control, secret_box(settings))
        if verb == "list":
            names = await tenants.names()
            return {"tenants": names, "lines": names}
        assert name is not None
        if name not in await tenants.names():
            sys.exit(f"no tenant {name!r}")
        if verb == "keys":
            records = await tenants.keys.list(name)
            items = [
                {"id": r.id, "name": r.name, "scope": r.scope,
                 "created_at": to_rfc3339(r.created_ms),
                 "last_used_at": to_rfc3339(r.last_used_ms)}
                for r in records
            ]  # fmt: skip
            lines = [
                f"{i['id']}  {i['scope']:<8}  {i['name']:<20}  last used {i['last_used_at']}"
                for i in items
            ]
            return {"tenant": name, "keys": items, "lines": lines}
        if verb == "operator-key":
            key = await tenants.operator_key(name, "operator")
            return {
                "tenant": name,
                "api_key": key,
                "scope": "operator",
                "lines": [f"operator key: {key}", "shown only now: store it somewhere safe"],
            }
        secret = await tenants.rotate_secret(name)
        return {
            "tenant": name,
            "secret": secret,
            "lines": [f"secret: {secret}", "the previous secret keeps signing for 24 h"],
        }
    finally:
        await shards.aclose()

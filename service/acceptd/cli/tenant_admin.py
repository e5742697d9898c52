"""`acceptd tenants list | keys NAME | rotate-secret NAME | operator-key NAME | limits NAME`:
an operator's view of tenants, straight against the store (API keys themselves are never
stored, so never shown, except a new operator key, once). Operator keys are made only
here: whoever reaches the store is the operator; no tenant's API request can make one.
`limits` shows or sets a tenant's share of the workers (store/fairshare.py)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from acceptd.core.clock import to_rfc3339
from acceptd.core.settings import Settings
from acceptd.store import fairshare
from acceptd.store.bootstrap import secret_box
from acceptd.store.connection import open_shards
from acceptd.store.shards import Shards
from acceptd.store.tenants import TenantStore


async def run_tenant_admin(
    settings: Settings, verb: str, name: str | None, args: argparse.Namespace | None = None
) -> dict[str, Any]:
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
                {
                    "id": r.id,
                    "name": r.name,
                    "scope": r.scope,
                    "created_at": to_rfc3339(r.created_ms),
                    "last_used_at": to_rfc3339(r.last_used_ms),
                }
                for r in records
            ]
            lines = [
                f"{i['id']}  {i['scope']:<8}  {i['name']:<20}  last used {i['last_used_at']}"
                for i in items
            ]
            return {"tenant": name, "keys": items, "lines": lines}
        if verb == "limits":
            return await _limits(shards, tenants, name, args)
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


async def _limits(
    shards: Shards, tenants: TenantStore, name: str, args: argparse.Namespace | None
) -> dict[str, Any]:
    """Shows the tenant's weight and cap, after changing what the options ask for."""
    limits = await tenants.limits(name)
    weight = getattr(args, "weight", None)
    cap = getattr(args, "max_running", None)
    if weight is not None or cap is not None:
        if weight is not None:
            limits = replace(limits, weight=weight)
        if cap is not None:
            if cap != "none" and not cap.isdigit():
                sys.exit("--max-running takes a number, or 'none'")
            limits = replace(limits, max_running=None if cap == "none" else int(cap))
        try:
            await tenants.set_limits(name, limits)
        except ValueError as exc:
            sys.exit(str(exc))
        await fairshare.apply_limits(shards, name, limits)
    running = "no cap" if limits.max_running is None else str(limits.max_running)
    return {
        "tenant": name,
        "weight": limits.weight,
        "max_running": limits.max_running,
        "lines": [f"weight {limits.weight}", f"max running: {running}"],
    }

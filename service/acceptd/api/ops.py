"""The OpenAPI document (health, readiness and metrics are acceptd.runtime.opsserver's)."""

from __future__ import annotations

import json

from aiohttp import web

OPENAPI = web.AppKey("openapi", bytes)


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


def encode(document: dict[str, object]) -> bytes:
    return json.dumps(document, indent=1).encode()

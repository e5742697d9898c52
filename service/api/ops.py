"""Health, readiness and the OpenAPI document."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from service import metrics
from service.api import state

log = logging.getLogger(__name__)

OPENAPI = web.AppKey("openapi", bytes)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "detail": None})


async def readyz(request: web.Request) -> web.Response:
    try:
        await request.app[state.REDIS].ping()
    except Exception as exc:
        log.warning("not ready: %s", exc)
        return web.json_response(
            {"status": "unavailable", "detail": f"Redis unreachable: {type(exc).__name__}"},
            status=503,
        )
    return web.json_response({"status": "ok", "detail": None})


async def prometheus(request: web.Request) -> web.Response:
    body, content_type = await metrics.render(request.app[state.REDIS])
    return web.Response(body=body, headers={"Content-Type": content_type})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


def encode(document: dict[str, object]) -> bytes:
    return json.dumps(document, indent=1).encode()

"""/healthz, /readyz and /metrics: served by the API, and on their own port by the roles
that have no HTTP API (worker, dispatcher)."""

from __future__ import annotations

import logging

from aiohttp import web
from redis.asyncio import Redis

from acceptd.runtime import metrics

log = logging.getLogger(__name__)

REDIS = web.AppKey("redis", Redis)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "detail": None})


async def readyz(request: web.Request) -> web.Response:
    try:
        await request.app[REDIS].ping()
    except Exception as exc:
        log.warning("not ready: %s", exc)
        return web.json_response(
            {"status": "unavailable", "detail": f"Redis unreachable: {type(exc).__name__}"},
            status=503,
        )
    return web.json_response({"status": "ok", "detail": None})


async def metrics_handler(request: web.Request) -> web.Response:
    body, content_type = await metrics.render(request.app[REDIS])
    return web.Response(body=body, headers={"Content-Type": content_type})


async def start(redis: Redis, host: str, port: int) -> web.AppRunner | None:
    """Serve on host:port; port 0 means off (as under `dev`, whose API serves /metrics)."""
    if port == 0:
        return None
    app = web.Application()
    app[REDIS] = redis
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("metrics and health on %s:%d", host, port)
    return runner

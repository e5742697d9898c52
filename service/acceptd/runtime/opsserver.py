"""/healthz, /readyz and /metrics on a role's metrics port (ACCEPTD_METRICS_PORT). The API
answers /healthz and /readyz on its public port too, but /metrics only here: what the
queues hold and how busy each tenant's job types are is for the operator, not the internet."""

from __future__ import annotations

import errno
import logging

from aiohttp import web
from redis.asyncio import Redis

from acceptd.runtime import metrics
from acceptd.store.shards import Shards

log = logging.getLogger(__name__)

REDIS = web.AppKey("redis", Redis)
SHARDS = web.AppKey("shards", Shards)


class MetricsPortInUseError(RuntimeError):
    """Said in one line: which port, and how to choose another."""


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
    body, content_type = await metrics.render(request.app[SHARDS])
    return web.Response(body=body, headers={"Content-Type": content_type})


async def start(shards: Shards, host: str, port: int) -> web.AppRunner | None:
    """Serve on host:port; port 0 means off."""
    if port == 0:
        return None
    app = web.Application()
    app[REDIS] = shards.control
    app[SHARDS] = shards
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno != errno.EADDRINUSE:
            raise
        raise MetricsPortInUseError(
            f"metrics port {port} on {host} is in use: set ACCEPTD_METRICS_PORT to a free "
            "port, or to 0 to serve no metrics"
        ) from exc
    log.info("metrics and health on %s:%d", host, port)
    return runner

"""The ceilings: what the bare stack does with no acceptd in between.

`api`: a bare aiohttp handler answering 202 with a Location, as fast as aiohttp can.
`worker`: bare arq running a no-op job that POSTs an unsigned webhook to the receiver.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from typing import Any

import aiohttp
from aiohttp import web
from arq import Worker
from arq.connections import RedisSettings

from acceptd.runtime.eventloop import install_uvloop

BARE_QUEUE = "bench:bare:queue"


def api_app() -> web.Application:
    async def submit(request: web.Request) -> web.Response:
        await request.read()
        job_id = uuid.uuid4().hex
        body = json.dumps({"id": job_id, "status": "queued"}).encode()
        return web.Response(
            status=202,
            body=body,
            content_type="application/json",
            headers={"Location": f"/v1/jobs/{job_id}", "Retry-After": "1"},
        )

    app = web.Application()
    app.router.add_post("/v1/jobs", submit)
    return app


async def notify(ctx: dict[str, Any], job_id: str) -> None:
    session: aiohttp.ClientSession = ctx["session"]
    payload = json.dumps({"id": job_id}).encode()
    headers = {"x-bare": "1", "Content-Type": "application/json"}
    async with session.post(ctx["receiver"], data=payload, headers=headers) as response:
        await response.read()


def run_worker(redis_url: str, receiver: str) -> None:
    async def startup(ctx: dict[str, Any]) -> None:
        ctx["session"] = aiohttp.ClientSession()
        ctx["receiver"] = receiver

    async def shutdown(ctx: dict[str, Any]) -> None:
        await ctx["session"].close()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    Worker(
        functions=[notify],
        queue_name=BARE_QUEUE,
        redis_settings=RedisSettings.from_dsn(redis_url),
        on_startup=startup,
        on_shutdown=shutdown,
        max_jobs=16,
        keep_result=0,
        poll_delay=0.005,  # the ceiling gets arq's best latency setting, at an idle CPU cost
        job_serializer=lambda d: json.dumps(d).encode(),
        job_deserializer=json.loads,
        log_results=False,
    ).run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["api", "worker"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--redis")
    parser.add_argument("--receiver")
    args = parser.parse_args()
    install_uvloop()  # the ceilings run on uvloop as acceptd does, or the ratios would flatter
    if args.role == "api":
        web.run_app(api_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)
    else:
        run_worker(args.redis, args.receiver)

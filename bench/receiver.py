"""Bench receiver process: records when each job's webhook arrived (verified, or bare)."""

from __future__ import annotations

import argparse
import json
import time

from aiohttp import web

from acceptd.runtime.eventloop import install_uvloop
from acceptd.webhooks.signing import WebhookVerificationError, verify


def build(secret: str) -> web.Application:
    arrivals: dict[str, int] = {}
    rejected = [0]
    # The tenant's, and each endpoint's a bench registered (bench.gaps --endpoint).
    secrets = [secret]

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time_ns()
        if request.headers.get("x-bare") is None:
            try:
                verify(secrets, request.headers, body)
            except WebhookVerificationError:
                rejected[0] += 1
                return web.Response(status=401)
            job_id = json.loads(body)["data"]["id"]
        else:
            job_id = json.loads(body)["id"]
        arrivals.setdefault(job_id, now)
        return web.Response(status=204)

    async def results(request: web.Request) -> web.Response:
        return web.json_response({"arrivals": arrivals, "rejected": rejected[0]})

    async def reset(request: web.Request) -> web.Response:
        arrivals.clear()
        return web.Response(status=204)

    async def add_secret(request: web.Request) -> web.Response:
        secrets.append((await request.json())["secret"])
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/secrets", add_secret)
    app.router.add_get("/results", results)
    app.router.add_post("/reset", reset)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    install_uvloop()
    web.run_app(build(args.secret), host="127.0.0.1", port=args.port, print=None, access_log=None)

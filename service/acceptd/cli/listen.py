"""`acceptd listen`: webhooks to your laptop, like `stripe listen`.

Without `--secret` it registers a temporary endpoint (its URL is this listener's) and
removes it on Ctrl-C; with `--secret` (repeat it during a rotation) it only listens, for
jobs submitted with this listener as their callback_url. Every webhook is verified; with
`--forward-to` it is passed on to a local app with its headers and raw body, and the app's
answer goes back to acceptd, so a failing handler sees the real retries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from acceptd.cli.output import painted
from acceptd.client import Client
from acceptd.core.events import ALL_EVENTS
from acceptd.webhooks.receiver import MAX_BODY_BYTES, WebhookVerificationError, verify_event

FORWARD_TIMEOUT_SECONDS = 10.0
# What the sender is told when the local app cannot be reached: retry later.
APP_UNREACHABLE = 502
# Passed on to the local app: the Standard Webhooks headers and what describes the body.
FORWARDED_HEADERS = (
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "user-agent",
    "traceparent",
)


def add_listen(verb: Callable[..., argparse.ArgumentParser], run: Any) -> None:
    listen = verb("listen", "receive webhooks here (and forward them to a local app)", run)
    listen.add_argument("--host", default="127.0.0.1")
    listen.add_argument("--port", type=int, default=0, help="default: any free port")
    listen.add_argument(
        "--secret", action="append", help="only listen, verifying with this secret (repeatable)"
    )
    listen.add_argument("--forward-to", metavar="URL", help="pass each webhook on to this URL")
    listen.add_argument(
        "--events",
        help=(
            f"with a temporary endpoint: comma-separated (default: all of {', '.join(ALL_EVENTS)})"
        ),
    )


class Listener:
    def __init__(self, secrets: list[str], forward_to: str | None, as_json: bool) -> None:
        self.secrets = secrets
        self._forward_to = forward_to
        self._json = as_json
        self._session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        """Every path is a webhook; a body over MAX_BODY_BYTES is a 413 (client_max_size)."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        # The whole body, however it arrives: one read() of the stream returns what has come
        # so far, and a part of a body fails its signature.
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413)
        try:
            event = verify_event(self.secrets, request.headers, body)
        except WebhookVerificationError as exc:
            print(
                f"✗ rejected: {exc} (webhook-id {request.headers.get('webhook-id')})",
                file=sys.stderr,
                flush=True,
            )
            return web.Response(status=401, text=str(exc))
        status, note = 200, ""
        if self._forward_to is not None:
            status, note = await self._forward(request, body)
        if self._json:
            print(
                json.dumps(
                    {
                        "webhook_id": event.id,
                        "type": event.type,
                        "data": event.data,
                        "forwarded_status": status if self._forward_to else None,
                    }
                ),
                flush=True,
            )
        else:
            subject = event.data.get("id") or event.data.get("endpoint_id") or ""
            state = painted(str(event.data.get("status", "")))
            print(f"✓ {event.type}  {event.id}  {subject}  {state}{note}".rstrip(), flush=True)
        return web.Response(status=status)

    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, str]:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_SECONDS)
            self._session = aiohttp.ClientSession(timeout=timeout)
        headers = {k: v for k in FORWARDED_HEADERS if (v := request.headers.get(k)) is not None}
        started = time.perf_counter()
        try:
            async with self._session.post(
                str(self._forward_to), data=body, headers=headers
            ) as answer:
                await answer.read()
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return APP_UNREACHABLE, f"  → {self._forward_to} unreachable: {exc}"
        millis = (time.perf_counter() - started) * 1000
        return status, f"  → {status} in {millis:.0f} ms"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def run_listen(args: argparse.Namespace, client: Client) -> int:
    listener = Listener(list(args.secret or []), args.forward_to, args.json)
    runner = web.AppRunner(listener.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://{args.host}:{port}/webhooks"
    endpoint_id: str | None = None
    try:
        if not listener.secrets:
            events = [e.strip() for e in args.events.split(",")] if args.events else ALL_EVENTS
            endpoint = await client.create_endpoint(
                url, events=events, description="acceptd listen (removed when it stops)"
            )
            endpoint_id = endpoint.id
            listener.secrets = [endpoint.secret]
            print(f"registered endpoint {endpoint.id} for {url}", file=sys.stderr, flush=True)
        else:
            print(
                f"listening on {url} (any path): use it as a callback_url",
                file=sys.stderr,
                flush=True,
            )
        if args.forward_to:
            print(f"forwarding to {args.forward_to}", file=sys.stderr, flush=True)
        print("Ctrl-C to stop", file=sys.stderr, flush=True)
        await _until_signalled()
    finally:
        if endpoint_id is not None:
            await client.delete_endpoint(endpoint_id)
            print(f"removed endpoint {endpoint_id}", file=sys.stderr, flush=True)
        await listener.close()
        await runner.cleanup()
    return 0


async def _until_signalled() -> None:
    # runtime.eventloop.install_stop_signals does this for the roles, but importing it would
    # pull the server settings (pydantic-settings) into the light client install.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

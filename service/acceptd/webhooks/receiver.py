"""For webhook receivers: verify a delivery into an event, and a ready aiohttp receiver app.

    receiver = WebhookReceiver("whsec_…", handler=on_event)   # handler: sync or async
    web.run_app(receiver.app(), port=9000)

The app verifies the signature over the raw body, refuses stale or forged requests (401),
answers duplicates (same webhook-id) without calling the handler again, and answers 2xx
before the handler runs, so a slow handler never makes the sender retry.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from acceptd.core.events import TERMINAL_EVENTS
from acceptd.webhooks.signing import WebhookVerificationError, verify

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
TERMINAL_TYPES = frozenset(TERMINAL_EVENTS)

__all__ = ["WebhookEvent", "WebhookReceiver", "WebhookVerificationError", "verify_event"]


@dataclass(frozen=True)
class WebhookEvent:
    id: str  # webhook-id: the same on every retry of this event
    type: str
    timestamp: str
    data: dict[str, Any]
    body: bytes

    @property
    def job_id(self) -> str | None:
        value = self.data.get("id")
        return value if isinstance(value, str) else None


def verify_event(
    secrets: str | Sequence[str], headers: Mapping[str, str], body: bytes, *, tolerance: int = 300
) -> WebhookEvent:
    """Verify (signature, timestamp) and parse. Raises WebhookVerificationError."""
    verify(secrets, headers, body, tolerance=tolerance)
    try:
        payload = json.loads(body)
        event_type, timestamp, data = payload["type"], payload["timestamp"], payload["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise WebhookVerificationError("signed, but not an acceptd event payload") from exc
    msg_id = next(v for k, v in headers.items() if k.lower() == "webhook-id")
    return WebhookEvent(msg_id, event_type, timestamp, data, body)


Handler = Callable[[WebhookEvent], Awaitable[None] | None]
Rejected = Callable[[str, Mapping[str, str]], None]


class _SeenIds:
    """The last `size` webhook-ids, to answer retries of an event without handling it twice."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, msg_id: str) -> bool:
        if msg_id in self._ids:
            self._ids.move_to_end(msg_id)
            return False
        self._ids[msg_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True


class WebhookReceiver:
    def __init__(
        self,
        secrets: str | Sequence[str],
        handler: Handler | None = None,
        *,
        on_rejected: Rejected | None = None,
        remember: int = 10_000,
    ) -> None:
        self._secrets = secrets
        self._handler = handler
        self._on_rejected = on_rejected
        self._seen = _SeenIds(remember)
        self._terminal: OrderedDict[str, WebhookEvent] = OrderedDict()
        self._waiters: dict[str, list[asyncio.Future[WebhookEvent]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/{tail:.*}", self._receive)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = verify_event(self._secrets, request.headers, body)
        except WebhookVerificationError as exc:
            if self._on_rejected is not None:
                self._on_rejected(str(exc), request.headers)
            return web.json_response(
                {
                    "type": "about:blank",
                    "title": "Webhook refused",
                    "status": 401,
                    "detail": str(exc),
                },
                status=401,
                content_type="application/problem+json",
            )
        if not self._seen.add(event.id):
            return web.json_response({"status": "duplicate"})
        self._accept(event)
        return web.json_response({"status": "received"})

    def _accept(self, event: WebhookEvent) -> None:
        job_id = event.job_id
        if job_id and event.type in TERMINAL_TYPES:
            self._terminal[job_id] = event
            while len(self._terminal) > 10_000:
                self._terminal.popitem(last=False)
            for waiter in self._waiters.pop(job_id, []):
                if not waiter.done():
                    waiter.set_result(event)
        if self._handler is not None:
            task = asyncio.get_running_loop().create_task(self._run_handler(event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_handler(self, event: WebhookEvent) -> None:
        assert self._handler is not None
        try:
            outcome = self._handler(event)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            log.exception("webhook handler failed for %s (%s)", event.id, event.type)

    async def wait_for_job(self, job_id: str) -> WebhookEvent:
        """The job's terminal event: at once if it already came, else when it comes."""
        if job_id in self._terminal:
            return self._terminal[job_id]
        waiter: asyncio.Future[WebhookEvent] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(waiter)
        return await waiter

    async def start(self, host: str = "127.0.0.1", port: int = 0, path: str = "/webhooks") -> str:
        """Serve on host:port (0 = any free port); returns the URL to register."""
        self._runner = web.AppRunner(self.app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.url = f"http://{bound_host}:{bound_port}{path}"
        return self.url

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

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
from typing import Any, Literal

from aiohttp import web

from acceptd.core.events import TERMINAL_EVENTS
from acceptd.webhooks.signing import WebhookVerificationError, verify, webhook_headers_of

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
    msg_id = webhook_headers_of(headers)["webhook-id"]  # the one verify() checked
    return WebhookEvent(msg_id, event_type, timestamp, data, body)


Handler = Callable[[WebhookEvent], Awaitable[None] | None]
Ack = Literal["after_handler", "on_receipt"]


def _problem(status: int, title: str, detail: str) -> web.Response:
    return web.json_response(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status=status,
        content_type="application/problem+json",
    )


Rejected = Callable[[str, Mapping[str, str]], None]


class _SeenIds:
    """The last `size` webhook-ids, to answer retries of an event without handling it twice."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def contains(self, msg_id: str) -> bool:
        return msg_id in self._ids

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
        ack: Ack = "after_handler",
    ) -> None:
        """`ack`: "after_handler" (the default) answers 2xx only once the handler returned,
        and 500 if it raised, so the sender retries and the event is not lost; a retry of
        a handled event is answered without running the handler again. "on_receipt"
        answers at once and runs the handler in the background: faster for the sender,
        but an event whose handler raises is lost."""
        self._secrets = secrets
        self._handler = handler
        self._ack = ack
        self._handling: set[str] = set()
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
            return _problem(401, "Webhook refused", str(exc))
        if self._ack == "on_receipt":
            if not self._seen.add(event.id):
                return web.json_response({"status": "duplicate"})
            self._accept(event)
            return web.json_response({"status": "received"})
        return await self._handle_then_ack(event)

    async def _handle_then_ack(self, event: WebhookEvent) -> web.Response:
        if self._seen.contains(event.id):
            return web.json_response({"status": "duplicate"})
        if event.id in self._handling:  # the same event, retried while its handler runs
            return _problem(409, "Webhook being handled", "this event is being handled")
        self._handling.add(event.id)
        try:
            if self._handler is not None:
                outcome = self._handler(event)
                if inspect.isawaitable(outcome):
                    await outcome
        except Exception:
            log.exception("webhook handler failed for %s (%s)", event.id, event.type)
            return _problem(500, "Webhook handler failed", "the sender will retry this event")
        finally:
            self._handling.discard(event.id)
        self._seen.add(event.id)
        self._note_terminal(event)
        return web.json_response({"status": "handled"})

    def _accept(self, event: WebhookEvent) -> None:
        self._note_terminal(event)
        if self._handler is not None:
            task = asyncio.get_running_loop().create_task(self._run_handler(event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _note_terminal(self, event: WebhookEvent) -> None:
        job_id = event.job_id
        if job_id and event.type in TERMINAL_TYPES:
            self._terminal[job_id] = event
            while len(self._terminal) > 10_000:
                self._terminal.popitem(last=False)
            for waiter in self._waiters.pop(job_id, []):
                if not waiter.done():
                    waiter.set_result(event)

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

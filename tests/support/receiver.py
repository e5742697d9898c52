"""A recording webhook receiver on loopback, scriptable to fail, stall or answer anything."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.waiting import wait_until


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "ok"
    stall_seconds: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event(self) -> str:
        return str(self.json["type"])


class Receiver:
    """Answers each request with the next scripted Answer, then with `default` forever."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: deque[Answer] = deque()
        self.default = Answer()
        self.in_flight = 0
        self.max_in_flight = 0
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._handle)

    def then(self, *answers: Answer) -> Receiver:
        self.script.extend(answers)
        return self

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(request.path, dict(request.headers), body, time.monotonic()))
        answer = self.script.popleft() if self.script else self.default
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if answer.stall_seconds:
                await asyncio.sleep(answer.stall_seconds)
        finally:
            self.in_flight -= 1
        return web.Response(status=answer.status, text=answer.body, headers=answer.headers)

    def events(self, name: str | None = None) -> list[Received]:
        return [r for r in self.received if name is None or r.event == name]

    def arrived(self, name: str) -> Callable[[], Awaitable[list[Received]]]:
        """A wait_until condition: the `name` events received so far, once there is one."""

        async def check() -> list[Received]:
            return self.events(name)

        return check

    def got(self, count: int, event: str | None = None) -> Callable[[], Awaitable[bool]]:
        """A wait_until condition: at least `count` requests received (of `event`, if named)."""

        async def check() -> bool:
            return len(self.events(event)) >= count

        return check

    def about(self, subject_id: str) -> list[Received]:
        """The webhooks received about one job, batch or delivery (their data's id)."""
        return [r for r in self.received if r.json["data"].get("id") == subject_id]

    async def webhooks_about(
        self,
        subject_id: str,
        count: int = 1,
        *,
        timeout: float = 20,  # noqa: ASYNC109 - a deadline for polling, not a cancel scope
    ) -> list[Received]:
        """Waits for `count` webhooks about `subject_id`: all of them received by then."""

        async def arrived() -> list[Received]:
            found = self.about(subject_id)
            return found if len(found) >= count else []

        found: list[Received] = await wait_until(arrived, timeout=timeout)
        return found

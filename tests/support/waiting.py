"""Waiting on a condition with a deadline: no test sleeps and hopes."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp


async def wait_until(
    condition: Callable[[], Awaitable[Any]] | Callable[[], Any],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for polling, not a cancel scope
    interval: float = 0.02,
) -> Any:
    """Polls `condition` (a coroutine function, or a plain one for state held in this
    process) until it returns something truthy; fails the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)


async def answers(
    url: str, status: int = 200, method: str = "GET", body: bytes | None = None
) -> bool:
    """Whether `url` answers `method` (with `body`) with `status`: a wait_until condition
    for a server coming up (nothing listening yet is False)."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, url, data=body) as response,
        ):
            return response.status == status
    except aiohttp.ClientError:
        return False


async def healthy(port: int, path: str = "/healthz") -> bool:
    """Whether something on this loopback port answers `path` with 200 (a wait_until
    condition for processes coming up)."""
    return await answers(f"http://127.0.0.1:{port}{path}")

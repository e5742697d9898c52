"""Calling the API from a test in one line: the answer's JSON, or a failed assertion."""

from __future__ import annotations

from typing import Any

import aiohttp


async def call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with http.request(method, url, json=body) as answer:
        assert answer.status < 300, await answer.text()
        return await answer.json() if answer.status != 204 else None

"""Calling the API from a test in one line: the answer's JSON, or a failed assertion."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from tests.support.constants import API_KEY


def authed_session(api_key: str = API_KEY, **options: Any) -> aiohttp.ClientSession:
    """A session that sends `api_key` (the bootstrap tenant's, unless told) with every
    request; `options` as aiohttp.ClientSession takes them. Use it in `async with`."""
    return aiohttp.ClientSession(headers={"Authorization": f"Bearer {api_key}"}, **options)


async def call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with http.request(method, url, json=body) as answer:
        assert answer.status < 300, await answer.text()
        return await answer.json() if answer.status != 204 else None


async def portal_session(http: aiohttp.ClientSession, api_url: str, **link: Any) -> str:
    """The bearer token of a portal session opened from a new link (`link`: its body, such
    as scope and channel), as the console would open it."""
    made = await call(http, "POST", f"{api_url}/v1/portal-links", link)
    token = made["url"].partition("#token=")[2]
    session = await call(http, "POST", f"{api_url}/v1/portal-sessions", {"token": token})
    return str(session["session"])


async def submit_job(
    client: TestClient[Any, Any], auth: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    """POST /v1/jobs through an in-process test client, which must answer 202: the job."""
    response = await client.post("/v1/jobs", json=body, headers=auth)
    assert response.status == 202, await response.text()
    return dict(await response.json())

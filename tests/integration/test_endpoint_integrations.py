"""Endpoint options for integrations (issue #28; API.md, "Endpoint options for
integrations"): static headers, sealed and never shown back, sent with every webhook, test
event and retry; a retry schedule of the endpoint's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from acceptd.store import keys
from tests.support.constants import API_KEY
from tests.support.http import call
from tests.support.receiver import Answer, Received
from tests.support.waiting import wait_until

SECRET_VALUE = "k-very-secret-123"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as session:
        yield session


async def _webhooks_of(recording: Any, subject_id: str, count: int = 1) -> list[Received]:
    async def arrived() -> list[Received]:
        found = [r for r in recording.received if r.json["data"].get("id") == subject_id]
        return found if len(found) >= count else []

    found: list[Received] = await wait_until(arrived, timeout=20)
    return found


async def test_headers_are_sent_with_every_webhook_and_never_shown(
    api_url: str,
    worker: None,
    dispatcher: Any,
    receiver: tuple[Any, str],
    http: aiohttp.ClientSession,
    redis_url: str,
) -> None:
    recording, url = receiver
    endpoint = await call(
        http, "POST", f"{api_url}/v1/endpoints",
        {"url": url, "headers": {"X-Api-Key": SECRET_VALUE, "Authorization": "Bearer r-1"}},
    )  # fmt: skip
    assert endpoint["headers"] == {"X-Api-Key": "***", "Authorization": "***"}
    read = await call(http, "GET", f"{api_url}/v1/endpoints/{endpoint['id']}")
    assert read["headers"] == {"X-Api-Key": "***", "Authorization": "***"}
    listed = await call(http, "GET", f"{api_url}/v1/endpoints")
    assert SECRET_VALUE not in str(listed)
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:  # sealed at rest: a dump, a replica or a backup does not hand it out
        key = keys.endpoint(endpoint["id"])
        stored = await redis.hgetall(key)
    finally:
        await redis.aclose()
    assert SECRET_VALUE not in str(stored)

    job = await call(
        http, "POST", f"{api_url}/v1/jobs", {"type": "demo.echo", "input": {"value": 1}}
    )
    [webhook] = await _webhooks_of(recording, job["id"])
    assert webhook.headers["X-Api-Key"] == SECRET_VALUE
    assert webhook.headers["Authorization"] == "Bearer r-1"
    assert webhook.headers["webhook-id"].startswith("msg_")  # the protocol's own still there

    test = await call(http, "POST", f"{api_url}/v1/endpoints/{endpoint['id']}/test")

    async def test_arrived() -> list[Received]:
        return [r for r in recording.received if r.headers.get("webhook-id") == test["webhook_id"]]

    [tested] = await wait_until(test_arrived, timeout=20)
    assert tested.headers["X-Api-Key"] == SECRET_VALUE

    # PATCH replaces the whole set; {} removes them.
    changed = await call(
        http, "PATCH", f"{api_url}/v1/endpoints/{endpoint['id']}", {"headers": {"X-Other": "2"}}
    )
    assert changed["headers"] == {"X-Other": "***"}
    job = await call(
        http, "POST", f"{api_url}/v1/jobs", {"type": "demo.echo", "input": {"value": 1}}
    )
    [webhook] = await _webhooks_of(recording, job["id"])
    assert webhook.headers["X-Other"] == "2"
    assert "X-Api-Key" not in webhook.headers
    cleared = await call(http, "PATCH", f"{api_url}/v1/endpoints/{endpoint['id']}", {"headers": {}})
    assert cleared["headers"] == {}


async def test_a_retried_attempt_carries_the_headers_too(
    api_url: str,
    worker: None,
    dispatcher: Any,
    receiver: tuple[Any, str],
    http: aiohttp.ClientSession,
) -> None:
    recording, url = receiver
    recording.then(Answer(status=503))
    await call(http, "POST", f"{api_url}/v1/endpoints", {"url": url, "headers": {"X-K": "v"}})
    job = await call(
        http, "POST", f"{api_url}/v1/jobs", {"type": "demo.echo", "input": {"value": 1}}
    )
    first, second = await _webhooks_of(recording, job["id"], 2)
    assert first.headers["X-K"] == second.headers["X-K"] == "v"


@pytest.mark.parametrize(
    "headers",
    [
        {"webhook-id": "x"},
        {"Webhook-Signature": "x"},
        {"Content-Type": "text/plain"},
        {"Content-Length": "1"},
        {"Host": "example.com"},
        {"traceparent": "00-x"},
        {"Transfer-Encoding": "chunked"},
        {"Connection": "close"},
        {"Proxy-Authorization": "Basic x"},
        {"Upgrade": "h2c"},
        {"bad name": "x"},
        {"X-Ok": "line\r\nInjected: 1"},
        {"X-Ok": "x" * 5000},
        {f"X-{i}": "v" for i in range(21)},
    ],
)
async def test_reserved_or_malformed_headers_are_a_422_naming_headers(
    api_url: str, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    async with http.post(
        f"{api_url}/v1/endpoints", json={"url": "https://example.com/h", "headers": headers}
    ) as response:
        problem = await response.json()
        assert response.status == 422, problem
    assert [e["pointer"] for e in problem["errors"]] == ["#/headers"]
    assert "x" * 5000 not in str(problem)  # the value is not echoed back


async def test_an_endpoints_own_retry_schedule_gives_its_attempts(
    api_url: str,
    worker: None,
    dispatcher: Any,
    receiver: tuple[Any, str],
    http: aiohttp.ClientSession,
) -> None:
    """[0.2, 0.2]: the first attempt and two retries, then the delivery fails; the global
    schedule of the tests (three retries) is not used."""
    recording, url = receiver
    recording.default = Answer(status=500)
    endpoint = await call(
        http, "POST", f"{api_url}/v1/endpoints", {"url": url, "retry_schedule": [0.2, 0.2]}
    )
    assert endpoint["retry_schedule"] == [0.2, 0.2]
    job = await call(
        http, "POST", f"{api_url}/v1/jobs", {"type": "demo.echo", "input": {"value": 1}}
    )
    await _webhooks_of(recording, job["id"], 3)

    async def failed() -> dict[str, Any] | None:
        found = await call(http, "GET", f"{api_url}/v1/jobs/{job['id']}/deliveries")
        ours = [d for d in found["items"] if d["endpoint_id"] == endpoint["id"]]
        return ours[0] if ours and ours[0]["status"] == "failed" else None

    delivery = await wait_until(failed, timeout=20)
    assert len(delivery["attempts"]) == 3
    assert len([r for r in recording.received if r.json["data"].get("id") == job["id"]]) == 3
    back = await call(
        http, "PATCH", f"{api_url}/v1/endpoints/{endpoint['id']}", {"retry_schedule": []}
    )
    assert back["retry_schedule"] is None


@pytest.mark.parametrize(
    "schedule", [[-1], [86401], [1] * 21, ["NaN"], [1e309], "1,2"]
)  # fmt: skip
async def test_a_bad_retry_schedule_is_a_422(
    api_url: str, http: aiohttp.ClientSession, schedule: Any
) -> None:
    async with http.post(
        f"{api_url}/v1/endpoints",
        json={"url": "https://example.com/h", "retry_schedule": schedule},
    ) as response:
        problem = await response.json()
        assert response.status in (400, 422), problem

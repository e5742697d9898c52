"""What a tenant's key can make Redis keep that no job is charged for (#24, red team's second
round): test events, API keys and unused portal links each stop at a cap, checked in the
step that writes, so one tenant cannot fill the store every tenant shares through them."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from acceptd.api.endpoints import TEST_EVENTS_PER_RETENTION
from acceptd.store.apikeys import MAX_KEYS_PER_TENANT
from acceptd.store.portal import MAX_UNUSED_LINKS
from tests.support.receiver import Receiver

Client = TestClient[Any, Any]


async def test_test_events_stop_at_their_cap_per_endpoint(
    client: Client, auth: dict[str, str], receiver: tuple[Receiver, str]
) -> None:
    """Each test event is a delivery kept for the retention and charged to no job: 100 a
    second for a week was 115 GB."""
    _, url = receiver
    endpoint = await (await client.post("/v1/endpoints", json={"url": url}, headers=auth)).json()
    path = f"/v1/endpoints/{endpoint['id']}/test"
    answers = [(await client.post(path, headers=auth)).status for _ in range(25)]
    assert answers.count(202) == TEST_EVENTS_PER_RETENTION
    refused = await client.post(path, headers=auth)
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) >= 1
    other = await (await client.post("/v1/endpoints", json={"url": url}, headers=auth)).json()
    assert (await client.post(f"/v1/endpoints/{other['id']}/test", headers=auth)).status == 202


async def test_api_keys_stop_at_their_cap_even_when_created_at_once(
    client: Client, auth: dict[str, str]
) -> None:
    async def make(index: int) -> int:
        body = {"name": f"k{index}", "scope": "standard"}
        return (await client.post("/v1/api-keys", json=body, headers=auth)).status

    answers = await asyncio.gather(*(make(i) for i in range(MAX_KEYS_PER_TENANT + 20)))
    listed = await (await client.get("/v1/api-keys", headers=auth)).json()
    assert len(listed["items"]) == MAX_KEYS_PER_TENANT  # the bootstrap key among them
    assert set(answers) == {201, 409}


async def test_unused_portal_links_stop_at_their_cap_and_an_exchange_frees_one(
    client: Client, auth: dict[str, str]
) -> None:
    async def link() -> Any:
        return await client.post("/v1/portal-links", json={"scope": "endpoints"}, headers=auth)

    made = [await link() for _ in range(MAX_UNUSED_LINKS)]
    assert {answer.status for answer in made} == {201}
    assert (await link()).status == 409
    token = (await made[0].json())["url"].partition("#token=")[2]
    assert (await client.post("/v1/portal-sessions", json={"token": token})).status == 201
    assert (await link()).status == 201

"""What a tenant's key can make Redis keep that no job is charged for (#24, red team's second
round): test events, API keys and unused portal links each stop at a cap, checked in the
step that writes, so one tenant cannot fill the store every tenant shares through them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from acceptd.api import state
from acceptd.api.endpoints import SESSION_SHARE, TEST_EVENTS_PER_RETENTION
from acceptd.store import keys
from acceptd.store.apikeys import MAX_KEYS_PER_TENANT
from acceptd.store.bootstrap import BOOTSTRAP_TENANT
from acceptd.store.portal import MAX_LIVE_SESSIONS, MAX_UNUSED_LINKS
from tests.support.receiver import Receiver

Client = TestClient[Any, Any]


async def test_test_events_stop_at_their_cap_per_tenant(
    client: Client, auth: dict[str, str], receiver: tuple[Receiver, str]
) -> None:
    """Each test event is a delivery kept for the retention and charged to no job: 100 a
    second for a week was 115 GB. A new endpoint gets no fresh allowance."""
    _, url = receiver
    endpoint = await (await client.post("/v1/endpoints", json={"url": url}, headers=auth)).json()
    path = f"/v1/endpoints/{endpoint['id']}/test"
    answers = [(await client.post(path, headers=auth)).status for _ in range(105)]
    assert answers.count(202) == TEST_EVENTS_PER_RETENTION
    refused = await client.post(path, headers=auth)
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) >= 1
    other = await (await client.post("/v1/endpoints", json={"url": url}, headers=auth)).json()
    assert (await client.post(f"/v1/endpoints/{other['id']}/test", headers=auth)).status == 429


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


async def test_live_portal_sessions_stop_at_their_cap(client: Client, auth: dict[str, str]) -> None:
    """Red team, third round: sessions were uncapped, and every exchange and list read and
    decoded all of them on the loop (100,000: 0.7 s an exchange)."""
    tenant_sessions = keys.tenant_portal_sessions(BOOTSTRAP_TENANT)
    live = {
        "scope": "endpoints",
        "created": 1,
        "expires": 2**42,
        "minted_by": None,
        "digest": "0" * 64,
    }
    direct: Redis = client.app[state.SHARDS].for_key(tenant_sessions)
    await direct.hset(  # type: ignore[misc]
        tenant_sessions,
        mapping={f"ps_{i:026d}": json.dumps(live) for i in range(MAX_LIVE_SESSIONS)},
    )
    made = await client.post("/v1/portal-links", json={"scope": "endpoints"}, headers=auth)
    token = (await made.json())["url"].partition("#token=")[2]
    refused = await client.post("/v1/portal-sessions", json={"token": token})
    assert refused.status == 409
    assert "live portal sessions" in (await refused.json())["detail"]
    await direct.hdel(tenant_sessions, "ps_" + "0" * 26)  # type: ignore[misc]  # one ends
    # The link was refused, not spent: it opens a session now.
    assert (await client.post("/v1/portal-sessions", json={"token": token})).status == 201


async def test_a_portal_session_spends_only_its_share_of_the_test_events(
    client: Client, auth: dict[str, str], receiver: tuple[Receiver, str]
) -> None:
    """Red team, fourth round: one customer's session could spend the tenant's allowance
    for every other customer and the tenant itself."""
    _, url = receiver
    made = await client.post("/v1/portal-links", json={"scope": "endpoints"}, headers=auth)
    token = (await made.json())["url"].partition("#token=")[2]
    opened = await (await client.post("/v1/portal-sessions", json={"token": token})).json()
    session = {"Authorization": f"Bearer {opened['session']}"}
    own = await (await client.post("/v1/endpoints", json={"url": url}, headers=session)).json()
    path = f"/v1/endpoints/{own['id']}/test"
    answers = [(await client.post(path, headers=session)).status for _ in range(SESSION_SHARE + 3)]
    assert answers.count(202) == SESSION_SHARE
    assert answers[-1] == 429
    tenants = await (await client.post("/v1/endpoints", json={"url": url}, headers=auth)).json()
    assert (await client.post(f"/v1/endpoints/{tenants['id']}/test", headers=auth)).status == 202

"""One tenant cannot fill the Redis every tenant shares (issue #24): its stored bytes are
counted against ACCEPTD_MAX_BYTES_PER_TENANT, an event to many endpoints stores its body
once, quotas are checked in the step that writes, and delivery reads never load bodies.
Each test is the attack, against the real Valkey."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from acceptd.api import state
from acceptd.api.app import create_app
from acceptd.core.settings import Settings
from acceptd.store import keys
from acceptd.store.connection import open_shards
from acceptd.store.shards import Shards
from acceptd.store.usage import stored_by
from tests.support.http import submit_job
from tests.support.receiver import Receiver
from tests.support.roles import running_dispatcher
from tests.support.sharded import merged, output_bytes, scanned, servers, single_shard, summed
from tests.support.waiting import wait_until

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
BIG = "x" * 100_000


@pytest.fixture
async def shards(settings: Settings) -> AsyncIterator[Shards]:
    """The store's clients, as the roles open them: one server's, or each shard's node's."""
    opened = await open_shards(settings)
    yield opened
    await opened.aclose()


def job_of(size: int) -> dict[str, Any]:
    return {"type": "demo.echo", "input": {"value": "x" * size}}


async def tenant_jobs(shards: Shards, tenant: str) -> list[str]:
    return await merged(
        shards, lambda pipe, shard: pipe.zrange(keys.tenant_jobs(tenant, shard), 0, -1)
    )


@single_shard
async def test_a_tenant_past_its_byte_budget_gets_429_while_others_go_on_until_its_jobs_expire(
    aiohttp_client: MakeClient,
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
    shards: Shards,
    run_worker_burst: Callable[..., Awaitable[None]],
) -> None:
    # Retention is at least a minute in production; a second here, so the jobs expire.
    settings = make_settings(max_bytes_per_tenant=500_000).model_copy(
        update={"job_retention_seconds": 1}
    )
    client = await aiohttp_client(create_app(settings))
    accepted, answer = 0, None
    for _ in range(20):
        answer = await client.post("/v1/jobs", json=job_of(100_000), headers=auth)
        if answer.status != 202:
            break
        accepted += 1
    assert answer is not None
    assert answer.status == 429
    assert 3 <= accepted <= 5  # ~100 KB each against 500 KB
    assert answer.content_type == "application/problem+json"
    assert int(answer.headers["Retry-After"]) > 0
    assert "ACCEPTD_MAX_BYTES_PER_TENANT" in (await answer.json())["detail"]
    assert await stored_by(shards, "default") <= 500_000
    # A batch is refused alike, and writes nothing.
    jobs_before = len(await tenant_jobs(shards, "default"))
    batch = await client.post("/v1/batches", json={"items": [job_of(100_000)]}, headers=auth)
    assert batch.status == 429
    assert len(await tenant_jobs(shards, "default")) == jobs_before
    assert await summed(shards, lambda p, k: p.zcard(keys.tenant_batches("default", k))) == 0
    # Every other tenant goes on as before.
    other = await client.app[state.TENANTS].create("neighbour")
    theirs = {"Authorization": f"Bearer {other.api_key}"}
    assert (await client.post("/v1/jobs", json=job_of(100_000), headers=theirs)).status == 202

    # Its jobs finish, expire a retention later, and the count goes down: it submits again.
    await run_worker_burst(settings)

    async def expired() -> bool:
        listed = await tenant_jobs(shards, "default")
        return not any([await shards.for_key(keys.job(i)).exists(keys.job(i)) for i in listed])

    await wait_until(expired, timeout=10)

    async def accepted_again() -> bool:
        # Each refusal trims the tenant's index in the background.
        again = await client.post("/v1/jobs", json=job_of(100_000), headers=auth)
        return again.status == 202

    await wait_until(accepted_again, timeout=10)
    assert await stored_by(shards, "default") < 250_000  # the expired ones were subtracted


@single_shard
async def test_a_result_past_the_budget_is_kept_and_the_next_submit_is_refused(
    aiohttp_client: MakeClient,
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
    shards: Shards,
    run_worker_burst: Callable[..., Awaitable[None]],
) -> None:
    """A worker's result is never dropped for the budget: it is counted, and the tenant's
    next submit pays for it."""
    settings = make_settings(max_bytes_per_tenant=150_000)
    client = await aiohttp_client(create_app(settings))
    # demo.echo returns its input: the result doubles the job's bytes.
    job = await submit_job(client, auth, job_of(100_000))
    await run_worker_burst(settings)
    done = await (await client.get(job["links"]["self"], headers=auth)).json()
    assert done["status"] == "succeeded"
    assert len(done["result"]["value"]) == 100_000
    assert await stored_by(shards, "default") > 200_000
    assert (await client.post("/v1/jobs", json=job_of(10), headers=auth)).status == 429


async def test_one_event_to_many_endpoints_stores_one_body_per_shape(
    aiohttp_client: MakeClient,
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
    shards: Shards,
    run_worker_burst: Callable[..., Awaitable[None]],
    receiver: tuple[Receiver, str],
) -> None:
    """Was: 5 submits of 0.9 MB with 21 endpoints added 198 MB (a copy per endpoint)."""
    recording, url = receiver
    settings = make_settings()
    client = await aiohttp_client(create_app(settings))
    for i in range(20):
        payload = "thin" if i < 2 else "full"
        created = await client.post(
            "/v1/endpoints", json={"url": f"{url}/{i}", "payload": payload}, headers=auth
        )
        assert created.status == 201
    job = await submit_job(client, auth, job_of(200_000))
    await run_worker_burst(settings)
    async with running_dispatcher(settings):
        await wait_until(recording.got(20), timeout=20)
    delivery_keys = await scanned(shards, "delivery:*")  # every shard's, on its node
    assert len(delivery_keys) == 20
    memory = [await shards.for_key(k).memory_usage(k) or 0 for k in delivery_keys]
    bodies = keys.webhook_bodies(job["id"])
    redis = shards.for_key(bodies)  # the job's shard's client: its deliveries are there too
    # One full body, shared by the 18 full deliveries (the thin one is small: each thin
    # delivery keeps its own copy); none is owed any more.
    assert sorted(await redis.hkeys(bodies)) == [f"{_msg(recording)}:full", "p"]  # type: ignore[misc]
    assert await redis.hget(bodies, "p") == "0"  # type: ignore[misc]
    assert await redis.pttl(bodies) > 0  # it expires a retention after the last delivery
    # Every delivery is small; the one stored body holds the job's input and result.
    assert max(memory) < 20_000
    total = sum(memory) + (await redis.memory_usage(bodies) or 0)
    assert total < 2 * 2 * 200_000 + 20 * 20_000  # was 20 copies of 400 KB: 8 MB
    full = [r.body for r in recording.received if r.path not in ("/hook/0", "/hook/1")]
    assert len(set(full)) == 1  # the same bytes to every full endpoint


def _msg(recording: Receiver) -> str:
    return recording.received[0].headers["webhook-id"]


async def test_concurrent_endpoint_creates_stop_at_the_limit(
    aiohttp_client: MakeClient,
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
    shards: Shards,
) -> None:
    """Was: the API counted, then wrote: 20 creates at once all passed the count."""
    client = await aiohttp_client(create_app(make_settings(max_endpoints_per_tenant=5)))
    answers = await asyncio.gather(
        *(
            client.post("/v1/endpoints", json={"url": f"http://127.0.0.1:9/{i}"}, headers=auth)
            for i in range(20)
        )
    )
    assert sorted(a.status for a in answers) == [201] * 5 + [409] * 15
    endpoints = keys.tenant_endpoints("default")
    assert await shards.for_key(endpoints).scard(endpoints) == 5  # type: ignore[misc]


@single_shard
async def test_concurrent_batches_stop_at_the_job_quota(
    aiohttp_client: MakeClient,
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
    shards: Shards,
) -> None:
    """Was: each batch counted the tenant's jobs, then wrote: concurrent ones all passed."""
    client = await aiohttp_client(create_app(make_settings(max_jobs_per_tenant=10)))
    items = {"items": [job_of(10)] * 3}
    answers = await asyncio.gather(
        *(client.post("/v1/batches", json=items, headers=auth) for _ in range(12))
    )
    statuses = sorted(a.status for a in answers)
    assert statuses == [202] * 3 + [429] * 9
    assert len(await tenant_jobs(shards, "default")) == 9


async def test_delivery_lists_and_endpoint_stats_never_load_webhook_bodies(
    aiohttp_client: MakeClient,
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
    shards: Shards,
    run_worker_burst: Callable[..., Awaitable[None]],
    receiver: tuple[Receiver, str],
) -> None:
    """Was: endpoint stats read every delivery body to answer 137 bytes. Bytes Redis sends
    for each read are measured (INFO stats): far below one body."""
    recording, url = receiver
    settings = make_settings()
    client = await aiohttp_client(create_app(settings))
    endpoints = []
    for i in range(3):
        created = await client.post("/v1/endpoints", json={"url": f"{url}/{i}"}, headers=auth)
        endpoints.append(await created.json())
    job = await submit_job(client, auth, job_of(400_000))
    await run_worker_burst(settings)
    async with running_dispatcher(settings):
        await wait_until(recording.got(3), timeout=20)

    nodes = await servers(shards)  # every server of the store: the reads span the shards

    async def sent_by_redis(path: str) -> int:
        before = await output_bytes(nodes)
        answer = await client.get(path, headers=auth)
        assert answer.status == 200, await answer.text()
        await answer.read()
        return await output_bytes(nodes) - before

    listed = await sent_by_redis(f"/v1/jobs/{job['id']}/deliveries")
    stats = await sent_by_redis(f"/v1/endpoints/{endpoints[0]['id']}/stats")
    page = await sent_by_redis(f"/v1/endpoints/{endpoints[0]['id']}/deliveries")
    assert max(listed, stats, page) < 50_000, (listed, stats, page)  # a body is 800 KB

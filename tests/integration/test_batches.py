"""Batches: many jobs in one request, counted together, one batch.completed at the end."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from standardwebhooks.webhooks import Webhook

from acceptd.core import ids
from acceptd.core.settings import Settings
from acceptd.store.outages import StoreUnavailable
from tests.support.constants import SECRET, TEST_SHARDS
from tests.support.receiver import Receiver
from tests.support.sharded import summed
from tests.support.waiting import wait_until

Client = TestClient[Any, Any]
ReceiverFixture = tuple[Receiver, str]


def echo(value: Any, *, fail: bool = False) -> dict[str, Any]:
    return {"type": "demo.echo", "input": {"value": value, "fail": fail}}


async def submit_batch(
    client: Client, auth: dict[str, str], items: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    response = await client.post("/v1/batches", json={"items": items, **extra}, headers=auth)
    assert response.status == 202, await response.text()
    assert response.headers["Location"] == f"/v1/batches/{(await response.json())['id']}"
    assert "Retry-After" in response.headers
    return dict(await response.json())


async def batch_of(client: Client, auth: dict[str, str], batch: dict[str, Any]) -> dict[str, Any]:
    return dict(await (await client.get(batch["links"]["self"], headers=auth)).json())


async def items_of(client: Client, auth: dict[str, str], batch_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = f"/v1/jobs?batch={batch_id}&limit=100&view=full" + (
            f"&cursor={cursor}" if cursor else ""
        )
        page = await (await client.get(query, headers=auth)).json()
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("more pages than expected")


async def test_a_batch_with_failing_items_completes_with_counts_and_one_event(
    client: Client,
    auth: dict[str, str],
    worker: None,
    dispatcher: Any,
    receiver: ReceiverFixture,
) -> None:
    recording, url = receiver
    items = [echo(i, fail=i % 3 == 0) for i in range(9)]
    batch = await submit_batch(client, auth, items, callback_url=url, metadata={"run": 7})
    assert batch["status"] == "processing"
    assert batch["total"] == 9
    assert batch["counts"]["queued"] + batch["counts"]["running"] <= 9
    assert batch["links"]["jobs"] == f"/v1/jobs?batch={batch['id']}"

    [hit] = await wait_until(recording.arrived("batch.completed"))
    Webhook(SECRET).verify(hit.body, hit.headers)
    data = hit.json["data"]
    assert data["id"] == batch["id"]
    assert data["status"] == "completed"
    assert data["counts"]["succeeded"] == 6
    assert data["counts"]["failed"] == 3
    assert data["progress"]["fraction"] == 1.0
    assert data["metadata"] == {"run": 7}

    response = await client.get(batch["links"]["self"], headers=auth)
    assert response.status == 200  # terminal: no Retry-After any more
    final = await response.json()
    assert final["counts"] == {
        "scheduled": 0,
        "queued": 0,
        "running": 0,
        "awaiting_input": 0,
        "succeeded": 6,
        "failed": 3,
        "canceled": 0,
    }
    assert final["completed_at"] is not None
    jobs = await items_of(client, auth, batch["id"])
    assert sorted(j["input"]["value"] for j in jobs) == list(range(9))
    assert {j["batch_id"] for j in jobs} == {batch["id"]}
    assert all(j["callback_url"] is None for j in jobs)  # item events were not asked for
    deliveries = await (
        await client.get(f"/v1/batches/{batch['id']}/deliveries", headers=auth)
    ).json()
    assert [d["event"] for d in deliveries["items"]] == ["batch.completed"]
    assert deliveries["items"][0]["webhook_id"] == hit.headers["webhook-id"]
    # Only the batch's own event reached the callback: item events were not asked for.
    assert [r.event for r in recording.received] == ["batch.completed"]


async def test_a_big_batch_runs_on_every_shard_and_completes_once(
    client: Client,
    auth: dict[str, str],
    worker: None,
    dispatcher: Any,
    receiver: ReceiverFixture,
) -> None:
    """With many shards, its items spread over all of them, and the home hears from every
    part before it sends the one batch.completed (store/batches.py)."""
    recording, url = receiver
    size = 64 * TEST_SHARDS
    batch = await submit_batch(client, auth, [echo(i) for i in range(size)], callback_url=url)
    jobs = await items_of(client, auth, batch["id"])
    assert [j["input"]["value"] for j in jobs] == list(range(size))[::-1]
    assert len({ids.shard_of(j["id"]) for j in jobs}) == TEST_SHARDS
    [hit] = await wait_until(recording.arrived("batch.completed"), timeout=60)
    assert hit.json["data"]["counts"]["succeeded"] == size
    final = await client.get(batch["links"]["self"], headers=auth)
    assert final.status == 200
    assert (await final.json())["completed_at"] == hit.json["data"]["completed_at"]
    # Nothing more comes: one event for the batch, and none for the parts.
    await asyncio.sleep(0.5)
    assert [r.event for r in recording.received] == ["batch.completed"]


@pytest.mark.skipif(TEST_SHARDS == 1, reason="a batch over many shards needs many shards")
async def test_a_batch_whose_api_stopped_before_queuing_its_parts_is_run_by_a_worker(
    client: Client,
    auth: dict[str, str],
    worker: None,
    dispatcher: Any,
    receiver: ReceiverFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch opened, but the API lost the store before it queued the parts on other
    shards: the client hears 503, a worker queues the held parts within seconds, and the
    client's retry under its Idempotency-Key finds the same batch."""
    from acceptd.api import state

    recording, url = receiver
    store = client.app[state.BATCHES]

    async def lost(*_args: object) -> int:
        raise StoreUnavailable("Redis is unreachable")  # as a dropped connection leaves our clients

    monkeypatch.setattr(store, "_release", lost)
    size = 64 * TEST_SHARDS
    body = {"items": [echo(i) for i in range(size)], "callback_url": url}
    headers = {**auth, "Idempotency-Key": "stopped-mid-batch"}
    first = await client.post("/v1/batches", json=body, headers=headers)
    assert first.status == 503
    monkeypatch.undo()
    [hit] = await wait_until(recording.arrived("batch.completed"), timeout=30)
    assert hit.json["data"]["counts"]["succeeded"] == size
    retry = await client.post("/v1/batches", json=body, headers=headers)
    assert retry.status == 202
    assert (await retry.json())["id"] == hit.json["data"]["id"]


async def test_item_events_send_every_item_outcome_to_the_batch_callback(
    client: Client,
    auth: dict[str, str],
    worker: None,
    dispatcher: Any,
    receiver: ReceiverFixture,
) -> None:
    recording, url = receiver
    batch = await submit_batch(
        client, auth, [echo(1), echo(2, fail=True)], callback_url=url, item_events=True
    )

    async def all_three() -> Any:
        return len(recording.received) >= 3 and sorted(r.event for r in recording.received)

    assert await wait_until(all_three) == ["batch.completed", "job.failed", "job.succeeded"]
    item_batches = {
        r.json["data"].get("batch_id") for r in recording.received if r.event != "batch.completed"
    }
    assert item_batches == {batch["id"]}


async def test_every_item_is_checked_and_nothing_is_queued_when_any_is_bad(
    client: Client, auth: dict[str, str]
) -> None:
    items = [
        echo(0),
        {"type": "demo.echo", "input": {"value": 1, "delay_ms": -5}},
        echo(2),
        {"type": "no.such.type", "input": {}},
    ]
    response = await client.post("/v1/batches", json={"items": items}, headers=auth)
    assert response.status == 422
    problem = await response.json()
    assert problem["type"] == "urn:acceptd:problem:validation-error"
    assert "2 of 4 items are invalid" in problem["detail"]
    pointers = [e["pointer"] for e in problem["errors"]]
    assert pointers == ["#/items/1/input/delay_ms", "#/items/3/type"]
    assert (await (await client.get("/v1/jobs", headers=auth)).json())["items"] == []
    assert (await (await client.get("/v1/batches", headers=auth)).json())["items"] == []


async def test_batch_shape_errors_and_the_item_limit(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
) -> None:
    from acceptd.api.app import create_app

    small = await aiohttp_client(create_app(make_settings(max_batch_items=3)))
    too_many = await small.post(
        "/v1/batches", json={"items": [echo(i) for i in range(4)]}, headers=auth
    )
    assert too_many.status == 422
    assert (await too_many.json())["errors"][0]["pointer"] == "#/items"
    empty = await small.post("/v1/batches", json={"items": []}, headers=auth)
    assert empty.status == 422
    unknown = await small.post("/v1/batches", json={"items": [echo(1)], "x": 1}, headers=auth)
    assert unknown.status == 422
    assert (await unknown.json())["errors"][0]["pointer"] == "#/x"
    unsafe = await small.post(
        "/v1/batches", json={"items": [echo(1)], "callback_url": "ftp://example.com/"}, headers=auth
    )
    assert unsafe.status == 422
    assert (await (await small.get("/v1/jobs", headers=auth)).json())["items"] == []


async def test_cancel_a_batch_cancels_every_unfinished_item(
    client: Client, auth: dict[str, str]
) -> None:
    batch = await submit_batch(client, auth, [echo(i) for i in range(5)])
    canceled = await client.post(f"{batch['links']['self']}/cancel", headers=auth)
    assert canceled.status == 202
    body = await canceled.json()
    assert body["counts"]["canceled"] == 5
    assert body["status"] == "completed"
    assert {j["status"] for j in await items_of(client, auth, batch["id"])} == {"canceled"}
    again = await client.post(f"{batch['links']['self']}/cancel", headers=auth)
    assert again.status == 409


async def test_an_idempotent_batch_retry_creates_nothing_twice(
    client: Client, auth: dict[str, str]
) -> None:
    body = {"items": [echo(1), echo(2)]}
    headers = {**auth, "Idempotency-Key": "nightly-2026-11-22"}
    first = await (await client.post("/v1/batches", json=body, headers=headers)).json()
    second = await client.post("/v1/batches", json=body, headers=headers)
    assert second.status == 202
    assert (await second.json())["id"] == first["id"]
    assert len((await (await client.get("/v1/jobs", headers=auth)).json())["items"]) == 2
    other = await client.post("/v1/batches", json={"items": [echo(3)]}, headers=headers)
    assert other.status == 422
    # The same key on POST /v1/jobs is a different request, not a replay of the batch.
    job = await client.post("/v1/jobs", json=echo(1), headers=headers)
    assert job.status == 202


async def test_batches_belong_to_their_tenant(client: Client, auth: dict[str, str]) -> None:
    from acceptd.api import state

    other = await client.app[state.TENANTS].create("other")
    theirs = {"Authorization": f"Bearer {other.api_key}"}
    batch = await submit_batch(client, auth, [echo(1)])
    assert (await client.get(batch["links"]["self"], headers=theirs)).status == 404
    assert (await client.get(f"/v1/jobs?batch={batch['id']}", headers=theirs)).status == 404
    assert (await client.post(f"{batch['links']['self']}/cancel", headers=theirs)).status == 404
    assert (await (await client.get("/v1/batches", headers=theirs)).json())["items"] == []
    assert (await client.get("/v1/batches/bat_nope", headers=auth)).status == 404


async def test_batches_list_newest_first_with_cursors(client: Client, auth: dict[str, str]) -> None:
    made = [(await submit_batch(client, auth, [echo(i)]))["id"] for i in range(3)]
    first = await (await client.get("/v1/batches?limit=2", headers=auth)).json()
    assert [b["id"] for b in first["items"]] == made[:0:-1]
    rest = await (
        await client.get(f"/v1/batches?limit=2&cursor={first['next_cursor']}", headers=auth)
    ).json()
    assert [b["id"] for b in rest["items"]] == [made[0]]
    assert rest["next_cursor"] is None


async def test_ten_thousand_items_are_accepted_in_one_request(
    client: Client, auth: dict[str, str], run_worker_burst: Callable[..., Awaitable[None]]
) -> None:
    items = [echo(i) for i in range(10_000)]
    batch = await submit_batch(client, auth, items)
    assert batch["counts"]["queued"] == 10_000
    listed = await client.get(f"/v1/jobs?batch={batch['id']}&limit=3&view=full", headers=auth)
    page = await listed.json()
    assert [j["input"]["value"] for j in page["items"]] == [9999, 9998, 9997]
    from acceptd.api import state
    from acceptd.store import keys

    shards = client.app[state.SHARDS]
    assert await summed(shards, lambda pipe, shard: pipe.zcard(keys.job_queue(shard))) == 10_000

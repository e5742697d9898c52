"""Webhooks end to end: real worker, real dispatcher, a real receiver on loopback."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from standardwebhooks.webhooks import Webhook

from acceptd.core.settings import Settings
from acceptd.dispatcher.sender import RESPONSE_SNIPPET_BYTES
from acceptd.store import keys
from acceptd.store.connection import open_shards
from acceptd.wire.models import Delivery, Endpoint, EndpointWithSecret
from tests.support.constants import SECRET
from tests.support.http import submit_job
from tests.support.receiver import Answer, Receiver
from tests.support.roles import running_dispatcher
from tests.support.sharded import summed
from tests.support.waiting import wait_until

Client = TestClient[Any, Any]
ReceiverFixture = tuple[Receiver, str]


async def submit(
    client: Client, auth: dict[str, str], callback: str | None = None, **data: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "demo.echo", "input": {"value": "v", **data}}
    if callback:
        body["callback_url"] = callback
    return await submit_job(client, auth, body)


async def add_endpoint(
    client: Client, auth: dict[str, str], url: str, events: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url, "description": "test receiver"}
    if events is not None:
        body["events"] = events
    response = await client.post("/v1/endpoints", json=body, headers=auth)
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def deliveries(
    client: Client, auth: dict[str, str], job: dict[str, Any]
) -> list[dict[str, Any]]:
    response = await client.get(f"{job['links']['self']}/deliveries", headers=auth)
    assert response.status == 200
    items: list[dict[str, Any]] = (await response.json())["items"]
    for item in items:
        Delivery.model_validate(item)
    return items


def settled(
    client: Client, auth: dict[str, str], job: dict[str, Any], count: int = 1
) -> Callable[[], Any]:
    async def check() -> Any:
        found = await deliveries(client, auth, job)
        done = [d for d in found if d["status"] != "pending"]
        return found if len(found) >= count and len(done) == len(found) else None

    return check


async def test_callback_url_gets_the_terminal_event_signed_with_the_tenant_secret(
    client: Client, auth: dict[str, str], worker: None, dispatcher: Any, receiver: ReceiverFixture
) -> None:
    recording, url = receiver
    job = await submit(client, auth, url)
    await wait_until(recording.got(1))
    hit = recording.received[0]
    Webhook(SECRET).verify(hit.body, hit.headers)  # the official library accepts it
    assert hit.headers["Content-Type"] == "application/json"
    payload = hit.json
    assert payload["type"] == "job.succeeded"
    assert payload["data"]["id"] == job["id"]
    assert payload["data"]["status"] == "succeeded"
    assert payload["data"]["result"] == {"value": "v"}
    assert payload["timestamp"].endswith("Z")
    [delivery] = await wait_until(settled(client, auth, job))
    assert delivery["webhook_id"] == hit.headers["webhook-id"]
    assert delivery["status"] == "succeeded"
    assert delivery["endpoint_id"] is None
    assert delivery["url"] == url
    assert delivery["event"] == "job.succeeded"
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] == 200
    assert attempt["error"] is None
    assert attempt["latency_ms"] > 0
    assert attempt["response"] == "ok"
    await asyncio.sleep(0.3)  # room for a second event, were one sent
    assert len(recording.received) == 1  # exactly one event for a job without endpoints


async def test_failed_and_canceled_jobs_notify_too(
    client: Client, auth: dict[str, str], worker: None, dispatcher: Any, receiver: ReceiverFixture
) -> None:
    recording, url = receiver
    await submit(client, auth, url, fail=True)
    queued = await submit(client, auth, url, delay_ms=60_000)
    await wait_until(recording.got(1, "job.failed"))
    await client.post(f"{queued['links']['self']}/cancel", headers=auth)
    await wait_until(recording.got(1, "job.canceled"))
    failed = recording.events("job.failed")[0].json["data"]
    assert failed["error"]["title"] == "demo failure"


async def test_endpoint_crud_and_isolation(
    client: Client, auth: dict[str, str], receiver: ReceiverFixture
) -> None:
    from acceptd.api import state

    _, url = receiver
    created = await client.post("/v1/endpoints", json={"url": url}, headers=auth)
    assert created.status == 201
    endpoint = await created.json()
    EndpointWithSecret.model_validate(endpoint)
    assert created.headers["Location"] == f"/v1/endpoints/{endpoint['id']}"
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["events"] == ["job.succeeded", "job.failed", "job.canceled"]
    listed = (await (await client.get("/v1/endpoints", headers=auth)).json())["items"]
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert "secret" not in listed[0]
    one = await (await client.get(f"/v1/endpoints/{endpoint['id']}", headers=auth)).json()
    Endpoint.model_validate(one)
    assert "secret" not in one

    patched = await client.patch(
        f"/v1/endpoints/{endpoint['id']}",
        json={"events": ["job.started", "job.started"], "disabled": True},
        headers=auth,
    )
    body = await patched.json()
    assert patched.status == 200
    assert body["events"] == ["job.started"]
    assert body["disabled"] is True
    assert body["disabled_reason"]
    assert body["disabled_at"]
    enabled = await (
        await client.patch(
            f"/v1/endpoints/{endpoint['id']}", json={"disabled": False}, headers=auth
        )
    ).json()
    assert enabled["disabled"] is False
    assert enabled["disabled_reason"] is None

    other = await client.app[state.TENANTS].create("other")
    other_auth = {"Authorization": f"Bearer {other.api_key}"}
    for method, path in [
        ("GET", f"/v1/endpoints/{endpoint['id']}"),
        ("PATCH", f"/v1/endpoints/{endpoint['id']}"),
        ("DELETE", f"/v1/endpoints/{endpoint['id']}"),
        ("POST", f"/v1/endpoints/{endpoint['id']}/rotate-secret"),
    ]:
        response = await client.request(method, path, json={}, headers=other_auth)
        assert response.status == 404, (method, path)
    assert (await (await client.get("/v1/endpoints", headers=other_auth)).json())["items"] == []

    assert (await client.delete(f"/v1/endpoints/{endpoint['id']}", headers=auth)).status == 204
    assert (await client.get(f"/v1/endpoints/{endpoint['id']}", headers=auth)).status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://x.example/"}, "url"),
        ({"url": "https://example.com/", "events": ["job.exploded"]}, "events.0"),
        ({"url": "https://example.com/", "events": []}, "events"),
        ({"url": "https://example.com/", "secret": "mine"}, "secret"),
    ],
)
async def test_bad_endpoints_are_422_naming_the_field(
    client: Client, auth: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/endpoints", json=body, headers=auth)
    assert response.status == 422
    problem = await response.json()
    assert field in {e["field"] for e in problem["errors"]}


async def test_private_endpoint_url_refused_when_not_allowed(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings], auth: dict[str, str]
) -> None:
    from acceptd.api.app import create_app

    strict = await aiohttp_client(create_app(make_settings(allow_private_callbacks=False)))
    response = await strict.post(
        "/v1/endpoints", json={"url": "http://10.0.0.5/hook"}, headers=auth
    )
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "url"


async def test_endpoint_gets_what_it_subscribed_to_signed_with_its_own_secret(
    client: Client, auth: dict[str, str], worker: None, dispatcher: Any, receiver: ReceiverFixture
) -> None:
    recording, url = receiver
    endpoint = await add_endpoint(
        client, auth, url, ["job.started", "job.progress", "job.succeeded"]
    )
    job = await submit(client, auth, delay_ms=2200, progress_steps=22)
    await wait_until(recording.got(1, "job.succeeded"), timeout=15)
    await wait_until(settled(client, auth, job, len(recording.received)))
    for hit in recording.received:
        Webhook(endpoint["secret"]).verify(hit.body, hit.headers)
        with pytest.raises(Exception):  # noqa: B017 - not the tenant's secret
            Webhook(SECRET).verify(hit.body, hit.headers)
    assert len(recording.events("job.started")) == 1
    progress = recording.events("job.progress")
    # 22 reports over 2.2 s, coalesced to at most one event a second (plus the trailing one)
    assert 1 <= len(progress) <= 4
    fractions = [p.json["data"]["progress"]["fraction"] for p in progress]
    assert fractions == sorted(fractions)
    assert recording.received[-1].event == "job.succeeded"
    # Running events show the job as a list does: an hour of progress reports must not
    # store the input once a report and endpoint (red team: six times the byte budget from
    # one accepted submit). The terminal event has it whole.
    for running in [*recording.events("job.started"), *progress]:
        assert "input" not in running.json["data"]
        assert "result" not in running.json["data"]
    assert recording.received[-1].json["data"]["input"]["value"] == "v"
    ids_ = [hit.headers["webhook-id"] for hit in recording.received]
    assert len(set(ids_)) == len(ids_)  # one webhook-id per event


async def test_unsubscribed_and_disabled_endpoints_get_nothing(
    client: Client, auth: dict[str, str], worker: None, dispatcher: Any, receiver: ReceiverFixture
) -> None:
    recording, url = receiver
    await add_endpoint(client, auth, url + "/failed-only", ["job.failed"])
    off = await add_endpoint(client, auth, url + "/off")
    await client.patch(f"/v1/endpoints/{off['id']}", json={"disabled": True}, headers=auth)
    await add_endpoint(client, auth, url + "/all")
    await submit(client, auth)
    await wait_until(recording.got(1))
    await asyncio.sleep(0.5)  # room for the webhooks the other endpoints must not get
    assert [r.path for r in recording.received] == ["/hook/all"]


async def test_failures_are_retried_with_the_same_webhook_id(
    client: Client, auth: dict[str, str], worker: None, dispatcher: Any, receiver: ReceiverFixture
) -> None:
    recording, url = receiver
    recording.then(Answer(500, body="db down"), Answer(503), Answer(200))
    job = await submit(client, auth, url)
    [delivery] = await wait_until(settled(client, auth, job), timeout=15)
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 503, 200]
    assert delivery["attempts"][0]["error"] == "HTTP 500"
    assert delivery["attempts"][0]["response"] == "db down"
    assert len({r.headers["webhook-id"] for r in recording.received}) == 1
    assert len({r.body for r in recording.received}) == 1  # the same event every time
    for hit in recording.received:
        Webhook(SECRET).verify(hit.body, hit.headers)


async def test_gives_up_after_the_schedule(
    client: Client, auth: dict[str, str], worker: None, dispatcher: Any, receiver: ReceiverFixture
) -> None:
    recording, url = receiver
    recording.default = Answer(500)
    job = await submit(client, auth, url)
    [delivery] = await wait_until(settled(client, auth, job), timeout=15)
    assert delivery["status"] == "failed"
    assert len(delivery["attempts"]) == 4  # the first attempt and one per schedule step (3)
    assert delivery["next_attempt_at"] is None
    assert len(recording.received) == 4


async def test_timeouts_redirects_and_connection_errors_are_failures(
    client: Client,
    auth: dict[str, str],
    make_settings: Callable[..., Settings],
    worker: None,
    receiver: ReceiverFixture,
) -> None:
    from acceptd.cli.embedded import free_port

    recording, url = receiver
    recording.then(
        Answer(stall_seconds=1.5),
        Answer(302, headers={"Location": "http://127.0.0.1:1/"}),
        Answer(200),
    )
    quick = make_settings(webhook_timeout_seconds=0.5)
    async with running_dispatcher(quick):
        job = await submit(client, auth, url)
        dead = await submit(client, auth, f"http://127.0.0.1:{free_port()}/nobody")
        [delivery] = await wait_until(settled(client, auth, job), timeout=15)
        [refused] = await wait_until(settled(client, auth, dead), timeout=15)
    first, second, third = delivery["attempts"]
    assert first["status_code"] is None
    assert "timed out" in first["error"]
    assert second["status_code"] == 302
    assert second["error"] == "HTTP 302"
    assert third["status_code"] == 200
    assert len(recording.received) == 3  # the redirect was not followed
    assert refused["status"] == "failed"
    assert all(a["status_code"] is None and "Connect" in a["error"] for a in refused["attempts"])


async def test_retry_after_on_429_is_honoured(
    client: Client, auth: dict[str, str], worker: None, dispatcher: Any, receiver: ReceiverFixture
) -> None:
    recording, url = receiver
    recording.then(Answer(429, headers={"Retry-After": "0"}), Answer(200))
    job = await submit(client, auth, url)
    [delivery] = await wait_until(settled(client, auth, job), timeout=10)
    assert [a["status_code"] for a in delivery["attempts"]] == [429, 200]


async def test_410_gone_disables_the_endpoint_and_stops(
    client: Client, auth: dict[str, str], worker: None, dispatcher: Any, receiver: ReceiverFixture
) -> None:
    recording, url = receiver
    endpoint = await add_endpoint(client, auth, url)
    recording.default = Answer(410)
    job = await submit(client, auth)
    [delivery] = await wait_until(settled(client, auth, job), timeout=10)
    assert delivery["status"] == "failed"
    assert len(delivery["attempts"]) == 1
    state = await (await client.get(f"/v1/endpoints/{endpoint['id']}", headers=auth)).json()
    assert state["disabled"] is True
    assert "410" in state["disabled_reason"]
    recording.default = Answer(200)
    second = await submit(client, auth)

    async def ran() -> bool:
        found = await (await client.get(second["links"]["self"], headers=auth)).json()
        return bool(found["status"] == "succeeded")

    await wait_until(ran)  # its event is out: were the endpoint sent it, it would come now
    await asyncio.sleep(0.6)  # room for that webhook, which must not come
    assert len(recording.received) == 1  # a disabled endpoint is sent nothing more


async def test_endpoint_failing_too_long_is_disabled(
    client: Client,
    auth: dict[str, str],
    make_settings: Callable[..., Settings],
    worker: None,
    receiver: ReceiverFixture,
) -> None:
    recording, url = receiver
    recording.default = Answer(500)
    endpoint = await add_endpoint(client, auth, url)
    impatient = make_settings(webhook_disable_after_seconds=0.15, webhook_retry_schedule=[0.1] * 10)
    async with running_dispatcher(impatient):
        job = await submit(client, auth)
        [delivery] = await wait_until(settled(client, auth, job), timeout=10)
    assert delivery["status"] == "failed"
    assert 2 <= len(delivery["attempts"]) < 11
    state = await (await client.get(f"/v1/endpoints/{endpoint['id']}", headers=auth)).json()
    assert state["disabled"] is True
    assert "failing continuously since" in state["disabled_reason"]


async def test_manual_retry_sends_a_failed_delivery_again(
    client: Client, auth: dict[str, str], worker: None, dispatcher: Any, receiver: ReceiverFixture
) -> None:
    recording, url = receiver
    recording.then(*[Answer(500)] * 4)
    job = await submit(client, auth, url)
    [delivery] = await wait_until(settled(client, auth, job), timeout=15)
    assert delivery["status"] == "failed"
    response = await client.post(f"/v1/deliveries/{delivery['id']}/retry", headers=auth)
    assert response.status == 202
    assert (await response.json())["status"] == "pending"
    await wait_until(recording.got(5))

    async def succeeded() -> Any:
        [d] = await deliveries(client, auth, job)
        return d if d["status"] == "succeeded" else None

    done = await wait_until(succeeded)
    assert len(done["attempts"]) == 5
    assert recording.received[-1].headers["webhook-id"] == delivery["webhook_id"]


async def test_deliveries_are_tenant_private(
    client: Client, auth: dict[str, str], receiver: ReceiverFixture
) -> None:
    from acceptd.api import state

    _, url = receiver
    job = await submit(client, auth, url)
    other = await client.app[state.TENANTS].create("other")
    other_auth = {"Authorization": f"Bearer {other.api_key}"}
    assert (
        await client.get(f"{job['links']['self']}/deliveries", headers=other_auth)
    ).status == 404
    assert (
        await client.post("/v1/deliveries/dlv_00000000000000000000000000/retry", headers=auth)
    ).status == 404


async def test_rotation_signs_with_both_secrets_for_the_overlap(
    client: Client, auth: dict[str, str], worker: None, dispatcher: Any, receiver: ReceiverFixture
) -> None:
    recording, url = receiver
    endpoint = await add_endpoint(client, auth, url)
    rotated = await client.post(f"/v1/endpoints/{endpoint['id']}/rotate-secret", headers=auth)
    assert rotated.status == 200
    new_secret = (await rotated.json())["secret"]
    assert new_secret != endpoint["secret"]
    await submit(client, auth)
    await wait_until(recording.got(1))
    hit = recording.received[0]
    assert len(hit.headers["webhook-signature"].split(" ")) == 2
    Webhook(new_secret).verify(hit.body, hit.headers)
    Webhook(endpoint["secret"]).verify(hit.body, hit.headers)


async def test_send_time_check_refuses_private_addresses(
    client: Client,
    auth: dict[str, str],
    make_settings: Callable[..., Settings],
    worker: None,
    receiver: ReceiverFixture,
) -> None:
    """Accepted at submit under a lenient API, refused by a strict dispatcher: the check that
    matters is the one on the address actually connected to."""
    recording, url = receiver
    async with running_dispatcher(make_settings(allow_private_callbacks=False)):
        literal = await submit(client, auth, url)
        named = await submit(client, auth, url.replace("127.0.0.1", "localhost"))
        [by_literal] = await wait_until(settled(client, auth, literal), timeout=10)
        [by_name] = await wait_until(settled(client, auth, named), timeout=15)
    assert recording.received == []
    assert by_literal["status"] == "failed"
    assert by_literal["attempts"][0]["error"].startswith("refused")
    assert by_name["status"] == "failed"
    assert "not allowed" in by_name["attempts"][0]["error"]


async def test_one_slow_receiver_is_capped_and_does_not_starve_others(
    client: Client,
    auth: dict[str, str],
    make_settings: Callable[..., Settings],
    worker: None,
    aiohttp_server: Callable[..., Any],
) -> None:
    slow, fast = Receiver(), Receiver()
    slow.default = Answer(stall_seconds=1.0)
    slow_url = str((await aiohttp_server(slow.app)).make_url("/slow"))
    fast_url = str((await aiohttp_server(fast.app)).make_url("/fast"))
    capped = make_settings(webhook_concurrency_per_endpoint=2, webhook_max_concurrency=4)
    async with running_dispatcher(capped):
        for _ in range(6):
            await submit(client, auth, slow_url)
        await wait_until(slow.got(2))
        for _ in range(3):
            await submit(client, auth, fast_url)
        await wait_until(fast.got(3), timeout=3)  # not stuck behind the slow ones
        await wait_until(slow.got(6), timeout=15)
    assert slow.max_in_flight == 2


async def test_response_snippet_is_capped(
    client: Client, auth: dict[str, str], worker: None, dispatcher: Any, receiver: ReceiverFixture
) -> None:
    recording, url = receiver
    recording.then(Answer(200, body="x" * 100_000))
    job = await submit(client, auth, url)
    [delivery] = await wait_until(settled(client, auth, job))
    assert (
        len(delivery["attempts"][0]["response"]) == RESPONSE_SNIPPET_BYTES
    )  # 1 KiB: every attempt is stored and counted


async def test_replayed_event_makes_no_duplicate_delivery(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Callable[..., Any],
    receiver: ReceiverFixture,
    settings: Settings,
) -> None:
    """A dispatcher that dies after creating deliveries but before acknowledging the event
    leaves it to be claimed and handled again: that must not double the deliveries."""
    from acceptd.api import state
    from acceptd.core import ids
    from acceptd.store import keys

    _, url = receiver
    job = await submit(client, auth, url)
    await run_worker_burst()
    shard = ids.shard_of(job["id"])
    stream = client.app[state.SHARDS].of(shard)
    [(_entry, fields)] = await stream.xrange(keys.events_stream(shard))
    fanout = _fanout(client, shard)
    assert await fanout.handle(fields) == 1
    assert await fanout.handle(fields) == 0
    assert len(await client.app[state.DELIVERIES].for_job(job["id"])) == 1


async def test_the_next_events_are_read_in_the_round_trip_that_acknowledges_a_batch(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Callable[..., Any],
    receiver: ReceiverFixture,
) -> None:
    """Under load the fan-out reads its next batch with the acknowledgement of the last one
    (one round trip a batch fewer): the events read then are this consumer's, still in the
    stream, and handled like any batch."""
    from acceptd.api import state
    from acceptd.core import ids
    from acceptd.store import keys

    _, url = receiver
    by_shard: dict[int, list[str]] = {}
    while not any(len(jobs) == 2 for jobs in by_shard.values()):  # pigeonhole: bounded
        job = await submit(client, auth, url)
        by_shard.setdefault(ids.shard_of(job["id"]), []).append(job["id"])
    shard, (first, second) = next((s, j) for s, j in by_shard.items() if len(j) == 2)
    await run_worker_burst()
    redis = client.app[state.SHARDS].of(shard)
    stream = keys.events_stream(shard)
    fanout = _fanout(client, shard)
    await fanout.ensure_group()
    [(_, batch)] = await redis.xreadgroup(keys.EVENTS_GROUP, "test", {stream: ">"}, count=1)
    assert batch[0][1]["job"] == first
    [(_, ahead)] = await fanout._handle_batch(batch, read_next=True)
    assert [fields["job"] for _, fields in ahead] == [second]
    assert await redis.xlen(stream) == 1  # the first gone, the second read and pending
    assert (await redis.xpending(stream, keys.EVENTS_GROUP))["pending"] == 1
    assert await fanout._handle_batch(ahead) is None
    assert await redis.xlen(stream) == 0
    deliveries = client.app[state.DELIVERIES]
    for job_id in (first, second):
        assert len(await deliveries.for_job(job_id)) == 1


async def test_an_idle_fan_out_acknowledges_in_the_round_trip_that_waits_for_the_next_event(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Callable[..., Any],
    receiver: ReceiverFixture,
) -> None:
    """With nothing more in the stream, the acknowledgement of a batch goes out with the
    blocking read of the next one (one round trip per batch, not two): the call returns the
    event written while it waited, and the batch before it is gone from the stream."""
    from acceptd.api import state
    from acceptd.core import ids

    _, url = receiver
    job = await submit(client, auth, url)
    await run_worker_burst()
    shard = ids.shard_of(job["id"])
    redis = client.app[state.SHARDS].of(shard)
    stream = keys.events_stream(shard)
    fanout = _fanout(client, shard)
    await fanout.ensure_group()
    [(_, batch)] = await redis.xreadgroup(keys.EVENTS_GROUP, "test", {stream: ">"}, count=10)
    assert [fields["job"] for _, fields in batch] == [job["id"]]

    async def later_event() -> str:
        await asyncio.sleep(0.2)
        entry_id: str = await redis.xadd(stream, {"tenant": "t", "event": "late"})
        return entry_id

    writing = asyncio.create_task(later_event())
    [(_, ahead)] = await asyncio.wait_for(fanout._handle_batch(batch, read_next=True), 5)
    assert [entry_id for entry_id, _ in ahead] == [await writing]
    assert await redis.xlen(stream) == 1  # the batch acknowledged and deleted; the late one left
    assert (await redis.xpending(stream, keys.EVENTS_GROUP))["pending"] == 1
    assert len(await client.app[state.DELIVERIES].for_job(job["id"])) == 1


def _fanout(client: Client, shard: int) -> Any:
    from acceptd.api import state
    from acceptd.dispatcher.fanout import FanOut

    app = client.app
    return FanOut(
        app[state.SHARDS],
        app[state.JOBS],
        app[state.BATCHES],
        app[state.ENDPOINTS],
        app[state.DELIVERIES],
        "test",
        shard=shard,
    )


async def test_sweeper_requeues_a_delivery_whose_queue_entry_was_lost(
    client: Client,
    auth: dict[str, str],
    worker: None,
    dispatcher: Any,
    receiver: ReceiverFixture,
    settings: Settings,
) -> None:
    from acceptd.api import state
    from acceptd.core import ids
    from acceptd.store import keys

    recording, url = receiver
    recording.then(Answer(500))
    job = await submit(client, auth, url)
    [pending] = await wait_until(_pending_after_one_attempt(client, auth, job))
    shard = ids.shard_of(pending["id"])
    conn = client.app[state.SHARDS].of(shard)
    # Lose the queued retry, and make the delivery look overdue.
    await conn.delete(keys.arq_job(f"{pending['id']}:2"))
    await conn.zrem(keys.webhook_queue(shard), f"{pending['id']}:2")
    await conn.zadd(keys.deliveries_due(shard), {pending["id"]: 1})
    await asyncio.sleep(0.3)  # room for the retry, were anything to send it
    assert len(recording.received) == 1  # nothing would ever send it again...
    assert await dispatcher.sweep() == 1  # ...but the sweeper finds it
    await wait_until(recording.got(2))
    assert await dispatcher.sweep() == 0


def _pending_after_one_attempt(
    client: Client, auth: dict[str, str], job: dict[str, Any]
) -> Callable[[], Any]:
    async def check() -> Any:
        found = await deliveries(client, auth, job)
        return (
            found
            if found and found[0]["status"] == "pending" and len(found[0]["attempts"]) == 1
            else None
        )

    return check


def test_openapi_lists_the_webhook_routes() -> None:
    from acceptd.api.openapi import build_openapi
    from acceptd.api.routes import ROUTES

    spec = build_openapi(ROUTES, "test")
    assert set(spec["paths"]) >= {
        "/v1/endpoints",
        "/v1/endpoints/{endpoint_id}",
        "/v1/endpoints/{endpoint_id}/rotate-secret",
        "/v1/jobs/{job_id}/deliveries",
        "/v1/deliveries/{delivery_id}/retry",
    }
    assert json.dumps(spec)  # serializable


@pytest.mark.parametrize("change", ["delete", "disable"])
async def test_a_retry_gives_up_when_its_endpoint_was_removed_or_disabled_meanwhile(
    client: Client,
    auth: dict[str, str],
    worker: None,
    make_settings: Callable[..., Settings],
    receiver: ReceiverFixture,
    change: str,
) -> None:
    recording, url = receiver
    recording.default = Answer(500)
    endpoint = await add_endpoint(client, auth, url)
    path = f"/v1/endpoints/{endpoint['id']}"
    # A retry a second later leaves time to change the endpoint between the two attempts.
    async with running_dispatcher(make_settings(webhook_retry_schedule=[1.0, 1.0])):
        job = await submit(client, auth)
        await wait_until(recording.got(1))
        if change == "delete":
            assert (await client.delete(path, headers=auth)).status == 204
        else:
            patched = await client.patch(path, json={"disabled": True}, headers=auth)
            assert patched.status == 200
        [delivery] = await wait_until(settled(client, auth, job), timeout=15)
    assert delivery["status"] == "failed"
    first, last = delivery["attempts"]
    assert first["status_code"] == 500
    assert last["status_code"] is None
    assert last["error"] == ("endpoint deleted" if change == "delete" else "endpoint disabled")
    assert len(recording.received) == 1  # the receiver was not called again


async def test_a_retry_goes_where_its_endpoint_is_now_with_its_headers(
    client: Client,
    auth: dict[str, str],
    worker: None,
    make_settings: Callable[..., Settings],
    receiver: ReceiverFixture,
) -> None:
    """An endpoint moved to a new URL with a new token (one PATCH) while a delivery waits
    to be retried: the retry goes to the new URL. Its new token never reaches the URL the
    endpoint was moved away from (which may be why it moved)."""
    recording, url = receiver
    recording.then(Answer(500))
    body = {"url": f"{url}/old", "headers": {"X-Token": "old"}}
    made = await client.post("/v1/endpoints", json=body, headers=auth)
    assert made.status == 201, await made.text()
    path = f"/v1/endpoints/{(await made.json())['id']}"
    async with running_dispatcher(make_settings(webhook_retry_schedule=[1.0, 1.0])):
        job = await submit(client, auth)
        await wait_until(recording.got(1))
        moved = {"url": f"{url}/new", "headers": {"X-Token": "new"}}
        assert (await client.patch(path, json=moved, headers=auth)).status == 200
        [delivery] = await wait_until(settled(client, auth, job), timeout=15)
    assert delivery["status"] == "succeeded"
    sent = [(one.path, one.headers.get("X-Token")) for one in recording.received]
    assert sent == [("/hook/old", "old"), ("/hook/new", "new")]


async def test_a_burst_to_one_receiver_waits_in_its_dispatcher_not_in_the_queue(
    client: Client,
    auth: dict[str, str],
    make_settings: Callable[..., Settings],
    worker: None,
    aiohttp_server: Callable[..., Any],
) -> None:
    """First attempts beyond a destination's concurrency wait, in order, in the dispatcher
    that made them: no arq job, no retry churn, one attempt each (dispatcher/inline.py)."""
    receiver = Receiver()
    receiver.default = Answer(stall_seconds=0.05)
    url = str((await aiohttp_server(receiver.app)).make_url("/burst"))
    capped = make_settings(webhook_concurrency_per_endpoint=2)
    conn = await open_shards(capped)
    queued = 0

    async def sample_queue() -> None:
        nonlocal queued
        while True:
            depth = await summed(conn, lambda pipe, k: pipe.zcard(keys.webhook_queue(k)))
            queued = max(queued, depth)
            await asyncio.sleep(0.01)  # sampling the depth, every 10 ms

    sampler = asyncio.create_task(sample_queue())
    try:
        async with running_dispatcher(capped):
            jobs = [await submit(client, auth, url) for _ in range(30)]
            await wait_until(receiver.got(30), timeout=20)
    finally:
        sampler.cancel()
        await conn.aclose()
    assert queued == 0
    assert receiver.max_in_flight == 2
    for job in jobs:
        (delivery,) = await deliveries(client, auth, job)
        assert (delivery["status"], len(delivery["attempts"])) == ("succeeded", 1)


async def test_a_thin_ordered_body_does_not_carry_the_submitters_ordering_key(
    client: Client, auth: dict[str, str], worker: None, dispatcher: Any, receiver: ReceiverFixture
) -> None:
    """A portal session may make a thin endpoint ordered: the tenant's `ordering_key` (a
    customer id, say) is submit-time data it must not learn; where the event stands in its
    key (`sequence`) is all an ordered receiver needs."""
    recording, url = receiver
    made = await client.post(
        "/v1/endpoints",
        json={"url": url, "payload": "thin", "ordering": "per_key"},
        headers=auth,
    )
    assert made.status == 201
    body = {"type": "demo.echo", "input": {"value": 1}, "ordering_key": "customer-4711"}
    assert (await client.post("/v1/jobs", json=body, headers=auth)).status == 202
    await wait_until(recording.got(1, "job.succeeded"), timeout=15)
    sent = recording.events("job.succeeded")[0]
    assert "customer-4711" not in sent.body.decode()
    assert "sequence" in sent.json


async def test_a_failed_attempt_is_tried_again_on_schedule_not_at_the_next_poll(
    client: Client,
    auth: dict[str, str],
    worker: None,
    receiver: ReceiverFixture,
    make_settings: Callable[..., Settings],
) -> None:
    """An attempt that fails, the first (sent inline) or a queued one, puts the next in the
    webhook queue and announces it (store/lua/delivery_attempt.lua): the dispatcher reads
    the queue and sleeps until that attempt falls due. Unannounced, the first retry (after
    the inline attempt) waited for the fallback poll (1 s) whatever the schedule (0.1 s
    here, +-20 % jitter), and so did every retry when runs stopped waking their loop."""
    recording, url = receiver
    recording.default = Answer(500)
    settings = make_settings(webhook_retry_schedule=[0.1] * 4)
    async with running_dispatcher(settings):
        await submit(client, auth, url)

        async def all_tried() -> bool:
            return len(recording.received) >= 5

        await wait_until(all_tried, timeout=20)
    at = [request.at for request in recording.received]
    gaps = [later - earlier for earlier, later in itertools.pairwise(at[:5])]
    assert max(gaps) < 0.6, gaps

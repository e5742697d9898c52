"""What an outsider or a noisy tenant can cost us, one answer per path (issue #14): each test
fails on the code before the hardening it names."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp.connector
import pytest
from aiohttp import ClientError, ClientSession, TCPConnector, web
from aiohttp.test_utils import TestClient

from acceptd.api import state
from acceptd.api.app import create_app
from acceptd.cli.embedded import free_port
from acceptd.core.events import DEFAULT_ENDPOINT_EVENTS
from acceptd.core.settings import Settings
from acceptd.core.ssrf import AddressPolicy, guarded_connector
from acceptd.dispatcher.sender import send
from acceptd.store import keys
from acceptd.store.bootstrap import BOOTSTRAP_TENANT
from acceptd.store.shards import Shards
from tests.support.http import submit_job
from tests.support.receiver import Answer, Receiver
from tests.support.roles import running_dispatcher
from tests.support.sharded import scanned, single_shard
from tests.support.waiting import wait_until

Client = TestClient[Any, Any]
Burst = Callable[..., Awaitable[None]]
ECHO = {"type": "demo.echo", "input": {"value": 1}}


async def awaiting_review(client: Client, auth: dict[str, str], burst: Burst) -> dict[str, Any]:
    submitted = await client.post(
        "/v1/jobs", json={"type": "demo.review", "input": {"subject": "s"}}, headers=auth
    )
    job = await submitted.json()
    await burst()
    return dict(await (await client.get(job["links"]["self"], headers=auth)).json())


def peak_bytes_during(call: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[int]]:
    async def measure() -> int:
        gc.collect()
        tracemalloc.start()
        try:
            await call()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    return measure


# --- Unauthenticated and oversized input ---------------------------------------------


async def test_complete_refuses_a_body_over_the_result_cap_before_reading_it(
    aiohttp_client: Callable[..., Awaitable[Client]], make_settings: Callable[..., Settings]
) -> None:
    client = await aiohttp_client(create_app(make_settings(max_result_bytes=4096)))
    big = json.dumps({"token": "ctk_x", "result": "a" * 20_000})
    answer = await client.post(
        "/v1/jobs/job_01aaaaaaaaaaaaaaaaaaaaaaaa/complete",
        data=big,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status == 413

    async def chunks() -> Any:  # no Content-Length: the cap holds while reading
        for _ in range(10):
            yield b" " * 2048
        yield big.encode()

    chunked = await client.post(
        "/v1/jobs/job_01aaaaaaaaaaaaaaaaaaaaaaaa/complete",
        data=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert chunked.status == 413


async def test_the_token_is_checked_before_the_result_is_validated(
    client: Client, auth: dict[str, str], run_worker_burst: Burst
) -> None:
    job = await awaiting_review(client, auth, run_worker_burst)
    wrong = await client.post(
        f"{job['links']['self']}/complete",
        json={"token": "ctk_" + "x" * 43, "result": {"approved": "not a bool", "extra": 1}},
    )
    assert wrong.status == 404  # not 422: a wrong token learns nothing about the schema


async def test_a_json_bomb_is_refused_before_it_is_parsed(
    client: Client, auth: dict[str, str]
) -> None:
    """1 MiB of `[],` would be ~20 MiB of Python lists; refused on the raw bytes."""
    bomb = b'{"type": "demo.echo", "input": {"value": [' + b"[]," * 350_000 + b"[]]}}"

    async def post() -> Any:
        answer = await client.post(
            "/v1/jobs", data=io.BytesIO(bomb), headers={**auth, "Content-Type": "application/json"}
        )
        assert answer.status == 413
        assert "JSON values" in (await answer.json())["detail"]

    assert await peak_bytes_during(post)() < 8 * len(bomb)


async def test_deep_nesting_is_refused_before_it_is_parsed(
    client: Client, auth: dict[str, str]
) -> None:
    deep = b'{"type": "demo.echo", "input": {"value": ' + b"[" * 100 + b"]" * 100 + b"}}"
    answer = await client.post(
        "/v1/jobs", data=deep, headers={**auth, "Content-Type": "application/json"}
    )
    assert answer.status == 400
    assert "nests deeper" in (await answer.json())["detail"]
    strings = {"type": "demo.echo", "input": {"value": "[" * 200 + "{,,,," * 100}}
    assert (await client.post("/v1/jobs", json=strings, headers=auth)).status == 202


async def test_a_batch_over_the_item_cap_is_refused_before_items_become_models(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
) -> None:
    client = await aiohttp_client(create_app(make_settings(max_batch_items=10)))
    body = json.dumps({"items": [ECHO] * 20_000}).encode()

    async def post() -> Any:
        answer = await client.post(
            "/v1/batches",
            data=io.BytesIO(body),
            headers={**auth, "Content-Type": "application/json"},
        )
        assert answer.status == 422
        assert (await answer.json())["errors"][0]["pointer"] == "#/items"

    # Parsing the body costs what 20,000 small dicts cost; building 20,000 item models on top
    # (and validating each) is what the count check spares.
    assert await peak_bytes_during(post)() < 35 * len(body)


async def test_a_jobs_input_has_its_own_size_cap(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
) -> None:
    client = await aiohttp_client(create_app(make_settings(max_input_bytes=1024)))
    big = {"type": "demo.echo", "input": {"value": "x" * 2000}}
    answer = await client.post("/v1/jobs", json=big, headers=auth)
    assert answer.status == 422
    assert (await answer.json())["errors"][0]["pointer"] == "#/input"
    batch = await client.post("/v1/batches", json={"items": [big]}, headers=auth)
    assert (await batch.json())["errors"][0]["pointer"] == "#/items/0/input"


async def test_the_input_cap_measures_the_text_stored_at_a_bounded_cost(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
) -> None:
    """What a client sent is measured in the text it is stored as (orjson's, which writes
    1e-05 as 0.00001): an input one float past the cap is refused, though json's shorter
    text of it would fit, and one at the cap is stored in no more bytes than the cap. A
    body of escapes at the body limit is refused for the cap, linearly: no more than a
    second of this process's CPU (the client's included; it takes tens of ms)."""
    client = await aiohttp_client(create_app(make_settings(max_input_bytes=1024)))
    fits = {"value": [1e-05] * 126}  # {"value":[0.00001,...]}: 8 x 126 + 11 = 1019 bytes
    over = {"value": [1e-05] * 127}  # 1027 bytes; 773 as json writes it
    assert len(json.dumps(over, separators=(",", ":"))) <= 1024
    refused = await client.post("/v1/jobs", json={"type": "demo.echo", "input": over}, headers=auth)
    assert refused.status == 422
    assert (await refused.json())["errors"][0]["detail"] == "1027 bytes; at most 1024"
    accepted = await submit_job(client, auth, {"type": "demo.echo", "input": fits})
    shards: Shards = client.app[state.SHARDS]
    job_key = keys.job(accepted["id"])
    stored = await shards.for_key(job_key).hget(job_key, "input")  # type: ignore[misc]
    assert len(stored.encode()) == 1019
    assert json.loads(stored) == fits

    escapes = '"' + "\\u0001" * 150_000 + '"'  # 900 KB of escapes, under the body limit
    body = f'{{"type": "demo.echo", "input": {{"s": {escapes}}}}}'
    started = time.process_time()
    answer = await client.post(
        "/v1/jobs", data=body, headers={**auth, "Content-Type": "application/json"}
    )
    spent = time.process_time() - started
    assert answer.status == 422
    assert (await answer.json())["errors"][0]["pointer"] == "#/input"
    assert spent < 1.0


async def test_keyless_routes_are_rate_limited_per_address(
    aiohttp_client: Callable[..., Awaitable[Client]], make_settings: Callable[..., Settings]
) -> None:
    client = await aiohttp_client(
        create_app(make_settings(public_rate_limit_per_second=0.1, public_rate_limit_burst=3))
    )
    url = "/v1/jobs/job_01aaaaaaaaaaaaaaaaaaaaaaaa/complete"
    answers = [
        (await client.post(url, json={"token": "ctk_x", "result": 1})).status for _ in range(4)
    ]
    assert answers == [404, 404, 404, 429]
    limited = await client.post(url, json={"token": "ctk_x", "result": 1})
    assert int(limited.headers["Retry-After"]) >= 1


async def test_keyless_routes_cap_requests_in_flight_per_address(
    aiohttp_client: Callable[..., Awaitable[Client]], make_settings: Callable[..., Settings]
) -> None:
    client = await aiohttp_client(create_app(make_settings(public_concurrency_per_address=2)))
    host, port = client.server.host, client.server.port
    url = "/v1/jobs/job_01aaaaaaaaaaaaaaaaaaaaaaaa/complete"
    slow: list[asyncio.StreamWriter] = []
    for _ in range(2):  # two requests whose bodies never finish arriving
        _reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            f"POST {url} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n".encode()
        )
        await writer.drain()
        slow.append(writer)
    try:

        async def third_refused() -> bool:
            answer = await client.post(url, json={"token": "ctk_x", "result": 1})
            return answer.status == 429

        await wait_until(third_refused, timeout=5)
    finally:
        for writer in slow:
            writer.close()
    await wait_until(lambda: _empty(client.app[state.IN_FLIGHT_BY_ADDRESS].in_flight), timeout=5)


async def _empty(mapping: dict[str, int]) -> bool:
    return not mapping


# --- Live status cannot leak or pile up ----------------------------------------------


@pytest.mark.timeout(120)
async def test_a_thousand_dropped_streams_leave_nothing_behind(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
) -> None:
    client = await aiohttp_client(create_app(make_settings(stream_ping_seconds=0.2)))
    job = await submit_job(client, auth, ECHO)
    url = str(client.make_url(f"{job['links']['self']}/events"))
    changes = client.app[state.CHANGES]
    # The API subscribes to the job's sharded channel on the node that holds its slot,
    # and PUBSUB SHARDNUMSUB counts the subscribers of the node it is asked on.
    channel = keys.job_changes(job["id"])
    node = client.app[state.SHARDS].for_key(channel)

    async def subscribed() -> int:
        found = await node.execute_command("PUBSUB", "SHARDNUMSUB", channel)
        return int(found[1])

    baseline_tasks = len(asyncio.all_tasks())
    async with ClientSession(connector=TCPConnector(limit=0)) as session:
        streams = [await session.get(url, headers=auth) for _ in range(1000)]
        for stream in streams[:5]:
            assert (await stream.content.readline()).startswith(b"id:")
        assert client.app[state.WAITERS].in_flight["default"] == 1000
        assert await subscribed() == 1  # one subscription for the thousand, asked where it is
        for stream in streams:
            stream.close()  # the client goes away without a word

    async def cleaned_up() -> bool:
        return (
            not client.app[state.WAITERS].in_flight
            and not changes._watchers
            and await subscribed() == 0
            and len(asyncio.all_tasks()) <= baseline_tasks + 5
        )

    await wait_until(cleaned_up, timeout=30, interval=0.2)


async def test_a_stream_ends_after_its_maximum_lifetime(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
) -> None:
    client = await aiohttp_client(create_app(make_settings(stream_max_seconds=0.5)))
    job = await submit_job(client, auth, ECHO)
    stream = await client.get(f"{job['links']['self']}/events", headers=auth)
    text = await asyncio.wait_for(stream.text(), 10)  # ends although the job is still queued
    assert "event: status" in text
    assert not client.app[state.WAITERS].in_flight


async def test_waiting_requests_are_capped_per_tenant(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
) -> None:
    client = await aiohttp_client(create_app(make_settings(max_waiters_per_tenant=2)))
    job = await submit_job(client, auth, ECHO)
    wait = f"{job['links']['self']}?wait=30&since_status=queued"
    held = [asyncio.ensure_future(client.get(wait, headers=auth)) for _ in range(2)]

    async def both_waiting() -> bool:
        return bool(client.app[state.WAITERS].in_flight.get("default") == 2)

    await wait_until(both_waiting)
    refused = await client.get(wait, headers=auth)
    assert refused.status == 429
    assert "Retry-After" in refused.headers
    stream = await client.get(f"{job['links']['self']}/events", headers=auth)
    assert stream.status == 429
    for request in held:
        request.cancel()
    await asyncio.gather(*held, return_exceptions=True)


# --- SSRF and settings ---------------------------------------------------------------


async def test_acceptd_dev_in_a_production_environment_opens_nothing(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACCEPTD_DEV", "true")
    client = await aiohttp_client(create_app(make_settings(allow_private_callbacks=False)))
    answer = await client.post(
        "/v1/jobs", json={**ECHO, "callback_url": "http://127.0.0.1:9/hook"}, headers=auth
    )
    assert answer.status == 422
    assert "127.0.0.1" not in (await answer.text()).replace("http://127.0.0.1:9", "")


# Loopback written so that a guard reading it as a name (c-ares: 177.0.0.1, or nothing)
# and a connector reading it as a literal (libc: 127.0.0.1) disagree.
LOOPBACK_IN_DISGUISE = [
    "0177.0.0.1",
    "0x7f.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "127.0.0.1.",
    "127.000.000.001",
]
INTERNAL_ANSWER = "internal-service-answer-4711"


def disguised(host: str, receiver_url: str) -> str:
    """The receiver's URL with its host 127.0.0.1 written as `host`."""
    return receiver_url.replace("127.0.0.1", host)


async def test_a_callback_url_in_disguised_loopback_is_a_422_everywhere(
    client: Client, auth: dict[str, str], receiver: tuple[Receiver, str]
) -> None:
    """The attack: make the dispatcher POST to an internal service by writing its address
    in octal, hex or short form. Refused for its form even by this API, which allows
    private callbacks (the `dev` policy): submit, batch, endpoint create and PATCH."""
    _, url = receiver
    existing = await (await client.post("/v1/endpoints", json={"url": url}, headers=auth)).json()
    for host in LOOPBACK_IN_DISGUISE:
        target = disguised(host, url)
        answers = [
            await client.post("/v1/jobs", json={**ECHO, "callback_url": target}, headers=auth),
            await client.post(
                "/v1/batches", json={"items": [ECHO], "callback_url": target}, headers=auth
            ),
            await client.post("/v1/endpoints", json={"url": target}, headers=auth),
            await client.patch(
                f"/v1/endpoints/{existing['id']}", json={"url": target}, headers=auth
            ),
        ]
        for answer in answers:
            assert answer.status == 422, (host, answer.url, await answer.text())
            assert "canonical" in (await answer.json())["errors"][0]["detail"]
    kept = await (await client.get(f"/v1/endpoints/{existing['id']}", headers=auth)).json()
    assert kept["url"] == url


async def test_a_stored_disguised_loopback_url_never_reaches_the_receiver(
    client: Client,
    auth: dict[str, str],
    make_settings: Callable[..., Settings],
    worker: None,
    receiver: tuple[Receiver, str],
) -> None:
    """Endpoints saved before the submit check existed (written straight to the store):
    a strict dispatcher refuses them at send time, and the attempt log the tenant reads
    never holds the internal service's answer."""
    recording, url = receiver
    recording.default = Answer(body=INTERNAL_ANSWER)
    endpoints = client.app[state.ENDPOINTS]
    for host in LOOPBACK_IN_DISGUISE:
        await endpoints.create(
            BOOTSTRAP_TENANT, disguised(host, url), DEFAULT_ENDPOINT_EVENTS, host
        )
    async with running_dispatcher(make_settings(allow_private_callbacks=False)):
        job = await submit_job(client, auth, ECHO)

        async def all_settled() -> list[dict[str, Any]] | None:
            answer = await client.get(f"{job['links']['self']}/deliveries", headers=auth)
            items: list[dict[str, Any]] = (await answer.json())["items"]
            done = [d for d in items if d["status"] != "pending"]
            return items if len(done) == len(LOOPBACK_IN_DISGUISE) else None

        settled = await wait_until(all_settled, timeout=15)
    assert len(recording.received) == 0
    for delivery in settled:
        assert delivery["status"] == "failed"
        for attempt in delivery["attempts"]:
            assert attempt["error"].startswith("refused"), attempt
            assert INTERNAL_ANSWER not in json.dumps(attempt)


async def test_the_dispatchers_connector_connects_only_to_addresses_it_checked(
    receiver: tuple[Receiver, str],
) -> None:
    """Even a request that skipped the sender's own check (a literal URL never reaches a
    resolver) is refused on the address handed to connect(); the receiver sees nothing."""
    recording, url = receiver
    recording.default = Answer(body=INTERNAL_ANSWER)
    strict = AddressPolicy()
    async with ClientSession(connector=guarded_connector(strict)) as session:
        for host in ["127.0.0.1", *LOOPBACK_IN_DISGUISE, "localhost"]:
            with pytest.raises(ClientError) as refused:
                await session.post(disguised(host, url), data=b"{}")
            assert INTERNAL_ANSWER not in str(refused.value)
        # And through the sender, the way every delivery goes:
        for host in LOOPBACK_IN_DISGUISE:
            result = await send(
                session, disguised(host, url), "msg_1", b"{}", [], timeout=2.0, policy=strict
            )
            assert result.refused, result
            assert result.status_code is None
            assert INTERNAL_ANSWER not in (result.error or "")
    assert len(recording.received) == 0


async def test_the_guard_holds_with_an_aiohttp_that_connects_to_octal_literals(
    receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiohttp 3.14.0 (which our old `>=3.13` allowed) connected to `0177.0.0.1` as a
    literal, and libc read it as 127.0.0.1: that was the leak. With aiohttp's own check
    taken away, an unguarded connector reaches the receiver, and ours still does not."""
    monkeypatch.setattr(aiohttp.connector, "is_canonical_ipv4_address", lambda host: True)
    recording, url = receiver
    recording.default = Answer(body=INTERNAL_ANSWER)
    target = disguised("0177.0.0.1", url)
    async with ClientSession() as unguarded, unguarded.post(target, data=b"{}") as answer:
        assert await answer.text() == INTERNAL_ANSWER  # the leak, as the issue saw it
    assert len(recording.received) == 1
    async with ClientSession(connector=guarded_connector(AddressPolicy())) as session:
        with pytest.raises(ClientError) as refused:
            await session.post(target, data=b"{}")
    assert "not an allowed address" in str(refused.value)
    assert len(recording.received) == 1


# --- Secrets and tokens --------------------------------------------------------------


async def test_the_completion_token_reaches_only_job_awaiting_input_receivers(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Burst,
    settings: Settings,
    receiver: tuple[Receiver, str],
) -> None:
    """job.started is fanned out after the job already waits for input: its data shows the
    job as it was started, without the token an endpoint of job.started must never get."""
    recording, url = receiver
    endpoint = await client.post(
        "/v1/endpoints", json={"url": url, "events": ["job.started"]}, headers=auth
    )
    assert endpoint.status == 201
    job = await awaiting_review(client, auth, run_worker_burst)  # no dispatcher ran yet
    token = job["awaiting_input"]["token"]
    async with running_dispatcher(settings):
        [started] = await wait_until(recording.arrived("job.started"))
    data = started.json["data"]
    assert data["status"] == "running"
    assert data["awaiting_input"] is None
    assert token not in started.body.decode()


async def test_stored_webhook_bodies_do_not_hold_the_token_in_clear(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Burst,
    dispatcher: Any,
    receiver: tuple[Receiver, str],
) -> None:
    recording, url = receiver
    await client.post(
        "/v1/endpoints", json={"url": url, "events": ["job.awaiting_input"]}, headers=auth
    )
    job = await awaiting_review(client, auth, run_worker_burst)
    token = job["awaiting_input"]["token"]
    [event] = await wait_until(recording.arrived("job.awaiting_input"))
    assert event.json["data"]["awaiting_input"]["token"] == token  # the receiver gets it
    shards: Shards = client.app[state.SHARDS]
    deliveries: list[dict[str, str]] = []
    for key in await scanned(shards, "delivery:*"):  # every shard's, on its node
        if await shards.for_key(key).type(key) == "hash":
            deliveries.append(await shards.for_key(key).hgetall(key))  # type: ignore[misc]
    assert deliveries  # the awaiting_input delivery's, at least: its body was looked at
    for stored in deliveries:
        assert token not in json.dumps(stored)
    record = keys.job(job["id"])
    assert token not in json.dumps(await shards.for_key(record).hgetall(record))  # type: ignore[misc]


# --- Tenants cannot break each other -------------------------------------------------


async def test_a_deleted_endpoint_stays_deleted(client: Client, auth: dict[str, str]) -> None:
    """An attempt in flight during the delete records its failure afterwards: that must
    not bring back an endpoint hash without a tenant."""
    created = await (
        await client.post("/v1/endpoints", json={"url": "https://93.184.215.14/h"}, headers=auth)
    ).json()
    endpoints = client.app[state.ENDPOINTS]
    record = await endpoints.get(created["id"])
    assert record is not None
    assert (await client.delete(f"/v1/endpoints/{created['id']}", headers=auth)).status == 204
    await endpoints.record_failure(record.id, 1)
    await endpoints.disable(record, "failing")
    gone = keys.endpoint(record.id)
    assert await client.app[state.SHARDS].for_key(gone).exists(gone) == 0


@pytest.mark.timeout(90)
async def test_a_tenant_with_slow_receivers_cannot_starve_another(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
    run_worker_burst: Burst,
) -> None:
    """Tenant A has 200 callbacks hanging on 200 different hosts; tenant B's webhooks still
    arrive within a second of their events (each tenant has its share of the dispatcher)."""
    settings = make_settings(
        webhook_max_concurrency=30,
        webhook_concurrency_per_tenant=10,
        webhook_timeout_seconds=5,
        webhook_retry_schedule=[60],
    )
    client = await aiohttp_client(create_app(settings))
    other = await client.app[state.TENANTS].create("tenant-b")
    arrivals: list[float] = []  # B's lateness: arrival (wall clock) minus the event's time
    hanging: list[str] = []  # A's attempts held open, by host

    async def hang(request: web.Request) -> web.Response:
        hanging.append(request.host)
        await asyncio.sleep(30)  # a receiver that never answers within the timeout
        return web.Response()

    async def fast(request: web.Request) -> web.Response:
        event = json.loads(await request.read())
        at = datetime.fromisoformat(event["timestamp"]).timestamp()
        arrivals.append(time.time() - at)
        return web.Response()

    receivers = web.Application()
    receivers.router.add_post("/hang", hang)
    receivers.router.add_post("/fast", fast)
    runner = web.AppRunner(receivers)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    try:
        async with running_dispatcher(settings):
            for i in range(200):  # 200 destinations: 127.0.0.2 ... 127.0.0.201
                await client.post(
                    "/v1/jobs",
                    json={**ECHO, "callback_url": f"http://127.0.0.{2 + i}:{port}/hang"},
                    headers=auth,
                )
            await run_worker_burst(settings)
            # A's attempts hold what they may of the slots: its share of the dispatcher.
            await wait_until(lambda: len(hanging) >= 10, timeout=20)
            b_auth = {"Authorization": f"Bearer {other.api_key}"}
            for _ in range(20):
                await client.post(
                    "/v1/jobs",
                    json={**ECHO, "callback_url": f"http://127.0.0.1:{port}/fast"},
                    headers=b_auth,
                )
            await run_worker_burst(settings)

            async def all_arrived() -> bool:
                return len(arrivals) == 20

            await wait_until(all_arrived, timeout=20)
    finally:
        await runner.cleanup()
    late = sorted(arrivals)
    assert late[-1] < 1.0, late  # p99 of 20 is the worst


@single_shard
async def test_a_tenant_holds_at_most_its_quota_of_jobs(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
) -> None:
    """What bounds how many records a tenant holds: ACCEPTD_MAX_JOBS_PER_TENANT jobs at once
    (its bytes: test_tenant_bytes.py)."""
    client = await aiohttp_client(create_app(make_settings(max_jobs_per_tenant=3)))
    for _ in range(3):
        assert (await client.post("/v1/jobs", json=ECHO, headers=auth)).status == 202
    over = await client.post("/v1/jobs", json=ECHO, headers=auth)
    assert over.status == 429
    assert "ACCEPTD_MAX_JOBS_PER_TENANT" in (await over.json())["detail"]
    batch = await client.post("/v1/batches", json={"items": [ECHO]}, headers=auth)
    assert batch.status == 429
    other = await client.app[state.TENANTS].create("roomy")
    theirs = {"Authorization": f"Bearer {other.api_key}"}
    assert (await client.post("/v1/jobs", json=ECHO, headers=theirs)).status == 202

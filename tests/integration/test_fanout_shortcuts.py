"""The fan-out's two shortcuts to a callback (dispatcher/fanout.py), each one round trip:
- a terminal event carries the job as it left it, so the callback is sent without a read
  of the job (and before the tenant's endpoints are read);
- a fresh event's first attempt leaves while its delivery is being made, and is recorded
  once the delivery exists. When the making fails, the attempt records nothing, the event
  stays pending, and handled again its delivery is made and sent anew: at least once,
  never lost."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from acceptd.api import state
from acceptd.core import ids
from acceptd.core.clock import now_ms
from acceptd.core.settings import Settings
from acceptd.dispatcher.assembly import DispatcherRuntime
from acceptd.store import keys
from acceptd.store.outages import StoreUnavailable
from tests.support.http import submit_job
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until

Client = TestClient[Any, Any]


@contextlib.asynccontextmanager
async def dispatcher_parts(settings: Settings) -> AsyncIterator[DispatcherRuntime]:
    """A dispatcher's parts (its fan-outs, inline sender, attempts), its own loops stopped:
    the test reads the events stream for them."""
    runtime = await DispatcherRuntime.open(settings)
    for task in runtime.tasks:
        task.cancel()
    await asyncio.gather(*runtime.tasks, return_exceptions=True)
    runtime.tasks = []
    try:
        yield runtime
    finally:
        await runtime.close()


async def finished_job(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Callable[..., Any],
    callback_url: str | None,
    **extra: Any,
) -> dict[str, Any]:
    """A demo.echo job (with a callback unless None) run to its end: its terminal event is
    written (without a callback, when an endpoint wants it)."""
    body = {"type": "demo.echo", "input": {"value": 1}, **extra}
    if callback_url is not None:
        body["callback_url"] = callback_url
    job = await submit_job(client, auth, body)
    await run_worker_burst()
    return job


async def one_event(client: Client, job_id: str) -> tuple[Any, list[Any]]:
    """The job's shard's stream and its first event, read as a fan-out reads new ones."""
    shard = ids.shard_of(job_id)
    redis = client.app[state.SHARDS].of(shard)
    stream = keys.events_stream(shard)
    await redis.xgroup_create(stream, keys.EVENTS_GROUP, id="0", mkstream=True)
    [(_, batch)] = await redis.xreadgroup(keys.EVENTS_GROUP, "test", {stream: ">"}, count=1)
    return redis, batch


async def test_a_fresh_first_attempt_is_recorded_once_its_delivery_is_made(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Callable[..., Any],
    receiver: tuple[Receiver, str],
    settings: Settings,
) -> None:
    recording, url = receiver
    job = await finished_job(client, auth, run_worker_burst, url)
    async with dispatcher_parts(settings) as runtime:
        redis, batch = await one_event(client, job["id"])
        fanout = runtime.fanouts[ids.shard_of(job["id"])]
        assert await fanout._handle_batch(batch, fresh=True) is None
        await wait_until(recording.got(1), timeout=10)
        await asyncio.wait_for(asyncio.gather(*runtime.inline.tasks), 10)
    [(delivery, attempts)] = await client.app[state.DELIVERIES].for_job(job["id"])
    assert (delivery.status.value, len(attempts)) == ("succeeded", 1)
    assert await redis.xlen(keys.events_stream(ids.shard_of(job["id"]))) == 0


async def test_an_attempt_sent_while_its_making_failed_records_nothing_and_is_sent_anew(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Callable[..., Any],
    receiver: tuple[Receiver, str],
    settings: Settings,
    refusing_writes: Callable[[], contextlib.AbstractAsyncContextManager[None]],
) -> None:
    recording, url = receiver
    job = await finished_job(client, auth, run_worker_burst, url)
    deliveries = client.app[state.DELIVERIES]
    async with dispatcher_parts(settings) as runtime:
        redis, batch = await one_event(client, job["id"])
        stream = keys.events_stream(ids.shard_of(job["id"]))
        fanout = runtime.fanouts[ids.shard_of(job["id"])]
        async with refusing_writes():
            with pytest.raises(StoreUnavailable, match="out of memory"):
                await fanout._handle_batch(batch, fresh=True)
            # The request left before the making failed; the attempt ends, recording nothing.
            await wait_until(recording.got(1), timeout=10)
            await asyncio.wait_for(asyncio.gather(*runtime.inline.tasks), 10)
        assert await deliveries.for_job(job["id"]) == []
        assert (await redis.xpending(stream, keys.EVENTS_GROUP))["pending"] == 1
        # Handled again, as a fan-out reads its own pending events after an error.
        assert await fanout._handle_batch(batch) is None
        await wait_until(recording.got(2), timeout=10)
        await asyncio.wait_for(asyncio.gather(*runtime.inline.tasks), 10)
    [(delivery, attempts)] = await deliveries.for_job(job["id"])
    assert (delivery.status.value, len(attempts)) == ("succeeded", 1)
    first, again = recording.received
    assert first.headers["webhook-id"] == again.headers["webhook-id"]  # one message, twice
    assert await redis.xlen(stream) == 0


async def test_the_callback_shows_the_job_as_its_terminal_event_left_it(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Callable[..., Any],
    receiver: tuple[Receiver, str],
    settings: Settings,
) -> None:
    """Sent from the record its event carries, not from a read of the job: a change to the
    job's hash after the event (here, by hand) is not what the callback reports."""
    recording, url = receiver
    job = await finished_job(client, auth, run_worker_burst, url, metadata={"a": 1})
    async with dispatcher_parts(settings) as runtime:
        redis, batch = await one_event(client, job["id"])
        assert "record" in batch[0][1]
        await redis.hset(keys.job(job["id"]), "metadata", '{"a": 2}')
        fanout = runtime.fanouts[ids.shard_of(job["id"])]
        assert await fanout._handle_batch(batch, fresh=True) is None
        await wait_until(recording.got(1), timeout=10)
    [sent] = recording.received
    assert sent.json["type"] == "job.succeeded"
    assert sent.json["data"]["metadata"] == {"a": 1}


async def test_an_event_a_dead_dispatcher_left_without_its_delivery_is_sent_within_seconds(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Callable[..., Any],
    receiver: tuple[Receiver, str],
    settings: Settings,
) -> None:
    """A dispatcher that dies after a fresh attempt left but before its delivery was made
    leaves only its unacknowledged event: another dispatcher claims it once it has been idle
    CLAIM_IDLE_MS (8 s: here made so by XCLAIM's IDLE), within CLAIM_EVERY_SECONDS, and
    makes and sends the delivery."""
    from acceptd.dispatcher.fanout import CLAIM_IDLE_MS

    recording, url = receiver
    job = await finished_job(client, auth, run_worker_burst, url)
    redis, batch = await one_event(client, job["id"])  # read by "test", which then died
    stream = keys.events_stream(ids.shard_of(job["id"]))
    [(entry_id, _)] = batch
    await redis.xclaim(stream, keys.EVENTS_GROUP, "test", 0, [entry_id], idle=CLAIM_IDLE_MS + 1000)
    async with dispatcher_parts(settings) as runtime:
        runtime.tasks = [asyncio.create_task(fanout.run()) for fanout in runtime.fanouts]
        await wait_until(recording.got(1), timeout=5)
        await asyncio.wait_for(asyncio.gather(*runtime.inline.tasks), 10)
    [(delivery, attempts)] = await client.app[state.DELIVERIES].for_job(job["id"])
    assert (delivery.status.value, len(attempts)) == ("succeeded", 1)
    assert await redis.xlen(stream) == 0


async def test_an_event_older_than_half_the_retention_is_not_sent_from_its_record(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Callable[..., Any],
    receiver: tuple[Receiver, str],
    settings: Settings,
) -> None:
    """The job expires a retention after its last change: an event that old (a long
    dispatcher outage) is told whether its job is gone by a read, as before, and a job
    gone is sent to nobody, its copy in the event notwithstanding."""
    recording, url = receiver
    job = await finished_job(client, auth, run_worker_burst, url)
    async with dispatcher_parts(settings) as runtime:
        redis, batch = await one_event(client, job["id"])
        [(_, fields)] = batch
        assert "record" in fields
        fields["at"] = str(now_ms() - settings.job_retention_seconds * 1000 // 2)
        await redis.delete(keys.job(job["id"]))  # expired meanwhile
        fanout = runtime.fanouts[ids.shard_of(job["id"])]
        assert await fanout._handle_batch(batch, fresh=True) is None
        await asyncio.wait_for(asyncio.gather(*runtime.inline.tasks), 10)  # none were made
    assert recording.received == []
    assert await client.app[state.DELIVERIES].for_job(job["id"]) == []


async def endpoint_job(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Callable[..., Any],
    url: str,
    callback_url: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(an endpoint at `url` that receives job.succeeded, a job run to its end; without a
    callback, its terminal event is for the endpoint only)."""
    made = await client.post(
        "/v1/endpoints", json={"url": url, "events": ["job.succeeded"]}, headers=auth
    )
    assert made.status == 201, await made.text()
    job = await finished_job(client, auth, run_worker_burst, callback_url)
    return dict(await made.json()), job


def every_slot_taken(runtime: DispatcherRuntime, url: str, endpoint_id: str) -> int:
    """Takes every slot of the endpoint (as if its attempts were all busy), so a first
    attempt made for it waits in the inline sender; returns how many were taken."""
    slots, taken = runtime.attempts.slots, 0
    while taken < 1000 and slots.try_take("default", url, endpoint_id):
        taken += 1
    assert 0 < taken < 1000
    return taken


async def disable(client: Client, auth: dict[str, str], endpoint: dict[str, Any]) -> None:
    path = f"/v1/endpoints/{endpoint['id']}"
    assert (await client.patch(path, json={"disabled": True}, headers=auth)).status == 200


async def test_a_fresh_attempt_to_an_endpoint_is_sent_with_the_endpoint_just_read(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Callable[..., Any],
    receiver: tuple[Receiver, str],
    settings: Settings,
) -> None:
    """The fan-out has just read the tenant's endpoints: a first attempt that starts at once
    is signed and sent with that record, and does not read the endpoint again (one round
    trip sooner). The endpoint's hash is read once, by the fan-out (MONITOR on the server
    that holds it)."""
    recording, url = receiver
    endpoint, job = await endpoint_job(client, auth, run_worker_burst, url)
    control = client.app[state.SHARDS].control
    endpoint_key, done = keys.endpoint(endpoint["id"]), "test:monitor-caught-up"
    seen: list[str] = []
    async with dispatcher_parts(settings) as runtime:
        _, batch = await one_event(client, job["id"])
        async with control.monitor() as monitor:

            async def listen() -> None:
                async for command in monitor.listen():
                    seen.append(command["command"])
                    if done in command["command"]:
                        return

            listening = asyncio.create_task(listen())
            fanout = runtime.fanouts[ids.shard_of(job["id"])]
            assert await fanout._handle_batch(batch, fresh=True) is None
            await wait_until(recording.got(1), timeout=10)
            await asyncio.wait_for(asyncio.gather(*runtime.inline.tasks), 10)
            # Every command before this one has reached the monitor once it is seen.
            await control.echo(done)
            await asyncio.wait_for(listening, 10)
    [sent] = recording.received
    assert sent.json["data"]["id"] == job["id"]
    # Its secrets (SigningSecrets) and its health (OutcomePolicy) are other reads of it.
    assert seen.count(f"HGETALL {endpoint_key}") == 1
    [(delivery, attempts)] = await client.app[state.DELIVERIES].for_job(job["id"])
    assert (delivery.status.value, len(attempts)) == ("succeeded", 1)


async def test_a_first_attempt_that_waited_for_a_slot_reads_its_endpoint_when_it_starts(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Callable[..., Any],
    receiver: tuple[Receiver, str],
    settings: Settings,
) -> None:
    """The endpoint as the fan-out read it is good for an attempt that starts at once, not
    for one that waits for its destination's slots: disabled meanwhile, it is not sent to."""
    recording, url = receiver
    endpoint, job = await endpoint_job(client, auth, run_worker_burst, url)
    async with dispatcher_parts(settings) as runtime:
        _, batch = await one_event(client, job["id"])
        taken = every_slot_taken(runtime, url, endpoint["id"])
        fanout = runtime.fanouts[ids.shard_of(job["id"])]
        assert await fanout._handle_batch(batch, fresh=True) is None
        assert runtime.inline.held() != []  # made, waiting for a slot
        await disable(client, auth, endpoint)
        for _ in range(taken):
            runtime.attempts.slots.give_back("default", url, endpoint["id"])
        await wait_until(lambda: runtime.inline.tasks, timeout=5)
        await asyncio.wait_for(asyncio.gather(*runtime.inline.tasks), 10)
    assert recording.received == []
    [(delivery, attempts)] = await client.app[state.DELIVERIES].for_job(job["id"])
    assert delivery.status.value == "failed"
    assert [attempt["error"] for attempt in attempts] == ["endpoint disabled"]


def once_endpoints_were_read(
    monkeypatch: pytest.MonkeyPatch,
    runtime: DispatcherRuntime,
    change: Callable[[], Any],
    during: str,
) -> None:
    """`change` (an API call, answered 2xx) lands once the tenant's endpoints were read,
    while the fan-out's first delivery is being made (`during="making"`) or while its
    subject is still being read (`"subject"`): a slow making or read, as a busy shard or a
    failover's retries make one (on a cluster, the endpoints' node is not the job's)."""
    fanout = runtime.fanouts[0]  # every fan-out's stores are the same ones
    endpoints, for_tenant = fanout._endpoints, fanout._endpoints.for_tenant
    store = fanout._deliveries if during == "making" else fanout._jobs
    name = "create" if during == "making" else "get"
    slow, read, changed = getattr(store, name), asyncio.Event(), asyncio.Event()

    async def read_and_tell(tenant: str) -> Any:
        try:
            return await for_tenant(tenant)
        finally:
            read.set()

    async def change_meanwhile(*args: Any, **kwargs: Any) -> Any:
        if not changed.is_set():
            changed.set()
            await asyncio.wait_for(read.wait(), 10)
            await change()
        return await slow(*args, **kwargs)

    monkeypatch.setattr(endpoints, "for_tenant", read_and_tell)
    monkeypatch.setattr(store, name, change_meanwhile)


@pytest.mark.parametrize(
    ("during", "fresh"), [("making", True), ("making", False), ("subject", True)]
)
async def test_an_endpoint_disabled_after_the_fan_out_read_it_is_not_sent_to(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Callable[..., Any],
    receiver: tuple[Receiver, str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    during: str,
    fresh: bool,
) -> None:
    """The fan-out's read of an endpoint goes with an attempt only while nothing was awaited
    since. Disabled while the job's callback was made (fresh: a small callback goes
    first), while its own delivery was (an event read again is made, then sent), or while
    the event's subject was read (a job without a callback: its event carries no record,
    and that read may land after the endpoints'), the endpoint is not sent to."""
    recording, url = receiver
    callback = [f"{url}/callback"] if during == "making" else []
    endpoint, job = await endpoint_job(client, auth, run_worker_burst, f"{url}/endpoint", *callback)
    async with dispatcher_parts(settings) as runtime:
        _, batch = await one_event(client, job["id"])
        change = functools.partial(disable, client, auth, endpoint)
        once_endpoints_were_read(monkeypatch, runtime, change, during=during)
        fanout = runtime.fanouts[ids.shard_of(job["id"])]
        assert await fanout._handle_batch(batch, fresh=fresh) is None
        await wait_until(recording.got(len(callback)), timeout=10)
        await asyncio.wait_for(asyncio.gather(*runtime.inline.tasks), 10)
    assert [sent.path for sent in recording.received] == ["/hook/callback"] * len(callback)
    made = await client.app[state.DELIVERIES].for_job(job["id"])
    errors = {delivery.endpoint_id: [a["error"] for a in attempts] for delivery, attempts in made}
    assert errors == {endpoint["id"]: ["endpoint disabled"], **({None: [None]} if callback else {})}


async def test_an_endpoint_deleted_after_its_attempt_read_it_is_sent_nothing_unsigned(
    client: Client,
    auth: dict[str, str],
    run_worker_burst: Callable[..., Any],
    receiver: tuple[Receiver, str],
    settings: Settings,
) -> None:
    """Its record, read before the deletion, passes; its secrets, read after, are gone with
    its hash: the attempt gives up instead of sending a webhook without a signature."""
    recording, url = receiver
    endpoint, job = await endpoint_job(client, auth, run_worker_burst, url)
    async with dispatcher_parts(settings) as runtime:
        _, batch = await one_event(client, job["id"])
        every_slot_taken(runtime, url, endpoint["id"])  # this test makes the attempt itself
        fanout = runtime.fanouts[ids.shard_of(job["id"])]
        assert await fanout._handle_batch(batch, fresh=True) is None
        [delivery_id] = runtime.inline.held()
        delivery = await client.app[state.DELIVERIES].get(delivery_id)
        read_before = await client.app[state.ENDPOINTS].get(endpoint["id"])
        assert delivery is not None
        assert read_before is not None
        gone = await client.delete(f"/v1/endpoints/{endpoint['id']}", headers=auth)
        assert gone.status == 204
        await runtime.attempts.run(delivery, 1, read_before)
    assert recording.received == []
    [(made, attempts)] = await client.app[state.DELIVERIES].for_job(job["id"])
    assert made.status.value == "failed"
    assert [attempt["error"] for attempt in attempts] == ["endpoint deleted"]

"""A fresh event's first attempt leaves while its delivery is being made (dispatcher/
fanout.py): one round trip sooner, recorded once the delivery exists. When the making
fails, the attempt records nothing, the event stays pending, and handled again its
delivery is made and sent anew: at least once, never lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from acceptd.api import state
from acceptd.core import ids
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
    job = await submit_job(
        client, auth, {"type": "demo.echo", "input": {"value": 1}, "callback_url": url}
    )
    await run_worker_burst()
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
    refusing_writes: Callable[[], contextlib.AbstractContextManager[None]],
) -> None:
    recording, url = receiver
    job = await submit_job(
        client, auth, {"type": "demo.echo", "input": {"value": 1}, "callback_url": url}
    )
    await run_worker_burst()
    deliveries = client.app[state.DELIVERIES]
    async with dispatcher_parts(settings) as runtime:
        redis, batch = await one_event(client, job["id"])
        stream = keys.events_stream(ids.shard_of(job["id"]))
        fanout = runtime.fanouts[ids.shard_of(job["id"])]
        with refusing_writes():
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

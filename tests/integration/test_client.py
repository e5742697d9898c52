"""The Python client against a running in-process stack."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

import acceptd.client as acceptd
from acceptd.cli.embedded import free_port
from acceptd.core.settings import Settings
from acceptd.webhooks.receiver import WebhookReceiver
from tests.support.constants import API_KEY, SECRET


async def test_submit_get_list_cancel(api_url: str) -> None:
    async with acceptd.Client(api_url, API_KEY) as client:
        first = await client.submit("demo.echo", {"value": 1}, metadata={"k": "v"})
        assert first.status == "queued"
        assert first.metadata == {"k": "v"}
        assert (await client.get(first.id)).id == first.id
        others = [await client.submit("demo.echo", {"value": i}) for i in range(4)]
        page = await client.list(limit=2)
        assert len(page.items) == 2
        assert page.next_cursor
        seen = [job.id async for job in client.iter_jobs(page_size=2)]
        assert seen == [j.id for j in reversed([first, *others])]
        canceled = await client.cancel(first.id)
        assert canceled.status == "canceled"
        with pytest.raises(acceptd.Conflict) as conflict:
            await client.cancel(first.id)
        assert conflict.value.status == 409
        assert conflict.value.type.endswith("conflict")
        types = await client.job_types()
        assert "demo.echo" in {t.name for t in types}


async def test_typed_errors_carry_the_problem(api_url: str) -> None:
    async with acceptd.Client(api_url, API_KEY) as client:
        with pytest.raises(acceptd.ValidationFailed) as invalid:
            await client.submit("demo.echo", {"delay_ms": "x"})
        assert {e["field"] for e in invalid.value.errors} == {"input.value", "input.delay_ms"}
        assert invalid.value.title == "Request failed validation"
        with pytest.raises(acceptd.NotFound):
            await client.get("job_00000000000000000000000000")
    async with acceptd.Client(api_url, "acc_wrong") as client:
        with pytest.raises(acceptd.Unauthorized):
            await client.get("job_00000000000000000000000000")


async def test_unreachable_server_is_a_transport_error() -> None:
    async with acceptd.Client(f"http://127.0.0.1:{free_port()}", API_KEY, max_retries=1) as client:
        with pytest.raises(acceptd.TransportError):
            await client.get("job_00000000000000000000000000")


async def test_submit_retries_with_the_same_idempotency_key(
    api_url: str, aiohttp_server: Callable[..., Awaitable[Any]]
) -> None:
    """The first answer is lost (the proxy forwards it, then says 502): the retry must find
    the job the first request created, not make another."""
    forwarded: list[str] = []
    http: dict[str, Any] = {}

    async def flaky(request: web.Request) -> web.Response:
        import aiohttp

        if "session" not in http:
            http["session"] = aiohttp.ClientSession()
        async with http["session"].request(
            request.method,
            api_url + request.path_qs,
            data=await request.read(),
            headers=request.headers,
        ) as upstream:
            body = await upstream.read()
        forwarded.append(request.headers.get("Idempotency-Key", ""))
        if len(forwarded) == 1:
            return web.Response(status=502, text="bad gateway")
        return web.Response(status=upstream.status, body=body, content_type="application/json")

    proxy = web.Application()
    proxy.router.add_route("*", "/{tail:.*}", flaky)
    server = await aiohttp_server(proxy)
    try:
        async with acceptd.Client(str(server.make_url("")).rstrip("/"), API_KEY) as client:
            job = await client.submit("demo.echo", {"value": "once"})
            assert len(forwarded) == 2
            assert forwarded[0] == forwarded[1] != ""
        async with acceptd.Client(api_url, API_KEY) as direct:
            assert [j.id async for j in direct.iter_jobs()] == [job.id]
    finally:
        await http["session"].close()


async def test_wait_returns_the_terminal_job_and_polls_politely(api_url: str, worker: None) -> None:
    updates: list[str] = []
    async with acceptd.Client(api_url, API_KEY) as client:
        job = await client.submit("demo.echo", {"value": 5, "delay_ms": 1200})
        done = await client.wait(job.id, timeout=20, on_update=lambda j: updates.append(j.status))
    assert done.status == "succeeded"
    assert done.result == {"value": 5}
    # Retry-After is 1 s: a 1.2 s job is polled a handful of times, never in a busy loop.
    assert 2 <= len(updates) <= 4


async def test_wait_times_out_with_the_last_state(api_url: str) -> None:
    async with acceptd.Client(api_url, API_KEY) as client:
        job = await client.submit("demo.echo", {"value": 1})  # no worker: stays queued
        with pytest.raises(acceptd.WaitTimeout) as timeout:
            await client.wait(job.id, timeout=0.3)
    assert timeout.value.job.status == "queued"


async def test_wait_with_a_receiver_returns_on_the_webhook(
    aiohttp_server: Callable[..., Awaitable[Any]],
    make_settings: Callable[..., Settings],
    worker: None,
    dispatcher: Any,
) -> None:
    from acceptd.api.app import create_app

    # The server asks for 30 s between polls: only the webhook can end this wait quickly.
    slow_polls = await aiohttp_server(create_app(make_settings(retry_after_seconds=30)))
    receiver = WebhookReceiver(SECRET)
    url = await receiver.start()
    try:
        async with acceptd.Client(str(slow_polls.make_url("")).rstrip("/"), API_KEY) as client:
            job = await client.submit(
                "demo.echo", {"value": "hooked", "delay_ms": 200}, callback_url=url
            )
            started = time.monotonic()
            done = await client.wait(job.id, timeout=20, receiver=receiver)
            assert time.monotonic() - started < 10
    finally:
        await receiver.stop()
    assert done.status == "succeeded"
    assert done.result == {"value": "hooked"}


async def test_wait_falls_back_to_polling_when_no_webhook_comes(api_url: str, worker: None) -> None:
    receiver = WebhookReceiver(SECRET)
    await receiver.start()
    try:
        async with acceptd.Client(api_url, API_KEY) as client:
            job = await client.submit("demo.echo", {"value": 1})  # no callback_url: no webhook
            done = await client.wait(job.id, timeout=20, receiver=receiver)
    finally:
        await receiver.stop()
    assert done.status == "succeeded"


async def test_endpoints_and_deliveries_through_the_client(
    api_url: str, worker: None, dispatcher: Any, receiver: tuple[Any, str]
) -> None:
    _recording, url = receiver
    async with acceptd.Client(api_url, API_KEY) as client:
        endpoint = await client.create_endpoint(url, events=["job.succeeded"], description="mine")
        assert endpoint.secret.startswith("whsec_")
        assert [e.id for e in await client.endpoints()] == [endpoint.id]
        rotated = await client.rotate_endpoint_secret(endpoint.id)
        assert rotated.secret != endpoint.secret
        updated = await client.update_endpoint(endpoint.id, description="renamed")
        assert updated.description == "renamed"
        job = await client.submit("demo.echo", {"value": 1})
        await client.wait(job.id, timeout=20)
        for _ in range(100):
            found = await client.deliveries(job.id)
            if found and found[0].status == "succeeded":
                break
            await asyncio.sleep(0.05)
        assert found[0].status == "succeeded"
        again = await client.redeliver(found[0].id)
        assert again.status == "pending"
        await client.delete_endpoint(endpoint.id)
        assert await client.endpoints() == []


async def test_sync_client(api_url: str, worker: None) -> None:
    def script() -> acceptd.Job:
        with acceptd.SyncClient(api_url, API_KEY) as client:
            job = client.submit("demo.echo", {"value": "sync"})
            return client.wait(job.id, timeout=20)

    done = await asyncio.to_thread(script)
    assert done.result == {"value": "sync"}


async def test_batches_events_and_completion_through_the_client(api_url: str, worker: None) -> None:
    async with acceptd.Client(api_url, API_KEY) as client:
        batch = await client.submit_batch(
            [{"type": "demo.echo", "input": {"value": i}} for i in range(3)],
            metadata={"source": "test"},
        )
        done = await client.wait_batch(batch.id, timeout=30)
        assert done.counts.succeeded == 3
        page = await client.list(batch=batch.id)
        assert len(page.items) == 3

        job = await client.submit("demo.review", {"subject": "s"})
        seen: list[str] = []
        async for event, state in client.events(job.id):
            seen.append(f"{event}:{state.status}")
            if state.status == "awaiting_input":
                assert state.awaiting_input is not None
                token = state.awaiting_input.token
                async with acceptd.Client(api_url) as reviewer:  # no API key: the token suffices
                    await reviewer.fail(job.id, token, "rejected", detail="blurry scan")
        assert seen[-1] == "status:failed"
        assert "status:awaiting_input" in seen
        final = await client.get(job.id)
        assert final.error is not None
        assert final.error.title == "rejected"
        with pytest.raises(acceptd.Conflict):
            await client.complete(job.id, token, {"approved": True})


async def test_wait_holds_long_polls_that_end_when_the_job_does(
    aiohttp_server: Callable[..., Awaitable[Any]],
    make_settings: Callable[..., Settings],
    worker: None,
) -> None:
    from acceptd.api.app import create_app

    # Polling would honour Retry-After: 30 s; only a held request ends this wait quickly.
    slow_polls = await aiohttp_server(create_app(make_settings(retry_after_seconds=30)))
    async with acceptd.Client(str(slow_polls.make_url("")).rstrip("/"), API_KEY) as client:
        job = await client.submit("demo.echo", {"value": "held", "delay_ms": 300})
        started = time.monotonic()
        done = await client.wait(job.id, timeout=20)
        assert time.monotonic() - started < 10
    assert done.result == {"value": "held"}

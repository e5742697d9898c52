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
from tests.support.http import authed_session
from tests.support.tasks import tasks_made
from tests.support.waiting import wait_until


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
        assert [job.input for job in page.items] == [None, None]  # left out of a list
        full = await client.list(limit=2, view="full")
        assert [job.input for job in full.items] == [{"value": 3}, {"value": 2}]
        assert [job.input async for job in client.iter_jobs(view="full")][-1] == {"value": 1}
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
            with tasks_made() as made:
                done = await client.wait(job.id, timeout=20, receiver=receiver)
            assert time.monotonic() - started < 10
            # The long poll the webhook cut short has ended, its connection closed with
            # it: left running, it outlived the client and its socket was never closed.
            polls = [task for task in made if _of_the_client(task)]
            assert polls
            assert all(task.done() for task in polls)
    finally:
        await receiver.stop()
    assert done.status == "succeeded"
    assert done.result == {"value": "hooked"}


def _of_the_client(task: asyncio.Task[Any]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and "acceptd/client/" in code.co_filename


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

        async def delivered() -> list[acceptd.Delivery] | None:
            found = await client.deliveries(job.id)
            return found if found and found[0].status == "succeeded" else None

        found = await wait_until(delivered, timeout=5)
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


async def test_submit_takes_every_option_and_typed_inputs(api_url: str) -> None:
    from acceptd.jobs.demo import EchoInput

    async with acceptd.Client(api_url, API_KEY) as client:
        typed = await client.submit("demo.echo", EchoInput(value="typed", delay_ms=5))
        assert typed.input == {"value": "typed", "delay_ms": 5, "fail": False, "progress_steps": 0}
        later = await client.submit(
            "demo.echo", {"value": 1}, delay_seconds=3600, priority="high", metadata={"a": 1}
        )
        assert later.status == "scheduled"
        assert later.priority == "high"
        at = await client.submit("demo.echo", {"value": 2}, run_at="2099-01-01T00:00:00Z")
        assert at.run_at is not None
        assert at.run_at.startswith("2099-01-01")
        assert (await client.cancel(at.id)).status == "canceled"
        with pytest.raises(acceptd.ValidationFailed):
            await client.submit(
                "demo.echo", {"value": 3}, run_at="2099-01-01T00:00:00Z", delay_seconds=5
            )


async def test_batches_pages_and_iterators(api_url: str) -> None:
    async with acceptd.Client(api_url, API_KEY) as client:
        made = [
            await client.submit_batch([acceptd.BatchItem(type="demo.echo", input={"value": i})])
            for i in range(3)
        ]
        page = await client.list_batches(limit=2)
        assert [b.id for b in page.items] == [made[2].id, made[1].id]
        assert [b.id async for b in client.iter_batches(page_size=1)] == [
            b.id for b in reversed(made)
        ]
        canceled = await client.cancel_batch(made[0].id)
        assert canceled.counts.canceled == 1
        assert await client.batch_deliveries(made[0].id) == []

    def sync_walk() -> tuple[list[str], list[str]]:
        with acceptd.SyncClient(api_url, API_KEY) as blocking:
            jobs = [job.batch_id or "" for job in blocking.iter_jobs(page_size=1)]
            batches = [batch.id for batch in blocking.iter_batches(page_size=2)]
            return jobs, batches

    jobs, batches = await asyncio.to_thread(sync_walk)
    assert jobs == [b.id for b in reversed(made)]
    assert batches == [b.id for b in reversed(made)]


async def test_endpoint_test_event_keys_secrets_and_operations(
    api_url: str, dispatcher: Any, receiver: tuple[Any, str]
) -> None:
    recording, url = receiver
    async with acceptd.Client(api_url, API_KEY) as client:
        endpoint = await client.create_endpoint(url)
        assert (await client.get_endpoint(endpoint.id)).url == url
        sent = await client.test_endpoint(endpoint.id)
        assert sent.event == "webhook.test"
        assert sent.endpoint_id == endpoint.id

        async def delivered() -> acceptd.Delivery | None:
            delivery = await client.get_delivery(sent.id)
            return delivery if delivery.status == "succeeded" else None

        delivery = await wait_until(delivered, timeout=10)
        assert delivery.attempts[0].status_code == 200
        (test_event,) = recording.events("webhook.test")
        verified = acceptd.verify_event(endpoint.secret, test_event.headers, test_event.body)
        assert verified.data["endpoint_id"] == endpoint.id
        page = await client.endpoint_deliveries(endpoint.id, limit=1)
        assert [d.id for d in page.items] == [sent.id]
        stats = await client.endpoint_stats(endpoint.id)
        assert (stats.attempts, stats.succeeded, stats.success_rate) == (1, 1, 1.0)
        assert stats.latency_ms is not None
        assert (await client.whoami()).scope == "admin"
        assert len((await client.system()).per_minute) == 60
        assert (await client.job_counts()).complete
        link = await client.create_portal_link(scope="endpoints", ttl_seconds=60)
        portal = await client.exchange_portal_link(link.url.partition("#token=")[2])
        assert portal.scope == "endpoints"
        disabled = await client.update_endpoint(endpoint.id, disabled=True)
        assert disabled.disabled

        key = await client.create_api_key("ci", scope="standard")
        assert key.key.startswith("acc_")
        assert key.id in {k.id for k in await client.api_keys()}
        await client.revoke_api_key(key.id)
        rotated = await client.rotate_signing_secret()
        assert rotated.secret.startswith("whsec_")

        assert (await client.health()).status == "ok"
        assert (await client.ready()).status == "ok"
        assert "/v1/jobs" in (await client.openapi())["paths"]
    async with acceptd.Client(api_url, API_KEY) as other:
        with pytest.raises(acceptd.NotFound):
            await other.get_delivery("dlv_00000000000000000000000000")


async def test_events_resume_after_a_dropped_stream(
    api_url: str, worker: None, aiohttp_server: Callable[..., Awaitable[Any]]
) -> None:
    """A proxy cuts every stream after its first event: the client reconnects (with
    Last-Event-ID, after the server's retry:) until it has seen the terminal status."""
    last_event_ids: list[str | None] = []

    async def cut_after_one_event(request: web.Request) -> web.StreamResponse:
        last_event_ids.append(request.headers.get("Last-Event-ID"))
        async with authed_session() as session, session.get(api_url + request.path_qs) as upstream:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            buffered = b""
            async for chunk in upstream.content.iter_any():
                buffered += chunk.replace(b"\r\n", b"\n")  # aiohttp-sse ends lines with CRLF
                if b"\n\n" in buffered:
                    event, _, _ = buffered.partition(b"\n\n")
                    await response.write(event + b"\n\n")
                    break
        assert request.transport is not None
        request.transport.close()  # dropped mid-stream, as a flaky proxy would
        return response

    proxy = web.Application()
    proxy.router.add_get("/{tail:.*}", cut_after_one_event)
    server = await aiohttp_server(proxy)
    async with acceptd.Client(api_url, API_KEY) as client:
        job = await client.submit("demo.echo", {"value": 1, "delay_ms": 900, "progress_steps": 3})
    async with acceptd.Client(str(server.make_url("")).rstrip("/"), API_KEY) as client:
        seen = [(event, state.status) async for event, state in client.events(job.id)]
    assert seen[-1] == ("status", "succeeded")
    assert len(last_event_ids) >= 2
    assert last_event_ids[0] is None
    assert all(found is not None for found in last_event_ids[1:])


async def test_schedules_through_the_client(api_url: str) -> None:
    async with acceptd.Client(api_url, API_KEY) as client:
        made = await client.create_schedule(
            "*/5 * * * *",
            "demo.echo",
            {"value": 1},
            timezone="Europe/Paris",
            metadata={"team": "ops"},
            overlap="skip",
        )
        assert made.id.startswith("sch_")
        assert (made.cron, made.timezone, made.overlap) == ("*/5 * * * *", "Europe/Paris", "skip")
        assert made.job.model_dump() == {
            "type": "demo.echo",
            "input": {"value": 1},
            "callback_url": None,
            "metadata": {"team": "ops"},
            "priority": "normal",
        }
        assert (await client.get_schedule(made.id)) == made
        paused = await client.pause_schedule(made.id)
        assert paused.paused
        assert paused.next_run_at is None
        job = await client.trigger_schedule(made.id)  # runs now, paused or not
        assert job.schedule_id == made.id
        assert job.input == {"value": 1}
        assert job.metadata == {"team": "ops"}
        assert [j.id for j in (await client.list(schedule=made.id)).items] == [job.id]
        assert [j.id async for j in client.iter_jobs(schedule=made.id)] == [job.id]
        resumed = await client.resume_schedule(made.id)
        assert not resumed.paused
        assert resumed.next_run_at is not None
        assert resumed.last_job_id == job.id
        changed = await client.update_schedule(
            made.id,
            cron="0 9 * * 1-5",
            job=acceptd.ScheduleJob(type="demo.echo", input={"value": 2}),
        )
        assert changed.cron == "0 9 * * 1-5"
        assert changed.job.input == {"value": 2}
        assert changed.timezone == "Europe/Paris"  # left as it was
        await client.delete_schedule(made.id)
        with pytest.raises(acceptd.NotFound):
            await client.get_schedule(made.id)
        # The jobs a schedule submitted outlive it.
        assert [j.id for j in (await client.list(schedule=made.id)).items] == [job.id]


async def test_schedule_pages_and_errors(api_url: str) -> None:
    async with acceptd.Client(api_url, API_KEY) as client:
        made = [
            await client.create_schedule("* * * * *", "demo.echo", {"value": i}) for i in range(3)
        ]
        page = await client.list_schedules(limit=2)
        assert [s.id for s in page.items] == [made[2].id, made[1].id]
        assert page.next_cursor is not None
        rest = await client.list_schedules(limit=2, cursor=page.next_cursor)
        assert [s.id for s in rest.items] == [made[0].id]
        assert rest.next_cursor is None
        assert [s.id async for s in client.iter_schedules(page_size=1)] == [
            s.id for s in reversed(made)
        ]
        with pytest.raises(acceptd.ValidationFailed) as invalid:
            await client.create_schedule("61 * * * *", "demo.echo", {"value": 1})
        assert [e["field"] for e in invalid.value.errors] == ["cron"]
        with pytest.raises(acceptd.ValidationFailed) as invalid:
            await client.update_schedule(made[0].id, timezone="Mars/Olympus")
        assert [e["field"] for e in invalid.value.errors] == ["timezone"]
        with pytest.raises(acceptd.NotFound):
            await client.trigger_schedule("sch_00000000000000000000000000")


async def test_schedules_through_the_sync_client(api_url: str) -> None:
    def script() -> tuple[acceptd.Schedule, acceptd.Job, list[str], list[str]]:
        with acceptd.SyncClient(api_url, API_KEY) as client:
            made = client.create_schedule("0 * * * *", "demo.echo", {"value": "sync"}, paused=True)
            job = client.trigger_schedule(made.id)
            listed = [s.id for s in client.iter_schedules()]
            jobs = [j.id for j in client.list(schedule=made.id).items]
            client.delete_schedule(made.id)
            return made, job, listed, jobs

    made, job, listed, jobs = await asyncio.to_thread(script)
    assert made.paused
    assert made.next_run_at is None
    assert job.schedule_id == made.id
    assert listed == [made.id]
    assert jobs == [job.id]


async def test_integration_options_through_both_clients(api_url: str) -> None:
    """Every option of issue #28 reaches the server from the SDK, and comes back."""
    async with acceptd.Client(api_url, API_KEY) as client:
        endpoint = await client.create_endpoint(
            "http://127.0.0.1:9/hook",
            headers={"X-Api-Key": "k"},
            retry_schedule=[1, 5],
            channels=["acme"],
            events=["job.succeeded", "delivery.exhausted"],
        )
        assert endpoint.headers == {"X-Api-Key": "***"}
        assert endpoint.retry_schedule == [1, 5]
        assert endpoint.channels == ["acme"]
        changed = await client.update_endpoint(
            endpoint.id, headers={}, retry_schedule=[], channels=["globex"]
        )
        assert (changed.headers, changed.retry_schedule, changed.channels) == ({}, None, ["globex"])
        job = await client.submit("demo.echo", {"value": 1}, channels=["acme"])
        assert job.channels == ["acme"]
        batch = await client.submit_batch(
            [{"type": "demo.echo", "input": {"value": 1}}], channels=["acme"]
        )
        assert batch.channels == ["acme"]
        link = await client.create_portal_link(scope="endpoints", channel="acme")
        session = await client.exchange_portal_link(link.url.partition("#token=")[2])
        assert session.channel == "acme"

    def through_the_sync_client() -> tuple[list[str] | None, list[str]]:
        with acceptd.SyncClient(api_url, API_KEY) as sync:
            made = sync.create_endpoint("http://127.0.0.1:9/s", channels=["beta"])
            return made.channels, sync.submit("demo.echo", {"value": 1}, channels=["beta"]).channels

    assert await asyncio.to_thread(through_the_sync_client) == (["beta"], ["beta"])

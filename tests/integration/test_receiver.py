"""The receiver helper: verifies, dedupes, answers fast, refuses forged, replayed and stale."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict
from standardwebhooks.webhooks import Webhook

from acceptd.webhooks.receiver import (
    WebhookEvent,
    WebhookReceiver,
    WebhookVerificationError,
    verify_event,
)
from acceptd.webhooks.signing import generate_secret
from tests.support.constants import SECRET
from tests.support.signing import sign_event
from tests.support.waiting import wait_until

EVENT = {
    "type": "job.succeeded",
    "timestamp": "2026-11-22T17:00:00.000Z",
    "data": {"id": "job_1", "status": "succeeded"},
}


@pytest.fixture
async def hooks(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> tuple[TestClient[Any, Any], list[WebhookEvent], list[str]]:
    got: list[WebhookEvent] = []
    refused: list[str] = []

    async def handler(event: WebhookEvent) -> None:
        await asyncio.sleep(0)  # a handler that awaits, as a real one does
        got.append(event)

    receiver = WebhookReceiver(
        SECRET, handler, on_rejected=lambda reason, _h: refused.append(reason)
    )
    return await aiohttp_client(receiver.app()), got, refused


async def test_verified_event_reaches_the_handler_once(hooks: Any) -> None:
    client, got, _ = hooks
    body, headers = sign_event(SECRET, EVENT, msg_id="msg_a")
    first = await client.post("/any/path", data=body, headers=headers)
    assert first.status == 200
    assert (await first.json()) == {"status": "handled"}  # acknowledged once handled
    again = await client.post("/any/path", data=body, headers=headers)  # a retry of the same event
    assert (await again.json()) == {"status": "duplicate"}

    async def handled() -> bool:
        return len(got) == 1

    await wait_until(handled)
    await asyncio.sleep(0.05)  # room for the retry to be handled too, which it must not be
    assert len(got) == 1
    assert got[0].id == "msg_a"
    assert got[0].type == "job.succeeded"
    assert got[0].job_id == "job_1"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, headers: (body, {**headers, "webhook-signature": "v1,AAAA"}),
        lambda body, headers: (body.replace(b"succeeded", b"failed"), headers),
        lambda body, headers: (
            body,
            {k: v for k, v in headers.items() if k != "webhook-timestamp"},
        ),
    ],
)
async def test_forged_webhooks_are_refused(hooks: Any, tamper: Callable[..., Any]) -> None:
    client, got, refused = hooks
    body, headers = tamper(*sign_event(SECRET, EVENT))
    response = await client.post("/", data=body, headers=headers)
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert got == []
    assert len(refused) == 1


async def test_a_handled_event_replayed_with_a_second_webhook_id_is_refused(hooks: Any) -> None:
    """The attacker replays a captured delivery within the tolerance, adding a fresh
    webhook-id before the signed one: the signature check would read one copy and the
    dedupe the other, so the handler would run the event twice. Repeated headers: 401."""
    client, got, refused = hooks
    body, headers = sign_event(SECRET, EVENT, msg_id="msg_a")
    assert (await client.post("/", data=body, headers=headers)).status == 200
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        doubled = CIMultiDict(headers)
        doubled.popall(name)
        fresh = {
            "webhook-id": "msg_fresh",
            "webhook-timestamp": headers["webhook-timestamp"],
            "webhook-signature": "v1,AAAA",
        }[name]
        doubled.add(name, fresh)
        doubled.add(name, headers[name])
        replayed = await client.post("/", data=body, headers=doubled)
        assert replayed.status == 401, name
        assert f"{name} header is repeated" in (await replayed.json())["detail"]
    assert len(got) == 1
    assert len(refused) == 3


async def test_replayed_old_webhook_is_refused(hooks: Any) -> None:
    client, got, _refused = hooks
    body, headers = sign_event(SECRET, EVENT, at=int(time.time()) - 600)  # captured 10 min ago
    response = await client.post("/", data=body, headers=headers)
    assert response.status == 401
    assert "too old" in (await response.json())["detail"]
    assert got == []


async def test_webhook_signed_with_another_secret_is_refused(hooks: Any) -> None:
    client, _got, _ = hooks
    body, headers = sign_event(generate_secret(), EVENT)
    assert (await client.post("/", data=body, headers=headers)).status == 401


async def test_a_failing_handler_gets_the_event_again(
    aiohttp_client: Callable[..., Awaitable[Any]],
) -> None:
    """By default the receiver acknowledges only what its handler handled: a handler that
    raises answers 500, the sender retries, and the retry runs the handler again."""
    calls: list[str] = []

    def flaky(event: WebhookEvent) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise RuntimeError("user code bug")

    client = await aiohttp_client(WebhookReceiver(SECRET, flaky).app())
    body, headers = sign_event(SECRET, EVENT, msg_id="msg_retry")
    failed = await client.post("/", data=body, headers=headers)
    assert failed.status == 500
    assert failed.content_type == "application/problem+json"
    retried = await client.post("/", data=body, headers=headers)
    assert (retried.status, await retried.json()) == (200, {"status": "handled"})
    duplicate = await client.post("/", data=body, headers=headers)
    assert await duplicate.json() == {"status": "duplicate"}
    assert calls == ["msg_retry", "msg_retry"]


async def test_early_acknowledgement_is_an_explicit_choice(
    aiohttp_client: Callable[..., Awaitable[Any]],
) -> None:
    """ack="on_receipt": 2xx at once, the handler in the background; its failure is the
    receiver's to deal with."""

    def broken(event: WebhookEvent) -> None:
        raise RuntimeError("user code bug")

    client = await aiohttp_client(WebhookReceiver(SECRET, broken, ack="on_receipt").app())
    body, headers = sign_event(SECRET, EVENT)
    answer = await client.post("/", data=body, headers=headers)
    assert (answer.status, await answer.json()) == (200, {"status": "received"})


def test_verify_event_agrees_with_the_official_library() -> None:
    body, headers = sign_event(SECRET, EVENT)
    assert Webhook(SECRET).verify(body, headers) == EVENT
    assert verify_event(SECRET, headers, body).data == EVENT["data"]
    assert verify_event([generate_secret(), SECRET], headers, body).type == "job.succeeded"
    other_body, other_headers = sign_event(SECRET, {"test": 1})
    with pytest.raises(WebhookVerificationError, match="not an acceptd event"):
        verify_event(SECRET, other_headers, other_body)


async def test_receiver_gets_real_deliveries(api_url: str, worker: None, dispatcher: Any) -> None:
    from acceptd.client import Client
    from tests.support.constants import API_KEY

    receiver = WebhookReceiver(SECRET)
    url = await receiver.start()
    try:
        async with Client(api_url, API_KEY) as client:
            job = await client.submit("demo.echo", {"value": "real"}, callback_url=url)
        event = await asyncio.wait_for(receiver.wait_for_job(job.id), 20)
        assert event.type == "job.succeeded"
        assert event.data["result"] == {"value": "real"}
        assert await receiver.wait_for_job(job.id) is event  # remembered for late waiters
    finally:
        await receiver.stop()

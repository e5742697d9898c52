"""Endpoint options for integrations (issue #28; API.md, "Endpoint options for
integrations"): static headers, sealed and never shown back, sent with every webhook, test
event and retry; a retry schedule of the endpoint's own."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import pytest

from acceptd.core.settings import Settings
from acceptd.store import keys
from acceptd.store.connection import open_shards
from acceptd.webhooks.receiver import verify_event
from tests.support.http import call, portal_session
from tests.support.proxy import Tinyproxy
from tests.support.receiver import Answer, Received, Receiver
from tests.support.waiting import wait_until

SECRET_VALUE = "k-very-secret-123"


async def test_headers_are_sent_with_every_webhook_and_never_shown(
    api_url: str,
    worker: None,
    dispatcher: Any,
    receiver: tuple[Receiver, str],
    http: aiohttp.ClientSession,
    settings: Settings,
) -> None:
    recording, url = receiver
    with_headers = {
        "url": url,
        "headers": {"X-Api-Key": SECRET_VALUE, "Authorization": "Bearer r-1"},
    }
    endpoint = await call(http, "POST", f"{api_url}/v1/endpoints", with_headers)
    assert endpoint["headers"] == {"X-Api-Key": "***", "Authorization": "***"}
    read = await call(http, "GET", f"{api_url}/v1/endpoints/{endpoint['id']}")
    assert read["headers"] == {"X-Api-Key": "***", "Authorization": "***"}
    listed = await call(http, "GET", f"{api_url}/v1/endpoints")
    assert SECRET_VALUE not in str(listed)
    shards = await open_shards(settings)  # the store's clients: one server or a cluster
    try:  # sealed at rest: a dump, a replica or a backup does not hand it out
        stored = await shards.control.hgetall(keys.endpoint(endpoint["id"]))  # type: ignore[misc]
    finally:
        await shards.aclose()
    assert SECRET_VALUE not in str(stored)

    job = await call(
        http, "POST", f"{api_url}/v1/jobs", {"type": "demo.echo", "input": {"value": 1}}
    )
    [webhook] = await recording.webhooks_about(job["id"])
    assert webhook.headers["X-Api-Key"] == SECRET_VALUE
    assert webhook.headers["Authorization"] == "Bearer r-1"
    assert webhook.headers["webhook-id"].startswith("msg_")  # the protocol's own still there

    test = await call(http, "POST", f"{api_url}/v1/endpoints/{endpoint['id']}/test")

    async def test_arrived() -> list[Received]:
        return [r for r in recording.received if r.headers.get("webhook-id") == test["webhook_id"]]

    [tested] = await wait_until(test_arrived, timeout=20)
    assert tested.headers["X-Api-Key"] == SECRET_VALUE

    # PATCH replaces the whole set; {} removes them.
    changed = await call(
        http, "PATCH", f"{api_url}/v1/endpoints/{endpoint['id']}", {"headers": {"X-Other": "2"}}
    )
    assert changed["headers"] == {"X-Other": "***"}
    job = await call(
        http, "POST", f"{api_url}/v1/jobs", {"type": "demo.echo", "input": {"value": 1}}
    )
    [webhook] = await recording.webhooks_about(job["id"])
    assert webhook.headers["X-Other"] == "2"
    assert "X-Api-Key" not in webhook.headers
    cleared = await call(http, "PATCH", f"{api_url}/v1/endpoints/{endpoint['id']}", {"headers": {}})
    assert cleared["headers"] == {}


async def test_a_retried_attempt_carries_the_headers_too(
    api_url: str,
    worker: None,
    dispatcher: Any,
    receiver: tuple[Receiver, str],
    http: aiohttp.ClientSession,
) -> None:
    recording, url = receiver
    recording.then(Answer(status=503))
    await call(http, "POST", f"{api_url}/v1/endpoints", {"url": url, "headers": {"X-K": "v"}})
    job = await call(
        http, "POST", f"{api_url}/v1/jobs", {"type": "demo.echo", "input": {"value": 1}}
    )
    first, second = await recording.webhooks_about(job["id"], 2)
    assert first.headers["X-K"] == second.headers["X-K"] == "v"


@pytest.mark.parametrize(
    "headers",
    [
        {"webhook-id": "x"},
        {"Webhook-Signature": "x"},
        {"Content-Type": "text/plain"},
        {"Content-Length": "1"},
        {"Host": "example.com"},
        {"traceparent": "00-x"},
        {"Transfer-Encoding": "chunked"},
        {"Connection": "close"},
        {"Proxy-Authorization": "Basic x"},
        {"Upgrade": "h2c"},
        {"bad name": "x"},
        {"X-Ok": "line\r\nInjected: 1"},
        {"X-Ok": "x" * 5000},
        {f"X-{i}": "v" for i in range(21)},
    ],
)
async def test_reserved_or_malformed_headers_are_a_422_naming_headers(
    api_url: str, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    async with http.post(
        f"{api_url}/v1/endpoints", json={"url": "https://example.com/h", "headers": headers}
    ) as response:
        problem = await response.json()
        assert response.status == 422, problem
    assert [e["pointer"] for e in problem["errors"]] == ["#/headers"]
    assert "x" * 5000 not in str(problem)  # the value is not echoed back


async def test_an_endpoints_own_retry_schedule_gives_its_attempts(
    api_url: str,
    worker: None,
    dispatcher: Any,
    receiver: tuple[Receiver, str],
    http: aiohttp.ClientSession,
) -> None:
    """[0.2, 0.2]: the first attempt and two retries, then the delivery fails; the global
    schedule of the tests (three retries) is not used."""
    recording, url = receiver
    recording.default = Answer(status=500)
    endpoint = await call(
        http, "POST", f"{api_url}/v1/endpoints", {"url": url, "retry_schedule": [0.2, 0.2]}
    )
    assert endpoint["retry_schedule"] == [0.2, 0.2]
    job = await call(
        http, "POST", f"{api_url}/v1/jobs", {"type": "demo.echo", "input": {"value": 1}}
    )
    await recording.webhooks_about(job["id"], 3)

    async def failed() -> dict[str, Any] | None:
        found = await call(http, "GET", f"{api_url}/v1/jobs/{job['id']}/deliveries")
        ours = [d for d in found["items"] if d["endpoint_id"] == endpoint["id"]]
        return ours[0] if ours and ours[0]["status"] == "failed" else None

    delivery = await wait_until(failed, timeout=20)
    assert len(delivery["attempts"]) == 3
    assert len(recording.about(job["id"])) == 3
    back = await call(
        http, "PATCH", f"{api_url}/v1/endpoints/{endpoint['id']}", {"retry_schedule": []}
    )
    assert back["retry_schedule"] is None


@pytest.mark.parametrize("schedule", [[-1], [86401], [1] * 21, ["NaN"], [1e309], "1,2"])
async def test_a_bad_retry_schedule_is_a_422(
    api_url: str, http: aiohttp.ClientSession, schedule: Any
) -> None:
    async with http.post(
        f"{api_url}/v1/endpoints",
        json={"url": "https://example.com/h", "retry_schedule": schedule},
    ) as response:
        problem = await response.json()
        assert response.status in (400, 422), problem


@pytest.fixture
async def failing(aiohttp_server: Any) -> tuple[Receiver, str]:
    """A second receiver on loopback, failing every request unless told otherwise."""
    recording = Receiver()
    recording.default = Answer(status=500)
    server = await aiohttp_server(recording.app)
    return recording, str(server.make_url("/failing"))


async def test_delivery_exhausted_reaches_the_operations_endpoint_not_the_failing_one(
    api_url: str,
    worker: None,
    dispatcher: Any,
    receiver: tuple[Receiver, str],
    failing: tuple[Receiver, str],
    http: aiohttp.ClientSession,
) -> None:
    """A per-endpoint schedule of [0.2, 0.2]: three attempts, then `delivery.exhausted`,
    signed with the operations endpoint's secret, carrying the delivery and its attempts.
    The failing endpoint subscribes to it too, and is not sent its own (no loop)."""
    ops, ops_url = receiver
    bad, bad_url = failing
    operational = {"url": ops_url, "events": ["delivery.exhausted", "endpoint.disabled"]}
    operations = await call(http, "POST", f"{api_url}/v1/endpoints", operational)
    events = ["job.succeeded", "delivery.exhausted"]
    failing_fast = {"url": bad_url, "events": events, "retry_schedule": [0.2, 0.2]}
    broken = await call(http, "POST", f"{api_url}/v1/endpoints", failing_fast)
    job = await call(
        http, "POST", f"{api_url}/v1/jobs", {"type": "demo.echo", "input": {"value": 1}}
    )
    [exhausted] = await wait_until(ops.arrived("delivery.exhausted"), timeout=20)
    verify_event(operations["secret"], exhausted.headers, exhausted.body)
    data = exhausted.json["data"]
    assert data["endpoint_id"] == broken["id"]
    assert data["event"] == "job.succeeded"
    assert data["status"] == "failed"
    assert [a["status_code"] for a in data["attempts"]] == [500, 500, 500]
    assert len([r for r in bad.received if r.event == "job.succeeded"]) == 3
    assert bad.events("delivery.exhausted") == []
    found = await call(http, "GET", f"{api_url}/v1/jobs/{job['id']}/deliveries")
    assert data["id"] in {d["id"] for d in found["items"]}


async def test_endpoint_disabled_then_enabled_by_a_recovery(
    api_url: str,
    worker: None,
    dispatcher: Any,
    receiver: tuple[Receiver, str],
    failing: tuple[Receiver, str],
    http: aiohttp.ClientSession,
) -> None:
    ops, ops_url = receiver
    bad, bad_url = failing
    bad.default = Answer(status=410)
    operational = {"url": ops_url, "events": ["endpoint.disabled", "endpoint.enabled"]}
    await call(http, "POST", f"{api_url}/v1/endpoints", operational)
    gone = await call(http, "POST", f"{api_url}/v1/endpoints", {"url": bad_url})
    await call(http, "POST", f"{api_url}/v1/jobs", {"type": "demo.echo", "input": {"value": 1}})
    [disabled] = await wait_until(ops.arrived("endpoint.disabled"), timeout=20)
    assert disabled.json["data"]["id"] == gone["id"]
    assert disabled.json["data"]["disabled"] is True
    assert "410" in disabled.json["data"]["disabled_reason"]
    bad.default = Answer(status=200)
    since = "2020-01-01T00:00:00Z"
    await call(http, "POST", f"{api_url}/v1/endpoints/{gone['id']}/recover", {"since": since})
    [enabled] = await wait_until(ops.arrived("endpoint.enabled"), timeout=20)
    assert enabled.json["data"]["id"] == gone["id"]
    assert enabled.json["data"]["disabled"] is False
    assert len(ops.events("endpoint.disabled")) == 1


async def test_a_portal_session_cannot_subscribe_to_operational_events(
    api_url: str, http: aiohttp.ClientSession
) -> None:
    session = await portal_session(http, api_url, scope="endpoints")
    for event in ("delivery.exhausted", "endpoint.disabled", "endpoint.enabled"):
        async with http.post(
            f"{api_url}/v1/endpoints",
            json={"url": "https://example.com/h", "events": [event]},
            headers={"Authorization": f"Bearer {session}"},
        ) as response:
            assert response.status == 422, event


# ---- the egress proxy (ACCEPTD_WEBHOOK_PROXY_URL) ---------------------------------------


async def test_every_webhook_leaves_through_the_proxy(
    api_url: str,
    worker: None,
    proxied_dispatcher: Any,
    tinyproxy: Tinyproxy,
    receiver: tuple[Receiver, str],
    http: aiohttp.ClientSession,
) -> None:
    """A callback URL and an endpoint: both through tinyproxy (its Via header on each),
    authenticated with the credentials of the proxy's URL, signed as ever."""
    recording, url = receiver
    endpoint = await call(http, "POST", f"{api_url}/v1/endpoints", {"url": url})
    echo = {
        "type": "demo.echo",
        "input": {"value": 1},
        "callback_url": url.replace("/hook", "/callback"),
    }
    job = await call(http, "POST", f"{api_url}/v1/jobs", echo)
    both = await recording.webhooks_about(job["id"], 2)
    for webhook in both:
        assert "tinyproxy" in webhook.headers.get("Via", ""), webhook.headers
        # The proxy's credentials went to the proxy, not on to the receiver.
        assert "Proxy-Authorization" not in webhook.headers
    assert sorted(r.path for r in both) == ["/callback", "/hook"]
    [to_endpoint] = [r for r in both if r.path == "/hook"]
    verify_event(endpoint["secret"], to_endpoint.headers, to_endpoint.body)


async def test_https_receivers_are_reached_through_a_connect_tunnel(
    api_url: str,
    proxied_dispatcher: Any,
    tinyproxy: Tinyproxy,
    http: aiohttp.ClientSession,
) -> None:
    """An https receiver (a TLS listener whose certificate no one trusts): the proxy is
    asked to CONNECT to its checked address, and TLS fails beyond it, at the receiver."""
    with socket.socket() as tls:
        tls.bind(("127.0.0.1", 0))
        tls.listen()
        port = tls.getsockname()[1]
        endpoint = await call(
            http, "POST", f"{api_url}/v1/endpoints", {"url": f"https://127.0.0.1:{port}/hook"}
        )
        await call(http, "POST", f"{api_url}/v1/endpoints/{endpoint['id']}/test")

        async def asked() -> bool:
            return f"CONNECT 127.0.0.1:{port}" in tinyproxy.log()

        await wait_until(asked, timeout=20)


async def test_a_stopped_proxy_costs_the_endpoint_nothing(
    api_url: str,
    worker: None,
    proxied_dispatcher: Any,
    tinyproxy: Tinyproxy,
    receiver: tuple[Receiver, str],
    http: aiohttp.ClientSession,
) -> None:
    """While the proxy is down no attempt is made or counted and the endpoint is not
    failing; once it is back, the webhook goes at its first counted attempt."""
    recording, url = receiver
    endpoint = await call(http, "POST", f"{api_url}/v1/endpoints", {"url": url})
    tinyproxy.stop()
    echo = {"type": "demo.echo", "input": {"value": 1}}
    job = await call(http, "POST", f"{api_url}/v1/jobs", echo)

    async def pending() -> dict[str, Any] | None:
        found = await call(http, "GET", f"{api_url}/v1/jobs/{job['id']}/deliveries")
        return found["items"][0] if found["items"] else None

    delivery = await wait_until(pending, timeout=20)
    await asyncio.sleep(3)  # attempts the stopped proxy failed, had they been counted
    delivery = await pending()
    assert delivery is not None
    assert delivery["status"] == "pending"
    assert delivery["attempts"] == []
    read = await call(http, "GET", f"{api_url}/v1/endpoints/{endpoint['id']}")
    assert read["failing_since"] is None
    assert read["disabled"] is False
    tinyproxy.start()
    [webhook] = await recording.webhooks_about(job["id"])
    assert "tinyproxy" in webhook.headers["Via"]

    async def succeeded() -> dict[str, Any] | None:
        found = await pending()
        return found if found and found["status"] == "succeeded" else None

    done = await wait_until(succeeded, timeout=20)
    assert len(done["attempts"]) == 1


# ---- channels, and a portal of one channel ---------------------------------------------


async def test_events_go_to_the_endpoints_of_their_channels(
    api_url: str,
    worker: None,
    dispatcher: Any,
    receiver: tuple[Receiver, str],
    http: aiohttp.ClientSession,
) -> None:
    """acme's endpoint gets acme's jobs, globex's gets globex's (a batch's items take the
    batch's channels unless they name their own), an endpoint without channels gets all."""
    recording, url = receiver
    events = ["job.succeeded", "batch.completed"]
    acme_only = {"url": url.replace("/hook", "/acme"), "channels": ["acme"]}
    acme = await call(http, "POST", f"{api_url}/v1/endpoints", acme_only)
    globex_only = {"url": url.replace("/hook", "/globex"), "channels": ["globex"], "events": events}
    globex = await call(http, "POST", f"{api_url}/v1/endpoints", globex_only)
    every_channel = {"url": url.replace("/hook", "/all"), "events": events}
    await call(http, "POST", f"{api_url}/v1/endpoints", every_channel)
    assert acme["channels"] == ["acme"]
    assert globex["channels"] == ["globex"]
    echo = {"type": "demo.echo", "input": {"value": 1}}
    for_acme = await call(http, "POST", f"{api_url}/v1/jobs", {**echo, "channels": ["acme"]})
    assert for_acme["channels"] == ["acme"]
    for_nobody = await call(http, "POST", f"{api_url}/v1/jobs", echo)
    assert for_nobody["channels"] == []
    items_of_both = {"channels": ["globex"], "items": [echo, {**echo, "channels": ["acme"]}]}
    batch = await call(http, "POST", f"{api_url}/v1/batches", items_of_both)
    assert batch["channels"] == ["globex"]
    items = await call(http, "GET", f"{api_url}/v1/jobs?batch={batch['id']}")
    by_channels = sorted(tuple(job["channels"]) for job in items["items"])
    assert by_channels == [("acme",), ("globex",)]
    item_for_acme = next(j["id"] for j in items["items"] if j["channels"] == ["acme"])
    item_for_globex = next(j["id"] for j in items["items"] if j["channels"] == ["globex"])

    async def everything_arrived() -> bool:
        subjects = {(r.path, r.json["data"].get("id")) for r in recording.received}
        return ("/all", batch["id"]) in subjects and ("/globex", batch["id"]) in subjects

    await wait_until(everything_arrived, timeout=30)
    await asyncio.sleep(0.5)  # room for a webhook that should not come
    got: dict[str, set[str]] = {}
    for webhook in recording.received:
        got.setdefault(webhook.path, set()).add(webhook.json["data"]["id"])
    assert got["/acme"] == {for_acme["id"], item_for_acme}
    assert got["/globex"] == {item_for_globex, batch["id"]}
    assert got["/all"] == {
        for_acme["id"],
        for_nobody["id"],
        item_for_acme,
        item_for_globex,
        batch["id"],
    }


async def test_a_channel_portal_sees_and_manages_only_its_channels_endpoints(
    api_url: str,
    worker: None,
    dispatcher: Any,
    receiver: tuple[Receiver, str],
    http: aiohttp.ClientSession,
) -> None:
    _, url = receiver
    acme_only = {"url": url, "channels": ["acme"], "events": ["job.succeeded"], "payload": "thin"}
    theirs = await call(http, "POST", f"{api_url}/v1/endpoints", acme_only)
    # acme's too, but sending job data: the session reads it, and cannot redirect it.
    acme_full = {"url": url + "?full", "channels": ["acme"]}
    full = await call(http, "POST", f"{api_url}/v1/endpoints", acme_full)
    globex_only = {"url": url + "?globex", "channels": ["globex"]}
    other = await call(http, "POST", f"{api_url}/v1/endpoints", globex_only)
    both_channels = {"url": url + "?both", "channels": ["acme", "globex"]}
    shared = await call(http, "POST", f"{api_url}/v1/endpoints", both_channels)
    everything = await call(http, "POST", f"{api_url}/v1/endpoints", {"url": url + "?all"})
    session = await portal_session(http, api_url, scope="endpoints", channel="acme")
    acme = {"Authorization": f"Bearer {session}"}

    async def as_acme(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with http.request(method, f"{api_url}{path}", json=body, headers=acme) as answer:
            return answer.status, await answer.json() if answer.status != 204 else None

    status, listed = await as_acme("GET", "/v1/endpoints")
    assert status == 200
    assert {e["id"] for e in listed["items"]} == {theirs["id"], full["id"]}  # the API key's
    assert (await as_acme("GET", f"/v1/endpoints/{full['id']}"))[0] == 200
    for method, path, body in (
        ("PATCH", f"/v1/endpoints/{full['id']}", {"url": "https://attacker.example/steal"}),
        ("POST", f"/v1/endpoints/{full['id']}/rotate-secret", None),
        ("DELETE", f"/v1/endpoints/{full['id']}", None),
    ):
        status, problem = await as_acme(method, path, body)
        assert status == 403, (method, path, problem)
    for endpoint in (other, shared, everything):
        for method, path, body in (
            ("GET", f"/v1/endpoints/{endpoint['id']}", None),
            ("PATCH", f"/v1/endpoints/{endpoint['id']}", {"description": "x"}),
            ("DELETE", f"/v1/endpoints/{endpoint['id']}", None),
            ("GET", f"/v1/endpoints/{endpoint['id']}/deliveries", None),
            ("POST", f"/v1/endpoints/{endpoint['id']}/test", None),
        ):
            status, _ = await as_acme(method, path, body)
            assert status in (403, 404), (endpoint["channels"], method, path, status)
    # What it makes is acme's, and it may name no other channel.
    status, made = await as_acme("POST", "/v1/endpoints", {"url": url + "?new"})
    assert status == 201
    assert made["channels"] == ["acme"]
    assert made["payload"] == "thin"
    status, refused = await as_acme("POST", "/v1/endpoints", {"url": url, "channels": ["globex"]})
    assert status == 422
    status, _ = await as_acme("PATCH", f"/v1/endpoints/{theirs['id']}", {"channels": ["globex"]})
    assert status == 422
    # Its endpoint's deliveries: acme's jobs only reach it.
    echo = {"type": "demo.echo", "input": {"value": 1}}
    job = await call(http, "POST", f"{api_url}/v1/jobs", {**echo, "channels": ["acme"]})

    async def delivered() -> list[Any]:
        _, page = await as_acme("GET", f"/v1/endpoints/{theirs['id']}/deliveries")
        return [d for d in page["items"] if d["status"] == "succeeded"]

    [delivery] = await wait_until(delivered, timeout=20)
    status, _ = await as_acme("GET", f"/v1/deliveries/{delivery['id']}")
    assert status == 200
    assert job["id"] not in str(refused)


async def test_a_channel_is_for_an_endpoints_portal_link_only(
    api_url: str, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{api_url}/v1/portal-links", json={"scope": "tenant", "channel": "acme"}
    ) as response:
        assert response.status == 422
    for bad in ("a b", "", "x" * 129, "acme\n"):
        async with http.post(
            f"{api_url}/v1/portal-links", json={"scope": "endpoints", "channel": bad}
        ) as response:
            assert response.status == 422, bad
    async with http.post(
        f"{api_url}/v1/jobs",
        json={"type": "demo.echo", "input": {"value": 1}, "channels": [f"c{i}" for i in range(11)]},
    ) as response:
        assert response.status == 422

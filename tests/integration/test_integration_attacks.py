"""Attacks on the endpoint options of issue #28 (its security review): static headers,
per-endpoint retry schedules, operational events and the egress proxy. Each test is one
attempt; those that found something (a header value ending in a newline wedged its
delivery; a receiver answering 407 through the proxy made its failures uncounted) hold the
fix now."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from acceptd.core.settings import Settings
from tests.support.http import call, portal_session
from tests.support.proxy import Tinyproxy
from tests.support.receiver import Answer, Receiver
from tests.support.roles import running_dispatcher
from tests.support.waiting import wait_until

ECHO = {"type": "demo.echo", "input": {"value": 1}}


@pytest.fixture
async def strict_proxied_dispatcher(
    make_settings: Callable[..., Settings], tinyproxy: Tinyproxy
) -> AsyncIterator[Any]:
    """Through the proxy, with a policy that allows no private address (only an unrelated
    CIDR): the send-time check is all that stands between a URL and loopback."""
    settings = make_settings(
        allow_private_callbacks=False,
        callback_allow_cidrs=["10.99.0.0/16"],
        webhook_proxy_url=tinyproxy.url,
    )
    async with running_dispatcher(settings) as runtime:
        yield runtime


class RawReceiver:
    """Keeps every header line as sent (duplicates included)."""

    def __init__(self) -> None:
        self.requests: list[list[tuple[str, str]]] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.requests.append(_decoded(request))
        return web.Response(text="ok")


def _decoded(request: web.Request) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]


@pytest.fixture
async def raw_receiver(aiohttp_server: Any) -> tuple[RawReceiver, str]:
    recording = RawReceiver()
    server = await aiohttp_server(recording.app)
    return recording, str(server.make_url("/raw"))


async def _endpoint_deliveries(
    http: aiohttp.ClientSession, api_url: str, endpoint_id: str
) -> list[dict[str, Any]]:
    found = await call(http, "GET", f"{api_url}/v1/endpoints/{endpoint_id}/deliveries")
    return list(found["items"])


# ---- header injection ------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Ok": "value\n"},  # re's `$` matches before a final newline
        {"X-Ok\n": "value"},
        {"X-Ok": "caf\u00e9"},
        {"X-\u00c4": "v"},
        {"PROXY-AUTHORIZATION": "Basic eDp5"},
        {"Webhook-ID": "x"},
        {"HOST": "evil.example"},
        {"X-Ok": "x" * 4097},
    ],
)
async def test_smuggling_header_names_and_values_are_a_422(
    api_url: str, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    """On a loopback URL the API accepts (so the 422 is about the headers, not the URL)."""
    async with http.post(
        f"{api_url}/v1/endpoints", json={"url": "http://127.0.0.1:9/h", "headers": headers}
    ) as response:
        problem = await response.json(content_type=None)
        assert response.status == 422, problem
        assert response.content_type == "application/problem+json"
    assert [e["pointer"] for e in problem["errors"]] == ["#/headers"], problem


async def test_a_trailing_newline_value_never_reaches_the_wire_or_wedges_the_delivery(
    api_url: str,
    dispatcher: Any,
    raw_receiver: tuple[RawReceiver, str],
    http: aiohttp.ClientSession,
) -> None:
    """If the API lets `value\\n` through: on the wire it would end the header block early
    (`X-Ok: value\\n\\r\\n`) before the signature headers, for a lenient parser; aiohttp
    refuses to write it, with a ValueError send() does not catch."""
    recording, url = raw_receiver
    async with http.post(
        f"{api_url}/v1/endpoints", json={"url": url, "headers": {"X-Ok": "value\n"}}
    ) as response:
        if response.status == 422:
            return  # refused at the API: nothing to smuggle
        endpoint = await response.json()
    await call(http, "POST", f"{api_url}/v1/endpoints/{endpoint['id']}/test")

    async def attempted() -> list[dict[str, Any]]:
        items = await _endpoint_deliveries(http, api_url, endpoint["id"])
        return [d for d in items if d["attempts"]]

    try:
        found = await wait_until(attempted, timeout=8)
    except (AssertionError, TimeoutError) as exc:
        items = await _endpoint_deliveries(http, api_url, endpoint["id"])
        raise AssertionError(f"the delivery never got an attempt recorded: {items}") from exc
    assert recording.requests == [], "a header with a newline reached the receiver"
    assert found[0]["attempts"][0]["error"]


async def test_case_variants_cannot_duplicate_or_override_protocol_headers(
    api_url: str,
    dispatcher: Any,
    raw_receiver: tuple[RawReceiver, str],
    http: aiohttp.ClientSession,
) -> None:
    """`user-agent` is not reserved; lower case, it sits next to acceptd's `User-Agent` in
    the plain dict send() builds, and aiohttp adds both."""
    recording, url = raw_receiver
    impostor = {"url": url, "headers": {"user-agent": "evil/1", "via": "1.1 evil"}}
    endpoint = await call(http, "POST", f"{api_url}/v1/endpoints", impostor)
    await call(http, "POST", f"{api_url}/v1/endpoints/{endpoint['id']}/test")

    async def arrived() -> list[list[tuple[str, str]]]:
        return recording.requests

    [sent] = await wait_until(arrived, timeout=15)
    agents = [v for k, v in sent if k.lower() == "user-agent"]
    assert agents == ["acceptd-webhooks/1"], sent


async def test_header_values_never_come_back_through_any_route(
    api_url: str,
    worker: None,
    dispatcher: Any,
    receiver: tuple[Receiver, str],
    http: aiohttp.ClientSession,
) -> None:
    recording, url = receiver
    secret = "hv-top-secret-987"
    recording.default = Answer(status=500, body="nope")
    ops_url = url.replace("/hook", "/ops")
    events = ["delivery.exhausted", "endpoint.disabled"]
    operational = {"url": ops_url, "events": events, "headers": {"X-Ops": secret + "-ops"}}
    ops = await call(http, "POST", f"{api_url}/v1/endpoints", operational)
    keyed = {"url": url, "headers": {"X-Key": secret}, "retry_schedule": [0.1]}
    endpoint = await call(http, "POST", f"{api_url}/v1/endpoints", keyed)
    job = await call(http, "POST", f"{api_url}/v1/jobs", ECHO)

    async def exhausted() -> list[Any]:
        return [r for r in recording.received if r.path == "/ops"]

    got = await wait_until(exhausted, timeout=20)
    for r in got:  # the operational event carries nothing of the other endpoint's headers
        assert secret not in r.body.decode()
    reads = [
        f"/v1/endpoints/{endpoint['id']}",
        "/v1/endpoints",
        f"/v1/endpoints/{endpoint['id']}/deliveries",
        f"/v1/jobs/{job['id']}/deliveries",
        f"/v1/endpoints/{ops['id']}/deliveries",
        f"/v1/endpoints/{endpoint['id']}/stats",
        f"/v1/jobs/{job['id']}",
    ]
    for path in reads:
        async with http.get(f"{api_url}{path}") as response:
            assert secret not in await response.text(), path


# ---- retry schedules ---------------------------------------------------------------------


async def test_twenty_zero_second_steps_make_exactly_21_attempts_then_stop(
    api_url: str,
    worker: None,
    dispatcher: Any,
    receiver: tuple[Receiver, str],
    http: aiohttp.ClientSession,
) -> None:
    recording, url = receiver
    recording.default = Answer(status=500)
    endpoint = await call(
        http, "POST", f"{api_url}/v1/endpoints", {"url": url, "retry_schedule": [0] * 20}
    )
    await call(http, "POST", f"{api_url}/v1/jobs", ECHO)

    async def failed() -> list[dict[str, Any]]:
        items = await _endpoint_deliveries(http, api_url, endpoint["id"])
        return [d for d in items if d["status"] == "failed"]

    await wait_until(failed, timeout=20)
    await asyncio.sleep(0.5)  # room for a 22nd attempt, which must not come
    assert len(recording.received) == 21


# ---- operational events -------------------------------------------------------------------


async def test_two_failing_operations_endpoints_do_not_feed_each_other(
    api_url: str,
    worker: None,
    dispatcher: Any,
    receiver: tuple[Receiver, str],
    http: aiohttp.ClientSession,
) -> None:
    """A and B both subscribe to every operational event and both always fail: A's
    exhausted job delivery goes to B, B's failure to deliver it must not come back to A,
    and so on."""
    recording, url = receiver
    recording.default = Answer(status=500)
    events = ["job.succeeded", "delivery.exhausted", "endpoint.disabled", "endpoint.enabled"]
    for name in ("a", "b"):
        body = {"url": url.replace("/hook", f"/{name}"), "events": events, "retry_schedule": [0.05]}
        await call(http, "POST", f"{api_url}/v1/endpoints", body)
    await call(http, "POST", f"{api_url}/v1/jobs", ECHO)

    # Each: 2 attempts of the job event + 2 of the other's delivery.exhausted.
    await wait_until(recording.got(8), timeout=20)
    settled = len(recording.received)
    await asyncio.sleep(3)  # room for an event of a loop, which must not come
    assert len(recording.received) == settled, "operational events keep flowing"
    assert settled <= 8, [(r.path, r.event) for r in recording.received]


async def test_a_portal_session_cannot_patch_its_endpoint_onto_operational_events(
    api_url: str, http: aiohttp.ClientSession
) -> None:
    session = await portal_session(http, api_url, scope="endpoints")
    bearer = {"Authorization": f"Bearer {session}"}
    async with http.post(
        f"{api_url}/v1/endpoints", json={"url": "http://127.0.0.1:9/h"}, headers=bearer
    ) as response:
        own = await response.json()
        assert response.status == 201, own
    for event in ("delivery.exhausted", "endpoint.disabled", "endpoint.enabled"):
        async with http.patch(
            f"{api_url}/v1/endpoints/{own['id']}",
            json={"events": ["job.succeeded", event]},
            headers=bearer,
        ) as response:
            assert response.status == 422, (event, await response.text())
    operational = {"url": "http://127.0.0.1:9/ops", "events": ["delivery.exhausted"]}
    tenants = await call(http, "POST", f"{api_url}/v1/endpoints", operational)
    async with http.get(
        f"{api_url}/v1/endpoints/{tenants['id']}/deliveries", headers=bearer
    ) as response:
        assert response.status in (403, 404)


# ---- the egress proxy ---------------------------------------------------------------------


async def test_a_receiver_answering_407_cannot_make_its_failures_uncounted(
    api_url: str,
    proxied_dispatcher: Any,
    receiver: tuple[Receiver, str],
    http: aiohttp.ClientSession,
) -> None:
    """send() takes any 407 seen through the proxy for the proxy refusing our credentials,
    but for an http receiver the proxy relays the receiver's own status (and for https the
    tunnel is past the proxy): a receiver that answers 407 is retried every 5 s forever,
    never recorded, never exhausted, never disabled."""
    recording, url = receiver
    recording.default = Answer(status=407, headers={"Proxy-Authenticate": 'Basic realm="x"'})
    endpoint = await call(
        http, "POST", f"{api_url}/v1/endpoints", {"url": url, "retry_schedule": [0.1]}
    )
    await call(http, "POST", f"{api_url}/v1/endpoints/{endpoint['id']}/test")

    await wait_until(recording.got(2), timeout=15)
    items = await _endpoint_deliveries(http, api_url, endpoint["id"])
    assert items
    assert items[0]["attempts"], (
        f"the receiver was sent {len(recording.received)} requests, none recorded: {items}"
    )


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[64:ff9b::7f00:1]",
        "[::127.0.0.1]",
        "[2002:7f00:1::]",
    ],
)
async def test_the_proxy_is_no_way_around_the_address_checks(
    api_url: str,
    strict_proxied_dispatcher: Any,
    tinyproxy: Tinyproxy,
    receiver: tuple[Receiver, str],
    http: aiohttp.ClientSession,
    host: str,
) -> None:
    recording, url = receiver
    port = url.split(":")[-1].split("/")[0]
    target = f"http://{host}:{port}/hook"
    endpoint = await call(http, "POST", f"{api_url}/v1/endpoints", {"url": target})
    await call(http, "POST", f"{api_url}/v1/endpoints/{endpoint['id']}/test")

    async def attempted() -> list[dict[str, Any]]:
        items = await _endpoint_deliveries(http, api_url, endpoint["id"])
        return [d for d in items if d["attempts"]]

    [delivery] = await wait_until(attempted, timeout=15)
    assert delivery["attempts"][0]["error"].startswith("refused"), delivery
    assert recording.received == []
    assert f":{port}" not in tinyproxy.log()


@pytest.mark.parametrize("which", ["proxy-itself", "metadata"])
async def test_the_proxy_itself_and_metadata_are_refused(
    api_url: str,
    strict_proxied_dispatcher: Any,
    tinyproxy: Tinyproxy,
    http: aiohttp.ClientSession,
    which: str,
) -> None:
    target = (
        f"http://127.0.0.1:{tinyproxy.port}/x"
        if which == "proxy-itself"
        else "http://169.254.169.254/latest/meta-data/"
    )
    async with http.post(f"{api_url}/v1/endpoints", json={"url": target}) as response:
        if which == "metadata":  # refused at the API even where private callbacks are on
            assert response.status == 422
            return
        endpoint = await response.json()
    await call(http, "POST", f"{api_url}/v1/endpoints/{endpoint['id']}/test")

    async def attempted() -> list[dict[str, Any]]:
        items = await _endpoint_deliveries(http, api_url, endpoint["id"])
        return [d for d in items if d["attempts"]]

    [delivery] = await wait_until(attempted, timeout=15)
    assert delivery["attempts"][0]["error"].startswith("refused"), delivery


async def test_a_redirect_is_not_followed_through_the_proxy(
    api_url: str,
    make_settings: Callable[..., Settings],
    tinyproxy: Tinyproxy,
    receiver: tuple[Receiver, str],
    http: aiohttp.ClientSession,
) -> None:
    """The receiver (allowed by an explicit CIDR) redirects to ::1 and to metadata."""
    recording, url = receiver
    port = url.split(":")[-1].split("/")[0]
    recording.default = Answer(status=307, headers={"Location": f"http://[::1]:{port}/inner"})
    settings = make_settings(
        allow_private_callbacks=False,
        callback_allow_cidrs=["127.0.0.1/32"],
        webhook_proxy_url=tinyproxy.url,
    )
    async with running_dispatcher(settings):
        endpoint = await call(http, "POST", f"{api_url}/v1/endpoints", {"url": url})
        await call(http, "POST", f"{api_url}/v1/endpoints/{endpoint['id']}/test")

        async def attempted() -> list[dict[str, Any]]:
            items = await _endpoint_deliveries(http, api_url, endpoint["id"])
            return [d for d in items if d["attempts"]]

        [delivery] = await wait_until(attempted, timeout=15)
    assert delivery["attempts"][0]["status_code"] == 307
    assert [r.path for r in recording.received] == ["/hook"]

"""Endpoint options for integrations with real processes (issue #28): the API, a worker and
a dispatcher as subprocesses; two receivers on loopback, one failing."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from acceptd.webhooks.receiver import verify_event
from tests.support.cluster import Cluster, listening_port
from tests.support.http import authed_session, call
from tests.support.proxy import Tinyproxy
from tests.support.receiver import Answer, Receiver
from tests.support.waiting import wait_until


@asynccontextmanager
async def serving(recording: Receiver) -> AsyncIterator[str]:
    runner = web.AppRunner(recording.app)
    await runner.setup()
    port = listening_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


@pytest.mark.timeout(120)
async def test_a_schedule_of_one_and_one_gives_three_attempts_then_delivery_exhausted(
    tmp_path: Path,
) -> None:
    ops, broken = Receiver(), Receiver()
    broken.default = Answer(status=500)
    async with (
        Cluster(tmp_path) as cluster,
        serving(ops) as ops_url,
        serving(broken) as broken_url,
        authed_session() as session,
    ):
        endpoints, jobs_url = f"{cluster.api_url}/v1/endpoints", f"{cluster.api_url}/v1/jobs"
        exhaustions = {"url": ops_url, "events": ["delivery.exhausted"]}
        operations = await call(session, "POST", endpoints, exhaustions)
        twice_more = {"url": broken_url, "retry_schedule": [1, 1], "headers": {"X-Api-Key": "k-1"}}
        failing = await call(session, "POST", endpoints, twice_more)
        job = await call(session, "POST", jobs_url, {"type": "demo.echo", "input": {"value": 1}})
        [exhausted] = await wait_until(ops.arrived("delivery.exhausted"), timeout=60)
    verify_event(operations["secret"], exhausted.headers, exhausted.body)
    data = exhausted.json["data"]
    assert data["endpoint_id"] == failing["id"]
    assert len(data["attempts"]) == 3
    attempts = broken.about(job["id"])
    assert len(attempts) == 3  # exactly: the first and the schedule's two
    assert {r.headers["X-Api-Key"] for r in attempts} == {"k-1"}
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    assert all(0.7 <= gap <= 3 for gap in gaps), gaps  # one second, ±20 % jitter


@pytest.mark.timeout(120)
async def test_channels_route_each_customers_events_to_its_endpoints(tmp_path: Path) -> None:
    recording = Receiver()
    async with (
        Cluster(tmp_path) as cluster,
        serving(recording) as url,
        authed_session() as session,
    ):
        endpoints, jobs_url = f"{cluster.api_url}/v1/endpoints", f"{cluster.api_url}/v1/jobs"
        for name in ("acme", "globex"):
            await call(session, "POST", endpoints, {"url": f"{url}/{name}", "channels": [name]})
        echo = {"type": "demo.echo", "input": {"value": 1}}
        jobs = {
            name: (await call(session, "POST", jobs_url, {**echo, "channels": [name]}))["id"]
            for name in ("acme", "globex")
        }
        none = (await call(session, "POST", jobs_url, echo))["id"]

        async def both_arrived() -> bool:
            return {r.path for r in recording.received} == {"/hook/acme", "/hook/globex"}

        await wait_until(both_arrived, timeout=30)
        await wait_until(lambda: cluster.all_terminal([*jobs.values(), none]), timeout=30)
    got = {(r.path, r.json["data"]["id"]) for r in recording.received}
    assert got == {("/hook/acme", jobs["acme"]), ("/hook/globex", jobs["globex"])}


@pytest.mark.timeout(180)
async def test_every_webhook_leaves_through_a_proxy_and_a_stopped_one_costs_nothing(
    tmp_path: Path,
) -> None:
    """The roles as processes, the dispatcher with ACCEPTD_WEBHOOK_PROXY_URL: webhooks
    arrive through tinyproxy; while it is stopped a delivery waits with no attempt and its
    endpoint is not failing; once it is back, the webhook goes at its first attempt."""
    proxy = Tinyproxy(tmp_path / "proxy")
    proxy.start()
    recording = Receiver()
    try:
        async with (
            Cluster(tmp_path, ACCEPTD_WEBHOOK_PROXY_URL=proxy.url) as cluster,
            serving(recording) as url,
            authed_session() as session,
        ):
            api = cluster.api_url
            endpoint = await call(session, "POST", f"{api}/v1/endpoints", {"url": url})
            echo = {"type": "demo.echo", "input": {"value": 1}}
            first = await call(session, "POST", f"{api}/v1/jobs", echo)
            [webhook] = await recording.webhooks_about(first["id"], timeout=30)
            assert "tinyproxy" in webhook.headers["Via"]
            proxy.stop()
            second = await call(session, "POST", f"{api}/v1/jobs", echo)
            await asyncio.sleep(4)  # attempts the stopped proxy failed, had they counted
            deliveries = await call(session, "GET", f"{api}/v1/jobs/{second['id']}/deliveries")
            [waiting] = deliveries["items"]
            assert waiting["status"] == "pending"
            assert waiting["attempts"] == []
            read = await call(session, "GET", f"{api}/v1/endpoints/{endpoint['id']}")
            assert read["failing_since"] is None
            proxy.start()
            await recording.webhooks_about(second["id"], timeout=60)
    finally:
        proxy.stop()

"""Endpoint options for integrations with real processes (issue #28): the API, a worker and
a dispatcher as subprocesses; two receivers on loopback, one failing."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from acceptd.webhooks.receiver import verify_event
from tests.support.cluster import Cluster, listening_port
from tests.support.constants import API_KEY
from tests.support.receiver import Answer, Receiver
from tests.support.waiting import wait_until

AUTH = {"Authorization": f"Bearer {API_KEY}"}


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


async def post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Any:
    async with session.post(url, json=body, headers=AUTH) as response:
        assert response.status < 300, await response.text()
        return await response.json()


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
        aiohttp.ClientSession() as session,
    ):
        api = cluster.api_url
        operations = await post(session, f"{api}/v1/endpoints",
                                {"url": ops_url, "events": ["delivery.exhausted"]})  # fmt: skip
        failing = await post(session, f"{api}/v1/endpoints",
                             {"url": broken_url, "retry_schedule": [1, 1],
                              "headers": {"X-Api-Key": "k-1"}})  # fmt: skip
        job = await post(session, f"{api}/v1/jobs", {"type": "demo.echo", "input": {"value": 1}})
        [exhausted] = await wait_until(ops.arrived("delivery.exhausted"), timeout=60)
    verify_event(operations["secret"], exhausted.headers, exhausted.body)
    data = exhausted.json["data"]
    assert data["endpoint_id"] == failing["id"]
    assert len(data["attempts"]) == 3
    attempts = [r for r in broken.received if r.json["data"].get("id") == job["id"]]
    assert len(attempts) == 3  # exactly: the first and the schedule's two
    assert {r.headers["X-Api-Key"] for r in attempts} == {"k-1"}
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    assert all(0.7 <= gap <= 3 for gap in gaps), gaps  # one second, ±20 % jitter

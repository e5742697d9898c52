"""Ordered delivery with real processes: 10 ordering keys x 50 events to an endpoint with
`ordering: per_key` whose receiver fails at random. Each key's events arrive one at a time,
in emit order, and every event arrives exactly once after deduplication by webhook-id."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from aiohttp import web

from acceptd.webhooks.signing import verify
from tests.support.cluster import Cluster
from tests.support.hooks import serve_hook
from tests.support.http import authed_session
from tests.support.waiting import wait_until

KEYS = 10
PER_KEY = 50
FAILURE_RATE = 0.2


async def test_each_key_arrives_in_emit_order_exactly_once(tmp_path: Path) -> None:
    chance = random.Random(7)  # the receiver's flakiness, seeded
    accepted: dict[str, list[int]] = {}  # key -> sequences answered 2xx, in arrival order
    seen_ids: set[str] = set()
    in_flight: dict[str, int] = {}
    state: dict[str, Any] = {"secret": "", "overlap": 0, "failed": 0}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        verify(state["secret"], request.headers, body)
        event = json.loads(body)
        key = event["ordering_key"]
        in_flight[key] = in_flight.get(key, 0) + 1
        try:
            if in_flight[key] > 1:
                state["overlap"] += 1  # two of one key at once: ordering broken
            if chance.random() < FAILURE_RATE:
                state["failed"] += 1
                return web.Response(status=500)
            webhook_id = request.headers["webhook-id"]
            if webhook_id not in seen_ids:  # a receiver's dedupe
                seen_ids.add(webhook_id)
                accepted.setdefault(key, []).append(event["sequence"])
            return web.Response(status=204)
        finally:
            in_flight[key] -= 1

    runner, port = await serve_hook(hook)
    schedule = "0.05,0.05,0.1,0.1,0.2,0.2,0.3,0.3,0.5,0.5,1,1"
    try:
        async with (
            Cluster(tmp_path, ACCEPTD_WEBHOOK_RETRY_SCHEDULE=schedule) as cluster,
            authed_session() as http,
        ):
            cluster.roles.start("dispatcher-2", "dispatcher")
            api = cluster.api_url
            target = {"url": f"http://127.0.0.1:{port}/ordered", "ordering": "per_key"}
            async with http.post(f"{api}/v1/endpoints", json=target) as answer:
                endpoint = await answer.json()
                assert endpoint["ordering"] == "per_key"
                state["secret"] = endpoint["secret"]
            items = [
                {"type": "demo.echo", "input": {"value": n}, "ordering_key": f"customer-{k}"}
                for n in range(PER_KEY)
                for k in range(KEYS)
            ]
            async with http.post(f"{api}/v1/batches", json={"items": items}) as answer:
                assert answer.status == 202, await answer.text()

            async def all_arrived() -> bool:
                return len(seen_ids) >= KEYS * PER_KEY

            await wait_until(all_arrived, timeout=180, interval=0.5)
    finally:
        await runner.cleanup()
    print(
        f"\nordered: {len(seen_ids)} events over {KEYS} keys, {state['failed']} attempts "
        f"failed at random, {state['overlap']} overlaps"
    )
    assert len(seen_ids) == KEYS * PER_KEY
    assert state["overlap"] == 0
    assert state["failed"] > 0  # the receiver really did fail
    for key, sequences in accepted.items():
        assert len(sequences) == PER_KEY, key
        assert sequences == sorted(sequences), f"{key} arrived out of emit order"

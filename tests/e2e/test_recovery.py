"""Bulk recovery with real processes: 1,000 deliveries fail, the receiver comes back, one
request sends them all again as long-running work whose counts and progress can be read."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from acceptd.webhooks.signing import verify
from tests.support.cluster import Cluster
from tests.support.hooks import serve_hook
from tests.support.http import authed_session
from tests.support.waiting import wait_until

COUNT = 1000


async def test_a_thousand_failed_deliveries_are_recovered_with_counts(tmp_path: Path) -> None:
    state: dict[str, Any] = {"up": False, "secret": "", "delivered": set(), "refused": 0}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        verify(state["secret"], request.headers, body)
        if not state["up"]:
            state["refused"] += 1
            return web.Response(status=503, text="down for maintenance")
        state["delivered"].add(request.headers["webhook-id"])
        return web.Response(status=204)

    runner, port = await serve_hook(hook)
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    try:
        # One retry, soon: every delivery fails for good within seconds.
        async with (
            Cluster(tmp_path, ACCEPTD_WEBHOOK_RETRY_SCHEDULE="0.2") as cluster,
            authed_session() as http,
        ):
            api = cluster.api_url
            target = {"url": f"http://127.0.0.1:{port}/hooks"}
            async with http.post(f"{api}/v1/endpoints", json=target) as answer:
                endpoint = await answer.json()
                state["secret"] = endpoint["secret"]
            items = [{"type": "demo.echo", "input": {"value": i}} for i in range(COUNT)]
            async with http.post(f"{api}/v1/batches", json={"items": items}) as answer:
                assert answer.status == 202
            recover_url = f"{api}/v1/endpoints/{endpoint['id']}/recover"

            async def all_failed() -> bool:
                async with http.post(
                    f"{recover_url}?dry_run=true", json={"since": since}
                ) as answer:
                    return bool((await answer.json())["total"] == COUNT)

            await wait_until(all_failed, timeout=120, interval=1)
            assert state["delivered"] == set()
            state["up"] = True
            started = time.monotonic()
            async with http.post(recover_url, json={"since": since}) as answer:
                assert answer.status == 202
                recovery = await answer.json()
                location = answer.headers["Location"]
            assert recovery["total"] == COUNT
            assert location == f"/v1/recoveries/{recovery['id']}"

            async def done() -> dict[str, Any] | None:
                async with http.get(f"{api}{location}") as answer:
                    found: dict[str, Any] = await answer.json()
                    return found if answer.status == 200 else None

            finished = await wait_until(done, timeout=120, interval=0.5)

            async def all_delivered() -> bool:
                return len(state["delivered"]) == COUNT

            await wait_until(all_delivered, timeout=120, interval=0.5)
            took = time.monotonic() - started
            async with http.post(f"{recover_url}?dry_run=true", json={"since": since}) as answer:
                left = (await answer.json())["total"]
    finally:
        await runner.cleanup()
    print(
        f"\nrecovered {COUNT} failed deliveries in {took:.1f} s "
        f"(refused before: {state['refused']} attempts)"
    )
    assert finished["status"] == "done"
    assert finished["sent"] == COUNT
    assert left == 0  # nothing failed is left in the window

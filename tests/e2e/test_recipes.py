"""The receiver recipes of examples/receivers, each run as a real server of its framework
and sent a real signed delivery by acceptd: verified, deduplicated, forgeries refused."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from acceptd.cli.embedded import free_port
from acceptd.webhooks.signing import generate_secret
from tests.support.constants import SECRET, subprocess_env
from tests.support.http import authed_session, call
from tests.support.signing import sign_event
from tests.support.waiting import answers, wait_until

ROOT = Path(__file__).resolve().parents[2]
RECIPES = {
    "fastapi": lambda port: [sys.executable, "-m", "uvicorn",
                             "examples.receivers.fastapi_receiver:app", "--port", str(port)],
    "flask": lambda port: [sys.executable, "-m", "flask", "--app",
                           "examples.receivers.flask_receiver", "run", "--port", str(port)],
    "django": lambda port: [sys.executable, "examples/receivers/django_receiver.py", "runserver",
                            str(port), "--noreload"],
}  # fmt: skip


@dataclass
class Recipe:
    url: str
    handled: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(params=sorted(RECIPES))
async def recipe(request: pytest.FixtureRequest) -> AsyncIterator[Recipe]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *RECIPES[request.param](port),
        cwd=ROOT,
        env=subprocess_env(ACCEPTD_WEBHOOK_SECRET=f"{generate_secret()} {SECRET}"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    running = Recipe(f"http://127.0.0.1:{port}/webhooks")

    async def read() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            if line.startswith(b"{"):
                running.handled.append(json.loads(line))

    reader = asyncio.create_task(read())
    try:
        # Listening: an unsigned request is refused.
        await wait_until(lambda: answers(running.url, 401, "POST", b"{}"), timeout=30)
        yield running
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 15)
        reader.cancel()


async def test_a_recipe_verifies_a_real_delivery_and_dedupes(
    recipe: Recipe, api_url: str, worker: None, dispatcher: Any
) -> None:
    async with authed_session() as http:
        body = {"type": "demo.echo", "input": {"value": 1}, "callback_url": recipe.url}
        job = await call(http, "POST", f"{api_url}/v1/jobs", body)

        async def handled() -> bool:
            return any(line["subject"] == job["id"] for line in recipe.handled)

        await wait_until(handled, timeout=30)
        (line,) = [line for line in recipe.handled if line["subject"] == job["id"]]
        assert line["type"] == "job.succeeded"

        # The same delivery twice (a retry after a lost answer) is handled once.
        event = {"type": "job.failed", "timestamp": "2026-11-23T00:00:00Z", "data": {"id": "j"}}
        signed, headers = sign_event(SECRET, event, msg_id="msg_twice")
        for _ in range(2):
            async with http.post(recipe.url, data=signed, headers=headers) as answer:
                assert answer.status == 204
        forged, forged_headers = sign_event(generate_secret(), event, msg_id="msg_forged")
        async with http.post(recipe.url, data=forged, headers=forged_headers) as answer:
            assert answer.status == 401
        tampered = signed.replace(b'"j"', b'"k"')
        async with http.post(recipe.url, data=tampered, headers=headers) as answer:
            assert answer.status == 401
    assert [line["webhook_id"] for line in recipe.handled].count("msg_twice") == 1
    assert "msg_forged" not in {line["webhook_id"] for line in recipe.handled}

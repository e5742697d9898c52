"""The client verbs of `acceptd`, run as a user would against a live API."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from acceptd.cli.embedded import free_port
from acceptd.webhooks.signing import generate_secret
from tests.support.cli import ACCEPTD, client_cli, run_cli
from tests.support.constants import API_KEY, SECRET, subprocess_env
from tests.support.receiver import Receiver
from tests.support.signing import sign_event
from tests.support.waiting import answers, wait_until

EVENT = {
    "type": "job.failed",
    "timestamp": "2026-11-22T17:00:00.000Z",
    "data": {"id": "job_x", "status": "failed"},
}


async def test_submit_status_jobs_and_wait(api_url: str, worker: None) -> None:
    code, out, err = await client_cli(
        api_url, "submit", "demo.echo", "--input", '{"value": 3}', "--json"
    )
    assert code == 0, err
    job = json.loads(out)
    assert job["status"] == "queued"
    code, out, _ = await client_cli(api_url, "wait", job["id"], "--json")
    assert code == 0
    assert json.loads(out)["result"] == {"value": 3}
    code, out, _ = await client_cli(api_url, "status", job["id"])
    assert code == 0
    assert job["id"] in out
    assert "succeeded" in out
    assert '"value": 3' in out
    code, out, _ = await client_cli(api_url, "jobs")
    assert code == 0
    header, row = out.splitlines()[:2]
    assert header.split() == ["ID", "TYPE", "STATUS", "PROGRESS", "CREATED"]
    assert row.split()[:4] == [job["id"], "demo.echo", "succeeded", "100%"]
    code, out, _ = await client_cli(api_url, "jobs", "--json")
    assert code == 0
    listed = json.loads(out)["items"][0]
    assert listed["id"] == job["id"]
    assert "input" not in listed  # a list leaves it out; --json prints what the API sent
    assert "result" not in listed
    code, out, _ = await client_cli(api_url, "jobs", "--view", "full", "--json")
    assert code == 0
    assert json.loads(out)["items"][0]["result"] == {"value": 3}


async def test_wait_shows_progress_and_exit_codes(
    api_url: str, worker: None, tmp_path: Path
) -> None:
    spec = tmp_path / "input.json"
    spec.write_text(json.dumps({"value": 1, "delay_ms": 1500, "progress_steps": 3}))
    code, out, err = await client_cli(
        api_url, "submit", "demo.echo", "--input", f"@{spec}", "--wait"
    )
    assert code == 0, err
    assert "succeeded" in out
    assert "[" in err
    assert "%" in err
    code, _, err = await client_cli(
        api_url, "submit", "demo.echo", "--input", '{"value": 1, "fail": true}', "--wait"
    )
    assert code == 1
    code, out, _ = await client_cli(
        api_url, "submit", "demo.echo", "--input", '{"value": 1, "delay_ms": 60000}', "--json"
    )
    job = json.loads(out)
    async with aiohttp.ClientSession() as session:
        await session.post(
            f"{api_url}/v1/jobs/{job['id']}/cancel", headers={"Authorization": f"Bearer {API_KEY}"}
        )
    code, _, _ = await client_cli(api_url, "wait", job["id"])
    assert code == 2


async def test_wait_timeout_exits_2(api_url: str) -> None:
    _, out, _ = await client_cli(
        api_url, "submit", "demo.echo", "--input", '{"value": 1}', "--json"
    )
    code, _, err = await client_cli(api_url, "wait", json.loads(out)["id"], "--timeout", "0.5")
    assert code == 2
    assert "timed out" in err


async def test_request_errors_name_the_fields(api_url: str) -> None:
    code, _, err = await client_cli(api_url, "submit", "demo.echo", "--input", '{"delay_ms": -1}')
    assert code == 3
    assert "input.value" in err
    assert "input.delay_ms" in err
    code, _, err = await client_cli(api_url, "status", "job_00000000000000000000000000", "--json")
    assert code == 3
    assert json.loads(err)["status"] == 404


async def test_endpoint_verbs(api_url: str, receiver: tuple[Any, str]) -> None:
    _, url = receiver
    code, out, err = await client_cli(
        api_url, "endpoints", "add", url, "--events", "job.failed,job.succeeded", "--json"
    )
    assert code == 0, err
    endpoint = json.loads(out)
    assert endpoint["events"] == ["job.failed", "job.succeeded"]
    assert endpoint["secret"].startswith("whsec_")
    code, out, _ = await client_cli(api_url, "endpoints", "list")
    assert endpoint["id"] in out
    assert "enabled" in out
    code, out, _ = await client_cli(api_url, "endpoints", "rotate", endpoint["id"], "--json")
    assert code == 0
    assert json.loads(out)["secret"] != endpoint["secret"]
    code, out, _ = await client_cli(api_url, "endpoints", "remove", endpoint["id"])
    assert code == 0
    assert "removed" in out
    code, out, _ = await client_cli(api_url, "endpoints", "list", "--json")
    assert json.loads(out) == {"items": []}


async def test_deliveries_and_redeliver(
    api_url: str, worker: None, dispatcher: Any, receiver: tuple[Receiver, str]
) -> None:
    recording, url = receiver
    code, out, _ = await client_cli(
        api_url, "submit", "demo.echo", "--input", '{"value": 1}', "--callback", url, "--json"
    )
    job = json.loads(out)

    async def delivered() -> Any:
        _, listing, _ = await client_cli(api_url, "deliveries", job["id"], "--json")
        items = json.loads(listing)["items"]
        return items if items and items[0]["status"] == "succeeded" else None

    [delivery] = await wait_until(delivered, timeout=30)
    code, out, _ = await client_cli(api_url, "deliveries", job["id"])
    assert code == 0
    assert out.splitlines()[0].split()[:4] == ["DELIVERY", "EVENT", "URL", "STATUS"]
    assert delivery["id"] in out
    assert "200" in out
    code, out, _ = await client_cli(api_url, "redeliver", delivery["id"])
    assert code == 0
    assert "queued again" in out

    await wait_until(recording.got(2), timeout=20)


@pytest.mark.timeout(60)
async def test_listen_prints_verified_webhooks_and_rejects_forged_ones() -> None:
    port = free_port()
    env = subprocess_env(ACCEPTD_API_KEY=API_KEY)
    listen = [*ACCEPTD, "listen", "--port", str(port), "--secret", SECRET]
    process = await asyncio.create_subprocess_exec(
        *listen, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}/hooks"
    try:
        await wait_until(lambda: answers(url, 405), timeout=20)  # listening: GET not allowed
        async with aiohttp.ClientSession() as session:
            body, headers = sign_event(SECRET, EVENT, msg_id="msg_cli")
            async with session.post(url, data=body, headers=headers) as response:
                assert response.status == 200
            forged_body, forged_headers = sign_event(generate_secret(), EVENT, msg_id="msg_forged")
            async with session.post(url, data=forged_body, headers=forged_headers) as response:
                assert response.status == 401
    finally:
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), 15)
    assert "job.failed" in out.decode()
    assert "msg_cli" in out.decode()
    assert "rejected" in err.decode()
    assert "msg_forged" in err.decode()
    assert process.returncode == 0


async def test_batch_verb_submits_a_file_and_waits_with_the_counts(
    api_url: str, worker: None, tmp_path: Path
) -> None:
    lines = [{"type": "demo.echo", "input": {"value": i, "fail": i == 2}} for i in range(4)]
    items = tmp_path / "items.jsonl"
    items.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    code, out, err = await client_cli(api_url, "batch", str(items), "--wait", "--json")
    assert code == 1, err  # one item failed
    batch = json.loads(out)
    assert batch["status"] == "completed"
    assert batch["counts"]["succeeded"] == 3
    assert batch["counts"]["failed"] == 1
    code, out, _ = await client_cli(api_url, "status", batch["id"])
    assert code == 0
    assert "completed" in out
    assert "4 of 4 items finished" in out
    code, out, _ = await client_cli(api_url, "batch", str(items))
    assert code == 0
    assert out.startswith("bat_")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps([{"type": "demo.echo", "input": {"delay_ms": "soon"}}]))
    code, _, err = await client_cli(api_url, "batch", str(broken))
    assert code == 3
    assert "items.0.input" in err


async def test_watch_follows_the_live_stream_and_complete_needs_only_the_token(
    api_url: str, worker: None
) -> None:
    code, out, _ = await client_cli(
        api_url, "submit", "demo.review", "--input", '{"subject": "refund 12"}', "--json"
    )
    job = json.loads(out)
    watcher = asyncio.create_task(client_cli(api_url, "watch", job["id"], "--json"))

    async def token() -> Any:
        _, out, _ = await client_cli(api_url, "status", job["id"], "--json")
        waiting = json.loads(out)["awaiting_input"]
        return waiting and waiting["token"]

    completion_token = await wait_until(token)
    # As a reviewer would: no API key in the environment at all.
    env = subprocess_env(ACCEPTD_URL=api_url)
    verdict = '{"approved": false, "comment": "wrong amount"}'
    code, out, err = await run_cli(
        "complete", job["id"], "--token", completion_token, "--result", verdict, "--json", env=env
    )
    assert code == 0, err
    assert json.loads(out)["result"] == {"approved": False, "comment": "wrong amount"}

    code, out, err = await asyncio.wait_for(watcher, 30)
    assert code == 0, err
    seen = [json.loads(line) for line in out.splitlines()]
    statuses = [s["job"]["status"] for s in seen if s["event"] == "status"]
    assert statuses[-2:] == ["awaiting_input", "succeeded"]
    code, _, err = await client_cli(
        api_url, "complete", job["id"], "--token", completion_token, "--fail", "too late"
    )
    assert code == 3
    assert "already used" in err

"""The fault suite: jobs with callbacks flow through real processes while everything breaks.

`make test` runs the short form; `make soak` the long one (SOAK_JOBS=3000). At the end it
prints and asserts: jobs accepted = jobs terminal, every owed webhook received (duplicates
counted and allowed), every signature valid, and every batch submitted among the jobs
completed with counts that match its items' statuses.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from acceptd.cli.embedded import EmbeddedValkey, free_port
from acceptd.client import AcceptdError, Client
from acceptd.webhooks.signing import WebhookVerificationError, verify
from tests.support.constants import API_KEY, MASTER_KEY, SECRET, subprocess_env
from tests.support.waiting import wait_until

JOBS = int(os.environ.get("SOAK_JOBS", "300"))
SUBMIT_SECONDS = float(os.environ.get("SOAK_SECONDS", "12"))
HANG_SHARE = 0.05
BATCH_EVERY = 25  # one batch of BATCH_ITEMS beside every 25th job
BATCH_ITEMS = 10
TERMINAL = ("succeeded", "failed", "canceled")


class Receiver:
    """Records each verified webhook by job; can be taken down and brought back on its port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.by_job: Counter[str] = Counter()
        self.forged = 0
        self.hang_remaining = 5
        self._runner: web.AppRunner | None = None

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(SECRET, request.headers, body)
        except WebhookVerificationError:
            self.forged += 1
            return web.Response(status=401)
        if request.path == "/hang" and self.hang_remaining > 0:
            self.hang_remaining -= 1
            await asyncio.sleep(4)  # longer than the webhook timeout: the attempt must fail
        import json

        self.by_job[json.loads(body)["data"]["id"]] += 1
        return web.Response(status=204)

    async def up(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def down(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class Roles:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.files: list[Any] = []

    def start(self, name: str, role: str) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop_all
        self.files.append(log)
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "acceptd", role],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    async def signal(self, name: str, sig: signal.Signals) -> float:
        """Signal a role and wait for it to exit (off the loop: the receiver must keep
        answering while the role drains its deliveries). Returns how long the exit took."""
        process = self.processes[name]
        started = time.monotonic()
        process.send_signal(sig)
        await asyncio.to_thread(process.wait, 60)
        return time.monotonic() - started

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        for log in self.files:
            log.close()


@pytest.mark.timeout(240 if JOBS <= 300 else 1800)
async def test_nothing_is_lost_while_everything_breaks(tmp_path: Path) -> None:
    valkey = EmbeddedValkey(tmp_path / "valkey", persistent=True)
    valkey.start()
    api_port, receiver = free_port(), Receiver(free_port())
    env = subprocess_env(
        ACCEPTD_REDIS_URL=valkey.url, ACCEPTD_MASTER_KEY=MASTER_KEY, ACCEPTD_HOST="127.0.0.1",
        ACCEPTD_PORT=str(api_port), ACCEPTD_BOOTSTRAP_API_KEY=API_KEY,
        ACCEPTD_BOOTSTRAP_SECRET=SECRET, ACCEPTD_ALLOW_PRIVATE_CALLBACKS="true",
        ACCEPTD_METRICS_PORT="0", ACCEPTD_RATE_LIMIT_PER_SECOND="0",
        # Short timeouts so crash recovery (timeout + grace + 15 s) fits in a test.
        ACCEPTD_DEFAULT_JOB_TIMEOUT_SECONDS="5", ACCEPTD_CANCEL_GRACE_SECONDS="1",
        ACCEPTD_WEBHOOK_TIMEOUT_SECONDS="2", ACCEPTD_WEBHOOK_RETRY_SCHEDULE="1,1,2,2,3,3,5,5,8",
        ACCEPTD_SHUTDOWN_GRACE_SECONDS="3",
    )  # fmt: skip
    roles = Roles(env, tmp_path)
    for name, role in (("api", "api"), ("worker", "worker"), ("dispatcher", "dispatcher")):
        roles.start(name, role)
    await receiver.up()
    accepted: set[str] = set()
    batches: set[str] = set()
    refused = 0
    drained: dict[str, float] = {}
    try:
        api = f"http://127.0.0.1:{api_port}"
        async with Client(api, API_KEY, max_retries=8, backoff_cap=2) as client:

            async def up() -> bool:
                try:
                    await client.list(limit=1)
                    return True
                except AcceptdError:
                    return False

            await wait_until(up, timeout=30, interval=0.2)

            async def submit(index: int) -> None:
                nonlocal refused
                path = "/hang" if random.random() < HANG_SHARE else "/ok"
                try:
                    job = await client.submit(
                        "demo.echo",
                        {"value": index, "delay_ms": random.randint(0, 200)},
                        callback_url=f"http://127.0.0.1:{receiver.port}{path}",
                    )
                    accepted.add(job["id"])
                except AcceptdError:
                    refused += 1  # never acknowledged: not owed anything

            async def submit_batch(index: int) -> None:
                nonlocal refused
                items = [
                    {"type": "demo.echo", "input": {"value": f"{index}.{i}",
                                                    "delay_ms": random.randint(0, 200)}}
                    for i in range(BATCH_ITEMS)
                ]  # fmt: skip
                try:
                    batch = await client.submit_batch(
                        items, callback_url=f"http://127.0.0.1:{receiver.port}/ok"
                    )
                    batches.add(batch["id"])
                except AcceptdError:
                    refused += 1

            async def load() -> None:
                tasks = []
                for index in range(JOBS):
                    tasks.append(asyncio.create_task(submit(index)))
                    if index % BATCH_EVERY == 0:
                        tasks.append(asyncio.create_task(submit_batch(index)))
                    await asyncio.sleep(SUBMIT_SECONDS / JOBS)
                await asyncio.gather(*tasks)

            async def chaos() -> None:
                step = SUBMIT_SECONDS / 6
                await asyncio.sleep(step)
                await roles.signal("worker", signal.SIGKILL)  # mid-job
                roles.start("worker", "worker")
                await asyncio.sleep(step)
                await roles.signal("dispatcher", signal.SIGKILL)  # mid-delivery
                roles.start("dispatcher", "dispatcher")
                await receiver.down()  # the receiver is away for a while
                await asyncio.sleep(step)
                await receiver.up()
                valkey.stop()  # Redis restarts; the AOF brings everything back
                await asyncio.sleep(1)
                valkey.start()
                await asyncio.sleep(step)
                for name in ("api", "worker", "dispatcher"):  # a rolling deploy: SIGTERM all
                    drained[name] = await roles.signal(name, signal.SIGTERM)
                    roles.start(name, name)

            started = time.monotonic()
            await asyncio.gather(load(), chaos())

            async def settled() -> bool:
                terminal = 0
                for job_id in accepted:
                    job = await client.get(job_id)
                    terminal += job["status"] in TERMINAL
                owed = accepted | batches
                return terminal == len(accepted) and set(receiver.by_job) >= owed

            await wait_until(settled, timeout=150 if JOBS <= 300 else 900, interval=2)
            terminal = 0
            for job_id in accepted:
                terminal += (await client.get(job_id))["status"] in TERMINAL
            # Counts kept by the status scripts through every crash must match the items.
            batch_mismatches = []
            for batch_id in batches:
                batch = await client.get_batch(batch_id)
                items = Counter(
                    [j["status"] async for j in client.iter_jobs(batch=batch_id, limit=100)]
                )
                counted = {status: n for status, n in batch["counts"].items() if n}
                if batch["status"] != "completed" or counted != dict(items):
                    batch_mismatches.append((batch_id, batch["status"], counted, dict(items)))
    finally:
        roles.stop_all()
        await receiver.down()
        valkey.stop()
    duplicates = sum(n - 1 for n in receiver.by_job.values())
    missing = len((accepted | batches) - set(receiver.by_job))
    print(
        f"\nsoak: {JOBS} submitted, {len(accepted)} accepted, {len(batches)} batches of "
        f"{BATCH_ITEMS}, {refused} refused, "
        f"{terminal} terminal ({len(accepted) - terminal} lost), webhooks: {missing} missing, "
        f"{duplicates} duplicates, {receiver.forged} forged; {time.monotonic() - started:.0f} s; "
        f"SIGTERM to exit: {', '.join(f'{k} {v:.1f} s' for k, v in drained.items())}"
    )
    assert terminal == len(accepted)
    assert batch_mismatches == []
    assert missing == 0
    assert receiver.forged == 0
    assert len(accepted) >= JOBS * 0.9  # the client's retries carried submissions through
    # Each role drains within its grace (3 s) plus the slowest in-flight step (2 s webhooks).
    assert all(seconds < 15 for seconds in drained.values()), drained

"""A real Redis-compatible server per test session: the embedded Valkey, or ACCEPTD_TEST_REDIS_URL.

The database it names is flushed before every test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from aiohttp.test_utils import TestClient

from service.api.app import create_app
from service.arqstop import stop_gracefully
from service.embedded import EmbeddedValkey
from service.jobs.registry import JobRegistry
from service.jobs.worker import create_worker
from service.secretbox import generate_master_key
from service.settings import Settings
from service.webhooks.signing import generate_secret

API_KEY = "acc_test-key-for-the-default-tenant"
SECRET = generate_secret()
MASTER_KEY = generate_master_key()
JOB_MODULES = ["service.jobs.demo", "tests.jobtypes"]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("ACCEPTD_TEST_REDIS_URL")
    if external:
        yield external
        return
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"), persistent=False)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _flush(redis_url: str) -> None:
    with sync_redis.Redis.from_url(redis_url) as client:
        client.flushdb()


@pytest.fixture
def make_settings(redis_url: str) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": redis_url,
            "master_key": MASTER_KEY,
            "bootstrap_api_key": API_KEY,
            "bootstrap_secret": SECRET,
            "job_modules": JOB_MODULES,
            # Tests' receivers listen on loopback; the SSRF tests build their own policy.
            "allow_private_callbacks": True,
            "worker_poll_delay_seconds": 0.01,
            "cancel_grace_seconds": 0.5,
            # Seconds, not hours, so retries happen within a test.
            "webhook_retry_schedule": [0.1, 0.1, 0.1],
            "webhook_timeout_seconds": 2.0,
            "metrics_port": 0,
            "rate_limit_per_second": 0,  # tests submit in bursts; test_abuse.py turns it on
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], settings: Settings
) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(settings))


@pytest.fixture
def run_worker_burst(settings: Settings) -> Callable[..., Awaitable[None]]:
    """Runs every job that is due, then returns: deterministic, in-process."""

    async def run(use: Settings | None = None) -> None:
        chosen = use or settings
        worker = create_worker(
            chosen, JobRegistry.from_modules(chosen.job_modules), burst=True, handle_signals=False
        )
        try:
            await asyncio.wait_for(worker.main(), timeout=20)
        except TimeoutError as exc:
            state = await _queue_state(chosen)
            raise AssertionError(f"burst worker did not drain: {state}") from exc
        finally:
            await worker.close()

    return run


async def _stop_or_explain(running: Any, task: asyncio.Task[None]) -> None:
    """stop_gracefully, bounded: a stop that hangs fails with every task's stack."""
    try:
        await asyncio.wait_for(stop_gracefully(running, task, grace=1.0), 15)
    except TimeoutError as exc:
        import io

        stacks = io.StringIO()
        for pending in asyncio.all_tasks():
            pending.print_stack(file=stacks)
        raise AssertionError(f"worker did not stop within 15 s:\n{stacks.getvalue()}") from exc


async def _queue_state(settings: Settings) -> dict[str, Any]:
    """What a stuck burst run leaves behind, for the failure message."""
    from service.redis_conn import connect
    from service.store import keys

    conn = connect(settings)
    try:
        queued = await conn.zrange(keys.JOB_QUEUE, 0, -1, withscores=True)
        state: dict[str, Any] = {"now_ms": int(time.time() * 1000), "queue": queued}
        for job_id, _score in queued:
            state[job_id] = {
                "arq_job": await conn.get(keys.arq_job(job_id)),
                "in_progress_ttl": await conn.pttl(keys.arq_in_progress(job_id)),
                "record": await conn.hgetall(keys.job(job_id)),  # type: ignore[misc]
            }
        return state
    finally:
        await conn.aclose()


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[None]:
    """A worker running in the background for the whole test."""
    running = create_worker(
        settings, JobRegistry.from_modules(settings.job_modules), handle_signals=False
    )
    task = asyncio.create_task(running.async_run())
    yield
    await _stop_or_explain(running, task)


async def wait_until(
    condition: Callable[[], Awaitable[Any]],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for polling, not a cancel scope
    interval: float = 0.02,
) -> Any:
    """Polls `condition` until it returns something truthy; fails the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)


VECTORS = Path(__file__).parent / "standard-webhooks-vectors.json"


@pytest.fixture
async def receiver(aiohttp_server: Callable[..., Awaitable[Any]]) -> Any:
    """(Receiver, base URL) listening on loopback."""
    from tests.receiver import Receiver

    recording = Receiver()
    server = await aiohttp_server(recording.app)
    return recording, str(server.make_url("/hook"))


@contextlib.asynccontextmanager
async def running_dispatcher(settings: Settings) -> AsyncIterator[Any]:
    """A dispatcher running in the background while the block runs; yields its runtime."""
    from service.webhooks.dispatcher import DispatcherRuntime, create_dispatcher

    ready: asyncio.Future[DispatcherRuntime] = asyncio.get_running_loop().create_future()

    async def on_ready(runtime: DispatcherRuntime) -> None:
        ready.set_result(runtime)

    running = create_dispatcher(settings, handle_signals=False, on_ready=on_ready)
    task = asyncio.create_task(running.async_run())
    try:
        yield await asyncio.wait_for(ready, 10)
    finally:
        await _stop_or_explain(running, task)


@pytest.fixture
async def dispatcher(settings: Settings) -> AsyncIterator[Any]:
    """The dispatcher running in the background for the whole test; yields its runtime."""
    async with running_dispatcher(settings) as runtime:
        yield runtime


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for an `acceptd` subprocess: this one's, minus any ACCEPTD_* of the
    developer's shell, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCEPTD_")}
    env.update(extra)
    return env


@pytest.fixture
async def api_url(aiohttp_server: Callable[..., Awaitable[Any]], settings: Settings) -> str:
    """The API on a real loopback port, for clients and CLI subprocesses."""
    server = await aiohttp_server(create_app(settings))
    return str(server.make_url("")).rstrip("/")


def sign_event(
    secret: str, payload: dict[str, Any], *, msg_id: str = "msg_test", at: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """A webhook as the dispatcher would sign it, for receiver tests."""
    import json

    from service.webhooks.sender import webhook_headers
    from service.webhooks.signing import decode_secret

    body = json.dumps(payload).encode()
    return body, webhook_headers(msg_id, body, [decode_secret(secret)], at or int(time.time()))

"""A real Redis-compatible server per test session: the embedded Valkey, or ACCEPTD_TEST_REDIS_URL.

The database it names is flushed before every test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis as sync_redis
from aiohttp.test_utils import TestClient

from acceptd.api.app import create_app
from acceptd.cli.embedded import EmbeddedValkey
from acceptd.core.settings import Settings
from acceptd.jobs.registry import JobRegistry
from acceptd.store.cluster import forget_topologies
from acceptd.worker.role import create_worker
from tests.support import topologies
from tests.support.constants import (
    API_KEY,
    JOB_MODULES,
    MASTER_KEY,
    SECRET,
    TEST_SHARDS,
    TEST_TOPOLOGY,
)
from tests.support.redis_faults import out_of_memory
from tests.support.roles import queue_state, running_dispatcher, stop_or_explain

# Primaries to flush before each test: the one server, or every primary of the cluster.
_PRIMARIES: list[str] = []


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("ACCEPTD_TEST_REDIS_URL")
    if external:
        _PRIMARIES.append(external)
        yield external
        return
    if TEST_TOPOLOGY == "cluster":
        with topologies.cluster(tmp_path_factory.mktemp("cluster")) as cluster:
            _PRIMARIES.extend(
                f"redis://:{topologies.PASSWORD}@{node.host}:{node.port}"
                for node in cluster.nodes[: cluster.primaries]
            )
            yield cluster.url
        return
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"), persistent=False)
    server.start()
    _PRIMARIES.append(server.url)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _flush(redis_url: str) -> None:
    # What this process found each URL to be (store/cluster.py): tests start servers and
    # clusters on ports another test may have used for the other kind.
    forget_topologies()
    for url in _PRIMARIES:
        with sync_redis.Redis.from_url(url) as client:
            client.flushdb()


@pytest.fixture
def refusing_writes() -> Callable[[], contextlib.AbstractAsyncContextManager[None]]:
    """Every primary of the test store refuses writes (out of memory under noeviction,
    tests/support/redis_faults.py) while the block runs; reads still answer."""

    @contextlib.asynccontextmanager
    async def every_primary() -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for url in _PRIMARIES:
                await stack.enter_async_context(out_of_memory(url))
            yield

    return every_primary


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
            "public_rate_limit_per_second": 0,  # likewise; test_security.py turns it on
            "auth_failures_per_minute": 0,  # likewise; test_hardening.py turns it on
            "shards": TEST_SHARDS,
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def metrics_text(settings: Settings) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """The Prometheus text a role's metrics port serves, as of now (queue depths read)."""
    from acceptd.runtime.metrics import render
    from acceptd.store.connection import open_shards

    shards = await open_shards(settings)

    async def read() -> str:
        body, _ = await render(shards)
        return body.decode()

    yield read
    await shards.aclose()


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
            state = await queue_state(chosen)
            raise AssertionError(f"burst worker did not drain: {state}") from exc
        finally:
            await worker.close()

    return run


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[None]:
    """A worker running in the background for the whole test."""
    running = create_worker(
        settings, JobRegistry.from_modules(settings.job_modules), handle_signals=False
    )
    task = asyncio.create_task(running.async_run())
    yield
    await stop_or_explain(running, task)


@pytest.fixture
async def receiver(aiohttp_server: Callable[..., Awaitable[Any]]) -> Any:
    """(Receiver, base URL) listening on loopback."""
    from tests.support.receiver import Receiver

    recording = Receiver()
    server = await aiohttp_server(recording.app)
    return recording, str(server.make_url("/hook"))


@pytest.fixture
async def dispatcher(settings: Settings) -> AsyncIterator[Any]:
    """The dispatcher running in the background for the whole test; yields its runtime."""
    async with running_dispatcher(settings) as runtime:
        yield runtime


@pytest.fixture
async def api_url(aiohttp_server: Callable[..., Awaitable[Any]], settings: Settings) -> str:
    """The API on a real loopback port, for clients and CLI subprocesses."""
    server = await aiohttp_server(create_app(settings))
    return str(server.make_url("")).rstrip("/")

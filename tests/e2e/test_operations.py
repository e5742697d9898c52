"""What an operator relies on: metrics, request ids, logs, doctor, graceful stop, deploy/."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from acceptd.cli.embedded import EmbeddedValkey, free_port
from acceptd.core import logs
from acceptd.core.settings import Settings
from tests.support.cli import ACCEPTD, run_cli
from tests.support.constants import API_KEY, MASTER_KEY, SECRET, subprocess_env
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until


async def test_api_metrics(
    client: TestClient[Any, Any],
    auth: dict[str, str],
    run_worker_burst: Callable[..., Awaitable[None]],
    metrics_text: Callable[[], Awaitable[str]],
) -> None:
    await client.post("/v1/jobs", json={"type": "demo.echo", "input": {"value": 1}}, headers=auth)
    await client.post("/v1/jobs", json={"type": "test.crash", "input": {}}, headers=auth)
    queued = await metrics_text()
    assert re.search(r'acceptd_queue_depth\{queue="jobs"\} 2\.0', queued)
    await run_worker_burst()
    text = await metrics_text()
    assert re.search(r'acceptd_jobs_submitted_total\{type="demo.echo"\} [1-9]', text)
    assert re.search(
        r'acceptd_jobs_finished_total\{status="succeeded",type="demo.echo"\} [1-9]', text
    )
    assert re.search(
        r'acceptd_jobs_finished_total\{status="failed",type="test.crash"\} [1-9]', text
    )
    assert 'acceptd_http_request_seconds_count{method="POST",route="/v1/jobs",status="202"}' in text
    assert "acceptd_job_queue_wait_seconds_bucket" in text
    assert "acceptd_job_run_seconds_bucket" in text
    assert re.search(r'acceptd_queue_depth\{queue="jobs"\} 0\.0', text)
    # Not on the public port: queue depths and per-type counts are the operator's.
    hidden = await client.get("/metrics")
    assert hidden.status == 404
    assert hidden.headers["Content-Type"] == "application/problem+json"


async def test_worker_ops_server(settings: Settings) -> None:
    from acceptd.runtime import opsserver
    from acceptd.store.connection import open_shards

    redis, port = await open_shards(settings), free_port()
    runner = await opsserver.start(redis, "127.0.0.1", port)
    assert runner is not None
    try:
        async with aiohttp.ClientSession() as session:
            for path in ("/healthz", "/readyz"):
                async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                    assert response.status == 200
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert "acceptd_queue_depth" in await response.text()
    finally:
        await runner.cleanup()
        await redis.aclose()
    assert await opsserver.start(redis, "127.0.0.1", 0) is None


async def test_request_ids(client: TestClient[Any, Any], auth: dict[str, str]) -> None:
    generated = await client.get("/v1/jobs", headers=auth)
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-Id"])
    echoed = await client.get("/v1/jobs", headers={**auth, "X-Request-Id": "trace-42"})
    assert echoed.headers["X-Request-Id"] == "trace-42"
    sanitized = await client.get("/nope", headers={"X-Request-Id": "bad id\twith spaces"})
    assert sanitized.headers["X-Request-Id"] != "bad id\twith spaces"


@pytest.fixture
def json_log() -> Any:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


async def test_logs_follow_a_job_and_never_show_secrets(
    client: TestClient[Any, Any],
    auth: dict[str, str],
    worker: None,
    dispatcher: Any,
    receiver: tuple[Receiver, str],
    json_log: io.StringIO,
) -> None:
    recording, url = receiver
    endpoint = await (await client.post("/v1/endpoints", json={"url": url}, headers=auth)).json()
    crashed = await (
        await client.post("/v1/jobs", json={"type": "test.crash", "input": {}}, headers=auth)
    ).json()
    await wait_until(recording.got(1))
    lines = [json.loads(line) for line in json_log.getvalue().splitlines() if line.startswith("{")]
    about_job = [line for line in lines if line.get("job_id") == crashed["id"]]
    assert about_job, "the worker's log line about the failed job carries its job_id"
    assert all(line["tenant"] == "default" for line in about_job)
    everything = json_log.getvalue()
    for secret in (API_KEY, SECRET, endpoint["secret"], MASTER_KEY):
        assert secret not in everything


async def _run(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """`acceptd ARGS`: its exit code, and all it said (on stdout and stderr)."""
    code, out, err = await run_cli(*args, env=env)
    return code, out + err


async def test_doctor_passes_on_a_production_like_server_and_names_problems(
    tmp_path: Path, redis_url: str
) -> None:
    with EmbeddedValkey(tmp_path / "aof", persistent=True) as good:
        code, out = await _run(
            "doctor", env=subprocess_env(ACCEPTD_REDIS_URL=good.url, ACCEPTD_MASTER_KEY=MASTER_KEY)
        )
        assert code == 0, out
        assert "all checks passed" in out
        assert "persistence (AOF): appendonly yes" in out
        # Unsafe settings are warnings: the deployment works, the operator is told.
        code, out = await _run(
            "doctor",
            env=subprocess_env(
                ACCEPTD_REDIS_URL=good.url,
                ACCEPTD_MASTER_KEY=MASTER_KEY,
                ACCEPTD_DEV="true",
                ACCEPTD_ALLOW_PRIVATE_CALLBACKS="true",
                ACCEPTD_RATE_LIMIT_PER_SECOND="0",
            ),
        )
        assert code == 0, out
        assert "WARN unsafe setting: ACCEPTD_DEV is set" in out
        assert "WARN unsafe setting: ACCEPTD_ALLOW_PRIVATE_CALLBACKS=true" in out
        assert "WARN unsafe setting: ACCEPTD_RATE_LIMIT_PER_SECOND=0" in out
        assert "3 warning(s)" in out
    # The test session's server runs without AOF, and no master key is given.
    code, out = await _run("doctor", env=subprocess_env(ACCEPTD_REDIS_URL=redis_url))
    assert code == 1
    assert "FAIL persistence (AOF)" in out
    assert "FAIL master key" in out
    # A durability promise the server cannot keep: every submit would be a 503.
    for level, named in (("fsync", "appendonly is off"), ("replica", "0 replica(s)")):
        code, out = await _run(
            "doctor", env=subprocess_env(ACCEPTD_REDIS_URL=redis_url, ACCEPTD_DURABILITY=level)
        )
        assert code == 1
        assert f"FAIL durability ({level}): " in out
        assert named in out
    with EmbeddedValkey(tmp_path / "unbounded", persistent=True, maxmemory=None) as unbounded:
        code, out = await _run(
            "doctor",
            env=subprocess_env(ACCEPTD_REDIS_URL=unbounded.url, ACCEPTD_MASTER_KEY=MASTER_KEY),
        )
        assert code == 1
        assert "FAIL memory limit: maxmemory is 0 (unlimited)" in out
    code, out = await _run(
        "doctor", env=subprocess_env(ACCEPTD_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    )
    assert code == 1
    assert "FAIL redis reachable" in out


async def test_healthcheck_verb(api_url: str) -> None:
    port = api_url.rsplit(":", 1)[1]
    assert (
        await _run("healthcheck", env=subprocess_env(ACCEPTD_PORT=port, ACCEPTD_METRICS_PORT="0"))
    )[0] == 0
    assert (
        await _run(
            "healthcheck",
            env=subprocess_env(ACCEPTD_PORT=str(free_port()), ACCEPTD_METRICS_PORT="0"),
        )
    )[0] == 1


@pytest.mark.timeout(60)
async def test_sigterm_lets_the_running_job_finish(
    client: TestClient[Any, Any], auth: dict[str, str], redis_url: str
) -> None:
    response = await client.post(
        "/v1/jobs",
        json={"type": "demo.echo", "input": {"value": 1, "delay_ms": 1500}},
        headers=auth,
    )
    job = await response.json()
    env = subprocess_env(
        ACCEPTD_REDIS_URL=redis_url,
        ACCEPTD_MASTER_KEY=MASTER_KEY,
        ACCEPTD_METRICS_PORT="0",
        ACCEPTD_SHUTDOWN_GRACE_SECONDS="10",
    )
    process = await asyncio.create_subprocess_exec(
        *ACCEPTD,
        "worker",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )

    async def running() -> bool:
        body = await (await client.get(job["links"]["self"], headers=auth)).json()
        return bool(body["status"] == "running")

    await wait_until(running, timeout=20)
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 20) == 0
    final = await (await client.get(job["links"]["self"], headers=auth)).json()
    assert final["status"] == "succeeded"  # finished within the grace, not cut off


def test_arq_connections_keep_the_urls_tls_options() -> None:
    from acceptd.store.connection import arq_settings

    url = "rediss://:pw@redis.internal:6380/3?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required&ssl_check_hostname=true"
    arq = arq_settings(Settings(redis_url=url))
    assert arq.ssl is True
    assert (arq.host, arq.port, arq.database, arq.password) == ("redis.internal", 6380, 3, "pw")
    assert arq.ssl_ca_certs == "/etc/ca.pem"
    assert arq.ssl_cert_reqs == "required"
    assert arq.ssl_check_hostname is True

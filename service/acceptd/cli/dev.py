"""`acceptd dev`: an embedded Valkey, the API, a worker and the dispatcher in one process."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import shlex
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web
from pydantic import SecretStr

from acceptd.api import state
from acceptd.api.app import create_app, handler_options
from acceptd.cli.devfiles import DevFiles
from acceptd.cli.embedded import EmbeddedValkey
from acceptd.cli.topologies import EmbeddedCluster, dev_cluster
from acceptd.core import logs, tracing
from acceptd.core.settings import Settings
from acceptd.dispatcher.role import create_dispatcher
from acceptd.jobs.registry import JobRegistry
from acceptd.runtime.eventloop import install_stop_signals, use_fastest_loop
from acceptd.runtime.stopping import stop_gracefully
from acceptd.store.bootstrap import BOOTSTRAP_TENANT
from acceptd.worker.role import create_worker

log = logging.getLogger(__name__)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=f":***@{parts.hostname}:{parts.port}"))


def _secret_or(value: SecretStr | None, default: str) -> str:
    return value.get_secret_value() if value is not None else default


# The shards of `dev --cluster` (four or more per primary: store/keys.py).
DEV_CLUSTER_SHARDS = 16


def run_dev(
    settings: Settings, host: str, port: int | None, data_dir: Path, *, cluster: bool = False
) -> None:
    logs.configure(json_lines=False, role="dev")
    tracing.configure("dev")
    files = DevFiles(data_dir)
    files.ensure_private_dir()
    server: EmbeddedValkey | EmbeddedCluster | None = None
    if settings.redis_url is None:
        password = secrets.token_urlsafe(24)
        server = (
            dev_cluster(data_dir / "cluster", password=password)
            if cluster
            else EmbeddedValkey(data_dir / "valkey", password=password)
        )
        server.start()
        files.write_redis_url(server.url)
    # ACCEPTD_BOOTSTRAP_API_KEY / _SECRET win, each on its own; what is unset comes from
    # the data dir, made once and kept across restarts.
    stored_key, stored_secret = files.credentials()
    api_key = _secret_or(settings.bootstrap_api_key, stored_key)
    secret = _secret_or(settings.bootstrap_secret, stored_secret)
    settings = settings.model_copy(
        update={
            # A laptop's receivers listen on loopback. Only `dev` does this: no variable
            # turns a production role into a dev one.
            "allow_private_callbacks": settings.allow_private_callbacks
            if "allow_private_callbacks" in settings.model_fields_set
            else True,
            # One process for every role: one metrics server at most, and only when asked.
            "metrics_port": settings.metrics_port or 0,
            "redis_url": server.url if server else settings.redis_url,
            "shards": settings.shards
            if "shards" in settings.model_fields_set or not cluster
            else DEV_CLUSTER_SHARDS,
            "master_key": settings.master_key or files.master_key(),
            "bootstrap_api_key": SecretStr(api_key),
            "bootstrap_secret": SecretStr(secret),
            # The embedded server keeps an append-only file: a 202 waits for its fsync
            # (bench.durability: about 0.2 ms at the median), so a laptop that crashes
            # loses no job it acknowledged.
            "durability": settings.durability
            if "durability" in settings.model_fields_set or server is None
            else "fsync",
            # The laptop's owner runs the whole system: the console shows its queues.
            "bootstrap_operator": settings.bootstrap_operator
            if "bootstrap_operator" in settings.model_fields_set
            else True,
        }
    )
    use_fastest_loop(settings)
    try:
        asyncio.run(_serve(settings, files, host, settings.port if port is None else port))
    finally:
        files.clear_running()
        if server is not None:
            server.stop()
            files.clear_redis_url()


async def _serve(settings: Settings, files: DevFiles, host: str, port: int) -> None:
    registry = JobRegistry.from_modules(settings.job_modules)
    app = create_app(settings, registry)
    runner = web.AppRunner(app, **handler_options(settings))
    await runner.setup()
    # The tenant's secret now, not the bootstrap one: a rotation since is kept.
    secret = (await app[state.TENANTS].signing_secrets(BOOTSTRAP_TENANT))[0]
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    api_url = f"http://{bound_host}:{bound_port}"

    worker = create_worker(settings, registry, handle_signals=False)
    dispatcher = create_dispatcher(settings, handle_signals=False)
    roles = [
        asyncio.create_task(worker.async_run(), name="worker"),
        asyncio.create_task(dispatcher.async_run(), name="dispatcher"),
    ]
    assert settings.bootstrap_api_key is not None
    api_key = settings.bootstrap_api_key.get_secret_value()
    files.write_running(api_url, api_key)  # the client verbs run beside us find us there
    print(
        f"\nacceptd dev is running\n"
        f"  API:            {api_url}  (OpenAPI: {api_url}/v1/openapi.json)\n"
        f"  API key:        {api_key}\n"
        f"  signing secret: {secret}\n"
        f"  Redis:          {_without_password(settings.redis_url or '')}\n\n"
        f"Submit a job:\n  {curl_example(api_url, api_key)}\n"
        f"then poll the Location it answers with. Ctrl-C stops everything.\n",
        flush=True,
    )
    stop = asyncio.Event()
    install_stop_signals(stop)
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([stopped, *roles], return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping: in-flight work has %s s to finish", settings.shutdown_grace_seconds)
    await asyncio.gather(
        stop_gracefully(worker, roles[0], settings.shutdown_grace_seconds),
        stop_gracefully(dispatcher, roles[1], settings.shutdown_grace_seconds),
    )
    stopped.cancel()
    await runner.cleanup()


def curl_example(api_url: str, api_key: str) -> str:
    body = json.dumps({"type": "demo.echo", "input": {"value": "hello", "delay_ms": 500}})
    return (
        f"curl -i -X POST {api_url}/v1/jobs -H {shlex.quote('Authorization: Bearer ' + api_key)} "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )

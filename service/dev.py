"""`acceptd dev`: an embedded Valkey, the API, a worker and the dispatcher in one process."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr

from service import logs
from service.api.app import create_app
from service.arqstop import stop_gracefully
from service.cli import curl_example
from service.embedded import EmbeddedValkey, ping
from service.eventloop import install_stop_signals, use_fastest_loop
from service.jobs.registry import JobRegistry
from service.jobs.worker import create_worker
from service.secretbox import generate_master_key
from service.settings import Settings
from service.store.tenants import generate_api_key
from service.webhooks.dispatcher import create_dispatcher
from service.webhooks.signing import generate_secret

log = logging.getLogger(__name__)


class DevFiles:
    """What `dev` keeps in its data dir so that a restart finds the same keys and data."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def _private(self, name: str, make: str) -> str:
        path = self.data_dir / name
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(make)
        return path.read_text().strip()

    def master_key(self) -> SecretStr:
        return SecretStr(self._private("master.key", generate_master_key()))

    def credentials(self) -> tuple[str, str]:
        fresh = json.dumps({"api_key": generate_api_key(), "secret": generate_secret()})
        stored = json.loads(self._private("credentials.json", fresh))
        return stored["api_key"], stored["secret"]

    @property
    def _url_file(self) -> Path:
        return self.data_dir / "redis.url"

    def write_redis_url(self, url: str) -> None:
        self._url_file.write_text(url)

    def clear_redis_url(self) -> None:
        self._url_file.unlink(missing_ok=True)

    def running_redis_url(self) -> str | None:
        if not self._url_file.exists():
            return None
        url = self._url_file.read_text().strip()
        host_port = url.removeprefix("redis://").split("/")[0]
        host, _, port = host_port.rpartition(":")
        return url if ping(host, int(port)) else None


def run_dev(settings: Settings, host: str, port: int | None, data_dir: Path) -> None:
    logs.configure(json_lines=False, role="dev")
    files = DevFiles(data_dir)
    server: EmbeddedValkey | None = None
    if settings.redis_url is None:
        server = EmbeddedValkey(data_dir / "valkey")
        server.start()
        files.write_redis_url(server.url)
    if settings.bootstrap_api_key and settings.bootstrap_secret:
        api_key = settings.bootstrap_api_key.get_secret_value()
        secret = settings.bootstrap_secret.get_secret_value()
    else:
        api_key, secret = files.credentials()
    settings = settings.model_copy(
        update={
            "dev": True,
            "metrics_port": 0,  # one process: the API's /metrics already shows every role
            "redis_url": server.url if server else settings.redis_url,
            "master_key": settings.master_key or files.master_key(),
            "bootstrap_api_key": SecretStr(api_key),
            "bootstrap_secret": SecretStr(secret),
        }
    )
    use_fastest_loop(settings)
    try:
        asyncio.run(_serve(settings, host, settings.port if port is None else port, secret))
    finally:
        if server is not None:
            server.stop()
            files.clear_redis_url()


async def _serve(settings: Settings, host: str, port: int, secret: str) -> None:
    registry = JobRegistry.from_modules(settings.job_modules)
    runner = web.AppRunner(create_app(settings, registry))
    await runner.setup()
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
    print(
        f"\nacceptd dev is running\n"
        f"  API:            {api_url}  (OpenAPI: {api_url}/v1/openapi.json)\n"
        f"  API key:        {api_key}\n"
        f"  signing secret: {secret}\n"
        f"  Redis:          {settings.redis_url}\n\n"
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

"""Starts and stops the processes a bench run measures, each as its own OS process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from acceptd.cli.embedded import EmbeddedValkey, free_port
from acceptd.core.credentials import generate_api_key, generate_master_key
from acceptd.webhooks.signing import generate_secret

API_KEY = generate_api_key()  # one process starts and drives every role: made once here


@dataclass
class Cluster:
    workdir: Path
    secret: str = field(default_factory=generate_secret)
    master_key: str = field(default_factory=generate_master_key)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    valkey: EmbeddedValkey | None = None
    # The roles reach Valkey through a proxy of their own (bench/hop.py): a stand-in for a
    # network between them. The bench's own reads go to Valkey directly.
    redis_hop: bool = False
    roles_redis_url: str = ""

    def start_valkey(self, **config: str) -> str:
        # AOF on, as in production: its cost belongs in the figures.
        self.valkey = EmbeddedValkey(self.workdir / "valkey", persistent=True, extra_config=config)
        self.valkey.start()
        if self.redis_hop:
            listen = port()
            to = str(self.valkey.port)
            self.spawn("redis-hop", "-m", "bench.hop", "--listen", str(listen), "--to", to)
            wait_for_port(listen)
            self.roles_redis_url = self.valkey.url.replace(f":{to}/", f":{listen}/")
        return self.valkey.url

    @property
    def redis_url(self) -> str:
        assert self.valkey is not None
        return self.valkey.url

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACCEPTD_")}
        env.update(
            # Given when the store is not this Cluster's own server (a Valkey Cluster).
            ACCEPTD_REDIS_URL=extra.pop("ACCEPTD_REDIS_URL", "")
            or self.roles_redis_url
            or self.redis_url,
            ACCEPTD_MASTER_KEY=self.master_key,
            ACCEPTD_BOOTSTRAP_API_KEY=API_KEY,
            ACCEPTD_BOOTSTRAP_SECRET=self.secret,
            ACCEPTD_ALLOW_PRIVATE_CALLBACKS="true",
            ACCEPTD_HOST="127.0.0.1",
            ACCEPTD_METRICS_PORT="0",  # several roles share this host
            # One tenant submits thousands a second here: measure the service, not the limiter.
            ACCEPTD_RATE_LIMIT_PER_SECOND="0",
            ACCEPTD_MAX_WAITERS_PER_TENANT="5000",  # one tenant holds every waiting client
        )
        env.update(extra)
        return env

    def spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        self.processes[name] = subprocess.Popen(
            [sys.executable, *args], env=env or self.env(), stdout=log, stderr=subprocess.STDOUT
        )

    def pause(self, *names: str) -> None:
        """SIGSTOP: a process not under measurement takes no CPU from the one that is."""
        for name in names:
            self.processes[name].send_signal(signal.SIGSTOP)

    def resume(self, *names: str) -> None:
        for name in names:
            self.processes[name].send_signal(signal.SIGCONT)

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGCONT)
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def stop_all(self) -> None:
        # The roles' way to Valkey goes last: they stop without losing it.
        for name in sorted(self.processes, key=lambda name: name == "redis-hop"):
            self.stop(name)
        if self.valkey is not None:
            self.valkey.stop()

    def peak_rss_mb(self, name: str) -> float:
        """VmHWM: the most resident memory the process ever had."""
        status = Path(f"/proc/{self.processes[name].pid}/status").read_text()
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
        return kb / 1024

    def cpu_seconds(self, name: str) -> float:
        """User + system CPU the process has used so far."""
        fields = (
            Path(f"/proc/{self.processes[name].pid}/stat").read_text().rsplit(")", 1)[1].split()
        )
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def valkey_cpu_seconds(self) -> tuple[float, float]:
        """(its main thread, all its threads): Valkey runs commands on the main thread only;
        I/O threads read, parse and write around it."""
        assert self.valkey is not None
        assert self.valkey._process is not None
        pid = self.valkey._process.pid

        def cpu(stat: Path) -> float:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        return cpu(Path(f"/proc/{pid}/task/{pid}/stat")), cpu(Path(f"/proc/{pid}/stat"))

    def valkey_peak_rss_mb(self) -> float:
        assert self.valkey is not None
        assert self.valkey._process is not None
        status = Path(f"/proc/{self.valkey._process.pid}/status").read_text()
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
        return kb / 1024


def start_roles(cluster: Cluster, **env: str) -> str:
    """Valkey, `acceptd api`, a worker and a dispatcher, each its own process (given `env`
    on top of the cluster's), ready: the API's URL."""
    cluster.start_valkey()
    api_port = port()
    cluster.spawn("api", "-m", "acceptd", "api", env=cluster.env(ACCEPTD_PORT=str(api_port), **env))
    cluster.spawn("worker", "-m", "acceptd", "worker", env=cluster.env(**env))
    cluster.spawn("dispatcher", "-m", "acceptd", "dispatcher", env=cluster.env(**env))
    wait_for_port(api_port)
    time.sleep(1)  # the worker and dispatcher connect
    return f"http://127.0.0.1:{api_port}"


def spawn_with_receiver(cluster: Cluster, **env: str) -> tuple[str, str]:
    """The bench's verifying receiver, `acceptd api`, a worker and a dispatcher, each its
    own process (given `env` on top of the cluster's), listening: (the API's URL, the
    receiver's). The store must be running."""
    api_port, receiver_port = port(), port()
    cluster.spawn("receiver", "-m", "bench.receiver", "--port", str(receiver_port),
                  "--secret", cluster.secret, env=cluster.env(**env))  # fmt: skip
    cluster.spawn("api", "-m", "acceptd", "api", env=cluster.env(ACCEPTD_PORT=str(api_port), **env))
    cluster.spawn("worker", "-m", "acceptd", "worker", env=cluster.env(**env))
    cluster.spawn("dispatcher", "-m", "acceptd", "dispatcher", env=cluster.env(**env))
    for port_number in (api_port, receiver_port):
        wait_for_port(port_number)
    return f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{receiver_port}"


async def serve_receiver(
    hook: Callable[[web.Request], Awaitable[web.Response]],
) -> tuple[web.AppRunner, int]:
    """A webhook receiver in the bench's own process, answering every POST with `hook`:
    (its runner, to clean up, and its port)."""
    app = web.Application()
    app.router.add_post("/{tail:.*}", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    receiver_port = port()
    await web.TCPSite(runner, "127.0.0.1", receiver_port).start()
    return runner, receiver_port


def port() -> int:
    return free_port()


def wait_for_port(port_number: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port_number), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port_number} after {timeout}s")

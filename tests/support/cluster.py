"""Real processes for fault tests: a Valkey of the test's own, the three roles as
`python -m acceptd <role>` subprocesses, and a verifying receiver that can go away."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from acceptd.cli.embedded import EmbeddedValkey, free_port
from acceptd.client import AcceptdError, Client
from acceptd.webhooks.signing import WebhookVerificationError, verify
from tests.support.constants import (
    API_KEY,
    JOB_MODULES,
    MASTER_KEY,
    SECRET,
    TEST_SHARDS,
    TEST_TOPOLOGY,
    subprocess_env,
)
from tests.support.waiting import wait_until

TERMINAL = ("succeeded", "failed", "canceled")


def listening_port(host: str = "127.0.0.1") -> int:
    """A free port below the kernel's ephemeral range, for a server that binds it later.
    free_port's come from that range, where any outgoing connection may take one as its local
    port in the meantime: likely once a test opens hundreds (a cluster's nodes talking to
    each other, role processes with a client per shard)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as ranges:
            low = int(ranges.read().split()[0])
    except (OSError, ValueError, IndexError):
        return free_port(host)
    while low > 10_000:
        port = random.randrange(10_000, low)  # random: tests running side by side pick apart
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    return free_port(host)


class VerifyingReceiver:
    """Records each verified webhook by its subject's id; can be taken down and brought back
    on its port. Requests to /hang (while `hang_remaining` lasts) outlast the sender's timeout."""

    def __init__(self, port: int | None = None, secret: str = SECRET) -> None:
        self.port = port or free_port()
        self.secret = secret
        self.by_subject: Counter[str] = Counter()
        self.arrived_at: dict[str, float] = {}
        self.forged = 0
        self.hang_remaining = 0
        self.traceparents: dict[str, list[str | None]] = {}
        self._runner: web.AppRunner | None = None

    def url(self, path: str = "/ok") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(self.secret, request.headers, body)
        except WebhookVerificationError:
            self.forged += 1
            return web.Response(status=401)
        if request.path == "/hang" and self.hang_remaining > 0:
            self.hang_remaining -= 1
            await asyncio.sleep(4)  # longer than the webhook timeout: the attempt must fail
        subject = json.loads(body)["data"]["id"]
        self.traceparents.setdefault(subject, []).append(request.headers.get("traceparent"))
        self.by_subject[subject] += 1
        self.arrived_at.setdefault(subject, time.monotonic())
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

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.by_subject.values())


def role_env(redis_url: str, api_port: int, **extra: str) -> dict[str, str]:
    """What every role of a test cluster gets: production defaults (job timeout, leases)
    unless the test says otherwise, loopback callbacks allowed, no metrics ports."""
    defaults = {
        "ACCEPTD_REDIS_URL": redis_url,
        "ACCEPTD_MASTER_KEY": MASTER_KEY,
        "ACCEPTD_HOST": "127.0.0.1",
        "ACCEPTD_PORT": str(api_port),
        "ACCEPTD_BOOTSTRAP_API_KEY": API_KEY,
        "ACCEPTD_BOOTSTRAP_SECRET": SECRET,
        "ACCEPTD_ALLOW_PRIVATE_CALLBACKS": "true",
        "ACCEPTD_JOB_MODULES": ",".join(JOB_MODULES),
        "ACCEPTD_METRICS_PORT": "0",
        "ACCEPTD_RATE_LIMIT_PER_SECOND": "0",
        "ACCEPTD_WEBHOOK_TIMEOUT_SECONDS": "2",
        "ACCEPTD_WEBHOOK_RETRY_SCHEDULE": "1,1,2,2,3,3,5,5,8",
        "ACCEPTD_SHUTDOWN_GRACE_SECONDS": "3",
    }
    return subprocess_env(**{**defaults, **extra})


class Roles:
    """Role subprocesses by name, each logging to its own file under `logs`."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.files: list[Any] = []

    def start(self, name: str, role: str, **extra_env: str) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop_all
        self.files.append(log)
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "acceptd", role],
            env={**self.env, **extra_env},
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

    def log_tail(self, name: str, lines: int = 30) -> str:
        text = (self.logs / f"{name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


class Store(Protocol):
    """What the roles of a test cluster run on: one server, or a topology of several."""

    @property
    def url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


def on_test_topology(cluster: Cluster) -> Cluster:
    """The test cluster's roles on ACCEPTD_TEST_TOPOLOGY's store: its own embedded Valkey
    Cluster (three primaries with a replica each, ACCEPTD_TEST_SHARDS shards) when that
    says `cluster`, its one Valkey otherwise. For the fault tests that kill roles, not
    Redis: `make test-cluster` runs them on a cluster too."""
    if TEST_TOPOLOGY == "cluster":
        from tests.support import topologies

        cluster.store = topologies.cluster(cluster.tmp / "topology")
        cluster.env.setdefault("ACCEPTD_SHARDS", str(TEST_SHARDS))
    return cluster


class Cluster:
    """A Valkey with AOF, the three roles, a receiver, and a client of the API."""

    def __init__(self, tmp: Path, **env: str) -> None:
        self.valkey = EmbeddedValkey(tmp / "valkey", persistent=True)
        # What the roles run on: that Valkey, unless a test sets a topology of its own
        # (a Sentinel group) before entering.
        self.store: Store = self.valkey
        self.api_port = free_port()
        self.receiver = VerifyingReceiver()
        self.tmp = tmp
        self.env = env
        self.roles: Roles
        self.client: Client

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    async def __aenter__(self) -> Cluster:
        self.store.start()
        self.roles = Roles(role_env(self.store.url, self.api_port, **self.env), self.tmp)
        for role in ("api", "worker", "dispatcher"):
            self.roles.start(role, role)
        await self.receiver.up()
        self.client = Client(self.api_url, API_KEY, max_retries=8, backoff_cap=2)

        async def up() -> bool:
            try:
                await self.client.list(limit=1)
                return True
            except AcceptdError:
                return False

        try:
            await wait_until(up, timeout=30, interval=0.2)
        except AssertionError as exc:
            logs = "\n".join(f"--- {n}\n{self.roles.log_tail(n)}" for n in self.roles.processes)
            await self.__aexit__()
            raise AssertionError(f"the cluster did not come up: {exc}\n{logs}") from exc
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()
        self.roles.stop_all()
        await self.receiver.down()
        self.store.stop()

    async def statuses(self, job_ids: list[str]) -> Counter[str]:
        found: Counter[str] = Counter()
        for job_id in job_ids:
            found[(await self.client.get(job_id)).status] += 1
        return found

    async def all_terminal(self, job_ids: list[str]) -> bool:
        counts = await self.statuses(job_ids)
        return sum(counts[s] for s in TERMINAL) == len(job_ids)

    def missing_webhooks(self, job_ids: list[str]) -> set[str]:
        return set(job_ids) - set(self.receiver.by_subject)

"""The README's production roles, started with default settings on one machine, all run;
a port another process holds is said in one line."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from acceptd.cli.embedded import free_port
from acceptd.core.settings import DEFAULT_METRICS_PORTS, Settings
from tests.support.cli import ACCEPTD
from tests.support.cluster import Roles
from tests.support.constants import MASTER_KEY, subprocess_env
from tests.support.waiting import healthy, wait_until


def test_no_two_roles_claim_the_same_default_port() -> None:
    settings = Settings()
    ports = [settings.port, *(settings.metrics_port_for(r) for r in DEFAULT_METRICS_PORTS)]
    assert len(set(ports)) == len(ports)


@pytest.mark.timeout(90)
async def test_every_role_runs_with_defaults_on_one_host(tmp_path: Path, redis_url: str) -> None:
    defaults = Settings()
    roles = Roles(
        subprocess_env(ACCEPTD_REDIS_URL=redis_url, ACCEPTD_MASTER_KEY=MASTER_KEY), tmp_path
    )
    try:
        for role in ("api", "worker", "dispatcher"):
            roles.start(role, role)
        for port in (defaults.port, *(defaults.metrics_port_for(r) for r in roles.processes)):
            await wait_until(lambda port=port: healthy(port), timeout=30, interval=0.2)
        # The API's metrics are on its metrics port, not on the public one.
        assert await healthy(defaults.metrics_port_for("api"), "/metrics")
        assert not await healthy(defaults.port, "/metrics")
        for name, process in roles.processes.items():
            assert process.poll() is None, roles.log_tail(name)
    finally:
        roles.stop_all()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("role", ["worker", "dispatcher", "api"])
async def test_a_taken_metrics_port_is_one_clear_line(role: str, redis_url: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", free_port()))
        holder.listen()
        port = holder.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            *ACCEPTD,
            role,
            env=subprocess_env(
                ACCEPTD_REDIS_URL=redis_url,
                ACCEPTD_MASTER_KEY=MASTER_KEY,
                ACCEPTD_HOST="127.0.0.1",
                ACCEPTD_PORT=str(free_port()),
                ACCEPTD_METRICS_PORT=str(port),
            ),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), 30)
    text = err.decode()
    assert process.returncode == 1
    assert "Traceback" not in text
    assert f"acceptd {role}: metrics port {port} on 127.0.0.1 is in use" in text.splitlines()[-1]

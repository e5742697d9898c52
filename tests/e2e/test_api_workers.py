"""`acceptd api --workers N`: N processes on one port, a dead one replaced, all stopped
together by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import aiohttp

from acceptd.cli.embedded import EmbeddedValkey, free_port
from tests.support.cli import ACCEPTD
from tests.support.cluster import role_env
from tests.support.http import authed_session
from tests.support.waiting import wait_until


def _start(port: int, redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [*ACCEPTD, "api", "--workers", "2"],
            env=role_env(redis_url, port),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _gone(pids: set[int]) -> bool:
    """Reaped: no orphan and no zombie left."""
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)


def _children(pid: int) -> set[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in found.read_text().split()} if found.exists() else set()


async def test_processes_share_the_port_and_are_supervised(tmp_path: Path) -> None:
    valkey = EmbeddedValkey(tmp_path / "valkey", persistent=False)
    valkey.start()
    port = free_port()
    parent = _start(port, valkey.url, tmp_path / "api.log")
    url = f"http://127.0.0.1:{port}"
    try:
        async with authed_session() as http:

            async def ready() -> bool:
                try:
                    async with http.get(f"{url}/readyz") as answer:
                        return answer.status == 200 and len(_children(parent.pid)) == 2
                except aiohttp.ClientError:
                    return False

            await wait_until(ready, timeout=30)

            async def submit(index: int) -> int:
                body = {"type": "demo.echo", "input": {"value": index}}
                async with http.post(f"{url}/v1/jobs", json=body) as answer:
                    return answer.status

            statuses = await asyncio.gather(*(submit(i) for i in range(200)))
            assert set(statuses) == {202}

            first = _children(parent.pid)
            victim = min(first)
            os.kill(victim, signal.SIGKILL)

            async def replaced() -> bool:
                now = _children(parent.pid)
                return len(now) == 2 and victim not in now

            await wait_until(replaced, timeout=20)
            await wait_until(ready, timeout=20)
            assert await submit(1) == 202
        survivors = _children(parent.pid)
        parent.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(parent.wait, 30) == 0
        assert _gone(survivors)
    finally:
        if parent.poll() is None:
            parent.kill()
        valkey.stop()

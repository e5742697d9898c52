"""The `acceptd` command as a user runs it: real processes, real ports."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import signal
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from acceptd.cli.embedded import free_port
from tests.support.cli import ACCEPTD, run_cli
from tests.support.constants import MASTER_KEY, subprocess_env
from tests.support.waiting import wait_until


async def test_keygen_prints_a_usable_master_key() -> None:
    code, out, _ = await run_cli("keygen", env=subprocess_env())
    assert code == 0
    assert len(base64.b64decode(out.strip())) == 32


async def test_tenants_create_json_then_the_key_works(redis_url: str) -> None:
    env = subprocess_env(ACCEPTD_REDIS_URL=redis_url, ACCEPTD_MASTER_KEY=MASTER_KEY)
    code, out, err = await run_cli("tenants", "create", "acme", "--json", env=env)
    assert code == 0, err
    created = json.loads(out)
    assert set(created) == {"tenant", "api_key", "secret"}
    assert created["tenant"] == "acme"
    assert created["secret"].startswith("whsec_")

    from acceptd.core.secretbox import SecretBox
    from acceptd.core.settings import Settings
    from acceptd.store.connection import connect
    from acceptd.store.tenants import TenantStore

    conn = connect(Settings(redis_url=redis_url))
    try:
        store = TenantStore(conn, SecretBox(MASTER_KEY))
        identity = await store.keys.identify(created["api_key"])
        assert identity is not None
        assert identity.tenant == "acme"
        assert await store.signing_secrets("acme") == [created["secret"]]
        raw = await conn.hgetall("acceptd:tenant:acme")  # type: ignore[misc]
        assert created["api_key"] not in json.dumps(raw)  # hashed
        assert created["secret"] not in json.dumps(raw)  # encrypted
    finally:
        await conn.aclose()

    code, _, err = await run_cli("tenants", "create", "acme", env=env)
    assert code != 0
    assert "already exists" in err


async def test_tenants_list_keys_and_rotate_secret(redis_url: str) -> None:
    env = subprocess_env(ACCEPTD_REDIS_URL=redis_url, ACCEPTD_MASTER_KEY=MASTER_KEY)
    code, out, err = await run_cli("tenants", "create", "zeta", "--json", env=env)
    assert code == 0, err
    created = json.loads(out)
    code, out, err = await run_cli("tenants", "list", "--json", env=env)
    assert code == 0, err
    assert "zeta" in json.loads(out)["tenants"]
    code, out, err = await run_cli("tenants", "keys", "zeta", "--json", env=env)
    assert code == 0, err
    [key] = json.loads(out)["keys"]
    assert (key["name"], key["scope"]) == ("default", "admin")
    assert created["api_key"] not in out  # only names, scopes and times
    code, out, err = await run_cli("tenants", "rotate-secret", "zeta", "--json", env=env)
    assert code == 0, err
    rotated = json.loads(out)["secret"]
    assert rotated.startswith("whsec_")
    assert rotated != created["secret"]
    code, _, err = await run_cli("tenants", "keys", "nobody", env=env)
    assert code != 0
    assert "no tenant 'nobody'" in err


async def test_only_the_operators_cli_makes_an_operator_key(redis_url: str) -> None:
    """The one way to an operator key (the whole system in /v1/system) is the store's
    owner running `acceptd tenants operator-key`; POST /v1/api-keys refuses the scope."""
    env = subprocess_env(ACCEPTD_REDIS_URL=redis_url, ACCEPTD_MASTER_KEY=MASTER_KEY)
    code, out, err = await run_cli("tenants", "create", "ops", "--json", env=env)
    assert code == 0, err
    code, out, err = await run_cli("tenants", "operator-key", "ops", "--json", env=env)
    assert code == 0, err
    made = json.loads(out)
    assert made["scope"] == "operator"
    assert made["api_key"].startswith("acc_")
    code, out, err = await run_cli("tenants", "keys", "ops", "--json", env=env)
    assert sorted(k["scope"] for k in json.loads(out)["keys"]) == ["admin", "operator"]


async def test_invalid_setting_is_named_at_start() -> None:
    code, _, err = await run_cli("api", env=subprocess_env(ACCEPTD_PORT="eighty"))
    assert code != 0
    assert "ACCEPTD_PORT" in err


async def test_roles_refuse_to_start_without_a_master_key(redis_url: str) -> None:
    code, _, err = await run_cli(
        "tenants", "create", "x", env=subprocess_env(ACCEPTD_REDIS_URL=redis_url)
    )
    assert code != 0
    assert "ACCEPTD_MASTER_KEY" in err


class Dev:
    """A running `acceptd dev` subprocess."""

    def __init__(self, process: asyncio.subprocess.Process, banner: str) -> None:
        self.process = process
        self.banner = banner
        self.api_url = re.search(r"API:\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
        self.api_key = re.search(r"API key:\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
        self.redis_port = int(re.search(r"Redis:\s+redis://:\*\*\*@[\d.]+:(\d+)", banner).group(1))  # type: ignore[union-attr]


async def start_dev(
    data_dir: Path,
    cwd: Path | None = None,
    log_to: Path | None = None,
    *flags: str,
    **env: str,
) -> Dev:
    """`acceptd dev` until its banner; its log (stderr) goes to `log_to`, if given."""
    command = [*ACCEPTD, "dev", "--port", str(free_port()), "--data-dir", str(data_dir), *flags]
    stderr: Any = log_to.open("wb") if log_to else asyncio.subprocess.DEVNULL
    process = await asyncio.create_subprocess_exec(
        *command, env=subprocess_env(**env), cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=stderr
    )
    if log_to:
        stderr.close()  # the child holds its own copy
    assert process.stdout is not None
    banner = ""
    async with asyncio.timeout(30):
        while "Ctrl-C" not in banner:
            line = await process.stdout.readline()
            if not line:
                raise AssertionError(f"dev exited early: {banner}")
            banner += line.decode()
    return Dev(process, banner)


def valkey_running(port: int) -> bool:
    from acceptd.cli.embedded import ping

    return ping("127.0.0.1", port)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.mark.timeout(120)
async def test_dev_runs_the_readme_flow_and_keeps_data_across_restarts(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    dev = await start_dev(tmp_path / "data")
    assert "curl -i -X POST" in dev.banner
    assert "whsec_" in dev.banner
    headers = {"Authorization": f"Bearer {dev.api_key}"}
    body = {"type": "demo.echo", "input": {"value": "hello", "delay_ms": 100}}
    async with session.post(f"{dev.api_url}/v1/jobs", json=body, headers=headers) as response:
        assert response.status == 202
        location = response.headers["Location"]

    async def finished() -> Any:
        async with session.get(f"{dev.api_url}{location}", headers=headers) as response:
            return (await response.json()) if response.status == 200 else None

    job = await wait_until(finished)
    assert job["status"] == "succeeded"
    assert job["result"] == {"value": "hello"}

    dev.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(dev.process.wait(), 20) == 0
    assert not valkey_running(dev.redis_port)

    again = await start_dev(tmp_path / "data")
    assert again.api_key == dev.api_key  # same credentials from the data dir
    async with session.get(f"{again.api_url}{location}", headers=headers) as response:
        assert response.status == 200  # the AOF brought the job back
    again.process.kill()  # even SIGKILL leaves no orphan server behind
    await again.process.wait()

    async def server_gone() -> bool:
        return not valkey_running(again.redis_port)

    await wait_until(server_gone, timeout=10)


@pytest.mark.timeout(120)
async def test_dev_cluster_spreads_one_tenants_jobs_over_every_primary(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """`acceptd dev --cluster`: a three-primary cluster on the laptop, 16 shards, and one
    tenant's jobs land on every primary (each primary holds some of its job records)."""
    import redis as sync_redis

    data = tmp_path / "data"
    dev = await start_dev(data, None, None, "--cluster")
    try:
        headers = {"Authorization": f"Bearer {dev.api_key}"}
        locations = []
        for value in range(24):
            body = {"type": "demo.echo", "input": {"value": value}}
            async with session.post(f"{dev.api_url}/v1/jobs", json=body, headers=headers) as sent:
                assert sent.status == 202
                locations.append(sent.headers["Location"])

        async def all_done() -> bool:
            for location in locations:
                async with session.get(f"{dev.api_url}{location}", headers=headers) as got:
                    if (await got.json())["status"] != "succeeded":
                        return False
            return True

        await wait_until(all_done, timeout=30)
        url = (data / "redis.url").read_text().strip()
        password = urlsplit(url).password
        with sync_redis.Redis.from_url(url, decode_responses=True) as seed:
            nodes = seed.execute_command("CLUSTER", "NODES")
        primaries = [
            line.split()[1].split("@")[0]
            for line in nodes.splitlines()
            if "master" in line.split()[2]
        ]
        assert len(primaries) == 3
        holding = 0
        for address in primaries:
            host, _, port = address.rpartition(":")
            with sync_redis.Redis(host=host, port=int(port), password=password) as node:
                holding += bool(list(node.scan_iter(match="acceptd:*:job:job_*", count=1000)))
        assert holding == 3
    finally:
        dev.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(dev.process.wait(), 30) == 0


@pytest.mark.timeout(90)
async def test_dev_honours_the_bootstrap_key_and_the_client_verbs_find_it(tmp_path: Path) -> None:
    """ACCEPTD_BOOTSTRAP_API_KEY alone is used (the secret comes from the data dir), and a
    client verb run in the same folder finds this dev's URL and key, on whatever port."""
    chosen = "acc_chosen-by-the-operator-Kq3vT9xLm2"
    dev = await start_dev(Path(".acceptd"), cwd=tmp_path, ACCEPTD_BOOTSTRAP_API_KEY=chosen)
    try:
        assert dev.api_key == chosen
        assert stat.S_IMODE((tmp_path / ".acceptd").stat().st_mode) == 0o700
        submit = ("submit", "demo.echo", "--input", '{"value": 7}', "--wait", "--json")
        code, out, err = await run_cli(*submit, env=subprocess_env(), cwd=tmp_path, within=60)
        assert code == 0, err
        assert json.loads(out)["result"] == {"value": 7}
    finally:
        dev.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(dev.process.wait(), 20)
    assert not (tmp_path / ".acceptd" / "running.json").exists()  # a stopped dev is not found


@pytest.mark.timeout(90)
async def test_the_embedded_valkey_of_dev_requires_a_password(tmp_path: Path) -> None:
    """Another local user, or a web page making requests to localhost, gets nothing from
    the dev store: it answers NOAUTH, and the password is in no banner and no log line."""
    log = tmp_path / "dev.log"
    dev = await start_dev(tmp_path / "data", log_to=log)
    try:
        assert "***" in dev.banner
        reader, writer = await asyncio.open_connection("127.0.0.1", dev.redis_port)
        writer.write(b"*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n")
        await writer.drain()
        assert (await reader.readline()).startswith(b"-NOAUTH")
        writer.close()
        url_file = tmp_path / "data" / "redis.url"
        assert stat.S_IMODE(url_file.stat().st_mode) == 0o600
        password = urlsplit(url_file.read_text().strip()).password
        assert password
    finally:
        dev.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(dev.process.wait(), 20)
    output = log.read_text()
    assert "embedded Valkey ready" in output  # the startup path did log
    assert password not in output
    assert password not in dev.banner

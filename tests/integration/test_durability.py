"""ACCEPTD_DURABILITY: a 202 is sent only once the write is held as asked (fsynced to the
primary's append-only file, or on a replica), and a 503 + Retry-After when it is not in
time; a retry with the same Idempotency-Key then returns the one job that was made."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from aiohttp.test_utils import TestClient

from acceptd.api.app import create_app
from acceptd.cli.embedded import EmbeddedValkey
from acceptd.cli.topologies import HoldingProxy
from acceptd.core.settings import Settings
from tests.support.waiting import wait_until

Client = TestClient[Any, Any]
ECHO = {"type": "demo.echo", "input": {"value": 1}}


async def _submit(client: Client, auth: dict[str, str], key: str) -> Any:
    return await client.post("/v1/jobs", json=ECHO, headers={**auth, "Idempotency-Key": key})


async def _job_count(client: Client, auth: dict[str, str]) -> int:
    listed = await (await client.get("/v1/jobs", headers=auth)).json()
    return len(listed["items"])


async def test_fsync_durability_answers_once_the_append_only_file_holds_the_job(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
    tmp_path: Path,
) -> None:
    with EmbeddedValkey(tmp_path / "aof", persistent=True, maxmemory="64mb") as valkey:
        settings = make_settings(redis_url=valkey.url, durability="fsync")
        client = await aiohttp_client(create_app(settings))
        answer = await _submit(client, auth, "fsynced")
        assert answer.status == 202, await answer.text()
        with sync_redis.Redis.from_url(valkey.url) as direct:
            assert direct.info("persistence")["aof_enabled"] == 1
        await client.close()


async def test_fsync_durability_without_an_append_only_file_is_a_503_not_a_lie(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
) -> None:
    """The test session's Valkey keeps nothing on disk: no answer may claim it did."""
    client = await aiohttp_client(create_app(make_settings(durability="fsync")))
    answer = await _submit(client, auth, "not-on-disk")
    assert answer.status == 503
    assert answer.headers["Retry-After"]
    problem = await answer.json()
    assert "ACCEPTD_DURABILITY=fsync" in problem["detail"]
    again = await _submit(client, auth, "not-on-disk")
    assert again.status == 503
    assert await _job_count(client, auth) == 1  # one job made; the retry found it


@pytest.fixture
async def primary_and_replica(tmp_path: Path) -> AsyncIterator[tuple[str, HoldingProxy]]:
    """A primary whose replica reaches it through a proxy that can hold its bytes."""
    config = {"repl-diskless-sync-delay": "0"}
    primary = EmbeddedValkey(
        tmp_path / "primary", persistent=False, maxmemory="64mb", extra_config=config
    )
    with primary, HoldingProxy(primary.port) as proxy:
        replica = EmbeddedValkey(
            tmp_path / "replica",
            persistent=False,
            maxmemory="64mb",
            extra_config={**config, "replicaof": f"127.0.0.1 {proxy.port}"},
        )
        with replica, sync_redis.Redis.from_url(replica.url, decode_responses=True) as mirror:

            async def linked() -> bool:
                return bool(mirror.info("replication").get("master_link_status") == "up")

            await wait_until(linked, timeout=20)
            yield primary.url, proxy


async def test_replica_durability_refuses_while_the_replica_is_cut_off(
    aiohttp_client: Callable[..., Awaitable[Client]],
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
    primary_and_replica: tuple[str, HoldingProxy],
) -> None:
    """A failover now would lose what the replica has not received: while it receives
    nothing, every submit is a 503, and the 202 comes once it holds the job."""
    url, proxy = primary_and_replica
    settings = make_settings(redis_url=url, durability="replica", durability_timeout_ms=300)
    client = await aiohttp_client(create_app(settings))
    assert (await _submit(client, auth, "first")).status == 202
    proxy.hold()
    refused = await _submit(client, auth, "while-cut-off")
    assert refused.status == 503
    assert "no replica" in (await refused.json())["detail"]
    proxy.release()
    answer = await _submit(client, auth, "while-cut-off")
    assert answer.status == 202
    assert await _job_count(client, auth) == 2


async def test_a_node_that_lacks_the_write_does_not_confirm_it(
    make_settings: Callable[..., Settings],
) -> None:
    """After a failover the confirmer may reach a promoted replica that never got the write:
    its WAIT would count its own replicas and say yes. The wait asks for the record too."""
    from acceptd.core import ids
    from acceptd.store.connection import open_shards
    from acceptd.store.durability import Durability, NotDurableError

    settings = make_settings()
    shards = await open_shards(settings, retries=0)
    try:
        durability = Durability(shards, "replica", 10)
        missing = ids.new_id("job", 0)  # no record anywhere: as on a node that lost it
        with pytest.raises(NotDurableError, match="does not hold the write"):
            await durability.confirm(missing)
        with pytest.raises(NotDurableError, match="does not hold the write"):
            await durability.confirm(ids.new_id("bat", 0))
    finally:
        await shards.aclose()

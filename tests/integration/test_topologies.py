"""The real topologies of acceptd.cli.topologies, built from the embedded valkey-server:
a cluster with replicas that survives a killed primary, a Sentinel failover, and a replica
whose link to its primary is held.

Each test builds its own topology (so a failover cannot leak into another test) and tears
it down in a context manager, whatever the test's outcome.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from redis.asyncio.cluster import RedisCluster

from acceptd.cli.embedded import EmbeddedServerError, EmbeddedValkey, ping
from acceptd.cli.topologies import (
    EmbeddedCluster,
    EmbeddedSentinelGroup,
    HoldingProxy,
    dev_cluster,
)
from tests.support import topologies
from tests.support.topologies import PASSWORD, sentinel_client
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EmbeddedCluster]:
    with topologies.cluster(tmp_path / "cluster") as topology:
        yield topology


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[EmbeddedSentinelGroup]:
    with topologies.sentinel_group(tmp_path / "sentinel") as group:
        yield group


def _admin(conn: sync_redis.Redis, *command: str | int) -> Any:
    return conn.execute_command(*command)  # type: ignore[no-untyped-call]


async def _write_until_accepted(client: RedisCluster, key: str, value: str) -> None:
    """SET through the cluster client, retried while the cluster is still failing over."""

    async def written() -> bool:
        try:
            return bool(await client.set(key, value))
        except sync_redis.RedisError:
            return False

    await wait_until(written, timeout=30, interval=0.1)


async def test_cluster_serves_every_primary_and_promotes_a_replica_when_one_dies(
    cluster: EmbeddedCluster,
) -> None:
    primaries = [node for node in cluster.nodes if node.role == "primary"]
    replicas = [node for node in cluster.nodes if node.role == "replica"]
    assert len(primaries) == 3
    assert {node.primary_id for node in replicas} == {node.node_id for node in primaries}

    client = RedisCluster.from_url(cluster.url)
    try:
        keys = {node.node_id: cluster.key_on(node) for node in primaries}
        for node in primaries:
            key = keys[node.node_id]
            assert cluster.primary_for_key(key) is node
            await client.set(key, f"on {node.index}")
            assert await client.get(key) == f"on {node.index}".encode()
            with node.client() as conn:  # the key really lives on that node
                assert conn.get(key) == f"on {node.index}"

        victim = primaries[0]
        key = keys[victim.node_id]
        with victim.client() as conn:  # the replica holds the write before the crash
            assert _admin(conn, "WAIT", 1, 2000) == 1
        killed_at = time.monotonic()
        cluster.kill(victim)
        promoted = await asyncio.to_thread(cluster.wait_for_failover, victim, 30)
        took = time.monotonic() - killed_at

        assert promoted.primary_id is None
        assert promoted.role == "primary"
        assert cluster.primary_for_key(key) is promoted
        assert took < 30
        await _write_until_accepted(client, key, "after failover")
        assert await client.get(key) == b"after failover"
        for node in primaries[1:]:  # the other primaries never stopped serving
            assert await client.get(keys[node.node_id]) == f"on {node.index}".encode()
    finally:
        await client.aclose()


async def test_dev_cluster_keeps_its_ports_and_data_across_a_restart(tmp_path: Path) -> None:
    first = dev_cluster(tmp_path / "dev", password=PASSWORD)
    with first:
        assert len(first.nodes) == 3
        assert all(node.role == "primary" for node in first.nodes)
        client = RedisCluster.from_url(first.url)
        try:
            for index in range(20):
                await client.set(f"kept:{index}", index)
        finally:
            await client.aclose()

    again = dev_cluster(tmp_path / "dev", password="new-password-each-run")
    assert again.ports == first.ports
    with again:
        client = RedisCluster.from_url(again.url)
        try:
            for index in range(20):
                assert await client.get(f"kept:{index}") == str(index).encode()
        finally:
            await client.aclose()


async def test_sentinel_clients_follow_the_primary_through_a_failover(
    sentinel_group: EmbeddedSentinelGroup,
) -> None:
    group = sentinel_group
    assert group.url.startswith("redis+sentinel://:topology-password@127.0.0.1:")
    assert group.url.endswith("/acceptd")

    async with sentinel_client(group) as before:
        assert await before.discover_master("acceptd") == group.primary()
        primary = before.master_for("acceptd")
        try:
            await primary.set("before", "1")
            assert await primary.execute_command("WAIT", 1, 2000) == 1
        finally:
            await primary.aclose()

    killed_at = time.monotonic()
    old = group.kill_primary()
    promoted = await asyncio.to_thread(group.wait_for_failover, 30)
    took = time.monotonic() - killed_at

    assert promoted is not old
    assert took < 30
    async with sentinel_client(group) as after:
        assert await after.discover_master("acceptd") == (promoted.host, promoted.port)
        primary = after.master_for("acceptd")
        try:
            assert await primary.get("before") == b"1"  # a replica held it: kept
            await primary.set("after", "2")
            assert await primary.get("after") == b"2"
        finally:
            await primary.aclose()


async def test_a_held_replica_link_stops_acknowledgements_until_released(
    tmp_path: Path,
) -> None:
    primary = EmbeddedValkey(
        tmp_path / "primary",
        persistent=False,
        maxmemory="64mb",
        extra_config={"repl-diskless-sync-delay": "0"},  # no 5 s wait for more replicas
    )
    proxy = HoldingProxy(primary.port)
    replica = EmbeddedValkey(
        tmp_path / "replica",
        persistent=False,
        maxmemory="64mb",
        extra_config={"replicaof": f"127.0.0.1 {proxy.port}"},
    )
    with (
        primary,
        proxy,
        replica,
        sync_redis.Redis.from_url(primary.url) as conn,
        sync_redis.Redis.from_url(replica.url, decode_responses=True) as mirror,
    ):

        async def synced() -> bool:
            info: dict[str, Any] = mirror.info("replication")
            return info.get("master_link_status") == "up"

        await wait_until(synced, timeout=20)
        conn.set("a", "1")
        assert _admin(conn, "WAIT", 1, 1000) == 1

        proxy.hold()
        conn.set("b", "2")  # the primary keeps answering
        assert _admin(conn, "WAIT", 1, 200) == 0
        info = conn.info("replication")
        assert info["connected_slaves"] == 1  # held, not disconnected
        assert info["slave0"]["offset"] < info["master_repl_offset"]
        assert mirror.get("b") is None

        proxy.release()
        assert _admin(conn, "WAIT", 1, 1000) == 1
        assert mirror.get("b") == "2"


async def test_a_cluster_that_cannot_start_leaves_no_process_behind(tmp_path: Path) -> None:
    topology = topologies.cluster(tmp_path / "cluster", replicas_per_primary=0)
    last = topology.nodes[-1]
    with (
        socket.create_server(("127.0.0.1", last.port)),  # someone else holds its port
        pytest.raises(EmbeddedServerError),
    ):
        topology.start()
    assert not any(ping(node.host, node.port) for node in topology.nodes)

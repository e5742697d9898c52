"""acceptd.store.cluster on a real Valkey Cluster (the embedded valkey-server: three
primaries with a replica each, a password): each shard's client reaches the primary that
holds its tag's slot, follows a slot that moves (MOVED) and a primary that dies (failover),
with no new Shards object; one server and Sentinel stay OneServer.

The tests that leave the cluster as they found it share one (module scope); the failover
test, which kills a primary, builds its own.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection
from redis.crc import key_slot
from redis.exceptions import ClusterDownError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from acceptd.cli.embedded import EmbeddedValkey, free_port
from acceptd.cli.topologies import ClusterNode, EmbeddedCluster
from acceptd.core.settings import Settings
from acceptd.store import keys
from acceptd.store.cluster import ClusterShards, connect_shards
from acceptd.store.outages import StoreUnavailable
from acceptd.store.shards import OneServer, Shards
from tests.support import topologies
from tests.support.topologies import PASSWORD

pytestmark = pytest.mark.timeout(90)

SHARDS = 16
# What redis-py raises during a failover, under the StoreUnavailable the store's clients
# raise for it (store/outages.py).
OUTAGE_CLASSES = (RedisConnectionError, RedisTimeoutError, ClusterDownError, TryAgainError)

# Three keys of one tag, written and read back in one script: no CROSSSLOT on a cluster.
THREE_KEYS = """
redis.call('SET', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], 'v', ARGV[1])
return {redis.call('GET', KEYS[1]), redis.call('LLEN', KEYS[2]), redis.call('HGET', KEYS[3], 'v')}
"""


def _key(shard: int, name: str) -> str:
    return f"{keys.PREFIX}{keys.shard_tag(shard)}:test:{name}"


def _admin(conn: sync_redis.Redis, *command: str | int) -> Any:
    return conn.execute_command(*command)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    with topologies.cluster(tmp_path_factory.mktemp("cluster")) as topology:
        yield topology


@pytest.fixture
async def cluster_shards(
    shared_cluster: EmbeddedCluster, make_settings: Callable[..., Settings]
) -> AsyncIterator[Shards]:
    shards = await connect_shards(make_settings(redis_url=shared_cluster.url, shards=SHARDS))
    yield shards
    await shards.aclose()


async def _node_id(client: Redis) -> str:
    """The id of the node a tag's client reaches (CLUSTER MYID names no key: it runs
    wherever the connection is)."""
    return str(await client.execute_command("CLUSTER", "MYID"))  # type: ignore[no-untyped-call]


async def _script_and_transaction(client: Redis, shard: int, value: str) -> None:
    """A script over three keys of the shard, and a MULTI/EXEC over three others."""
    three = [_key(shard, f"script-{n}") for n in range(3)]
    await client.delete(*three)
    script = client.register_script(THREE_KEYS)
    assert await script(keys=three, args=[value]) == [value, 1, value]
    async with client.pipeline(transaction=True) as pipe:
        pipe.set(_key(shard, "tx-a"), value)
        pipe.incr(_key(shard, "tx-b"))
        pipe.hset(_key(shard, "tx-c"), "v", value)
        replies = await pipe.execute()
    assert replies[0] is True
    assert replies[2] in (0, 1)


# ---- finding the cluster, and each shard on its primary -----------------------------------


async def test_connect_shards_finds_the_cluster_and_each_shard_reaches_its_slots_primary(
    shared_cluster: EmbeddedCluster, cluster_shards: Shards
) -> None:
    shards = cluster_shards
    assert isinstance(shards, ClusterShards)
    assert shards.count == SHARDS
    per_node: Counter[int] = Counter()
    for shard in range(SHARDS):
        key = _key(shard, "where")
        client = shards.of(shard)
        assert shards.for_key(key) is client
        await client.set(key, f"shard {shard}")
        node = shared_cluster.primary_for_key(key)
        per_node[node.index] += 1
        with node.client() as conn:  # the key really lives on that node
            assert conn.get(key) == f"shard {shard}"
        assert await _node_id(client) == node.node_id
        await _script_and_transaction(client, shard, f"v{shard}")
    # Shard tags sit at evenly spaced slots: 16 over three equal slot ranges is 6/5/5.
    assert sorted(per_node.values()) == [5, 5, 6]

    control_key = keys.CONTROL + "test:where"
    await shards.control.set(control_key, "control")
    with shared_cluster.primary_for_key(control_key).client() as conn:
        assert conn.get(control_key) == "control"

    reads = await shards.across(lambda pipe, shard: pipe.get(_key(shard, "where")))
    assert reads == [[f"shard {shard}"] for shard in range(SHARDS)]


async def test_a_process_holds_connections_per_node_not_per_shard(
    shared_cluster: EmbeddedCluster, make_settings: Callable[..., Settings]
) -> None:
    """Bursts of concurrent commands on every shard, one after the other: the idle
    connections are shared by the shards of a node, so the process ends with about one
    burst's worth per node (a pool per shard would keep one burst's worth per shard)."""
    burst = 8
    name = "acceptd-count-me"
    settings = make_settings(redis_url=shared_cluster.url, shards=SHARDS)
    shards = await connect_shards(settings)
    assert isinstance(shards, ClusterShards)

    def ours() -> int:
        total = 0
        for node in shared_cluster.nodes[: shared_cluster.primaries]:
            with node.client() as conn:
                listed = _admin(conn, "CLIENT", "LIST")
                total += sum(1 for line in str(listed).splitlines() if f"name={name}" in line)
        return total

    try:
        for shard in range(SHARDS):
            client = shards.of(shard)
            await asyncio.gather(
                *(client.execute_command("CLIENT", "SETNAME", name) for _ in range(burst))  # type: ignore[no-untyped-call]
            )
        # Each burst ran `burst` commands at once on its shard's node.
        assert burst <= ours() <= shared_cluster.primaries * burst
    finally:
        await shards.aclose()
    assert ours() == 0


async def test_an_acl_user_of_the_url_reaches_every_primary(
    shared_cluster: EmbeddedCluster, make_settings: Callable[..., Settings]
) -> None:
    user, password = "acceptd-test", "user-password"
    for node in shared_cluster.nodes:  # ACLs are per node: a cluster does not spread them
        with node.client() as conn:
            _admin(conn, "ACL", "SETUSER", user, "reset", "on", f">{password}", "~*", "&*", "+@all")
    first = shared_cluster.nodes[0]
    url = f"redis://{user}:{password}@{first.host}:{first.port}"
    shards = await connect_shards(make_settings(redis_url=url, shards=SHARDS))
    try:
        assert isinstance(shards, ClusterShards)
        reached = set()
        for shard in range(SHARDS):
            client = shards.of(shard)
            assert await client.execute_command("ACL", "WHOAMI") == user  # type: ignore[no-untyped-call]
            reached.add(await _node_id(client))
        assert len(reached) == 3
    finally:
        await shards.aclose()
        for node in shared_cluster.nodes:
            with node.client() as conn:
                _admin(conn, "ACL", "DELUSER", user)


async def test_one_server_an_unreachable_one_and_sentinel_are_one_server(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # A server of its own: the session's may be a cluster (ACCEPTD_TEST_TOPOLOGY).
    with EmbeddedValkey(tmp_path / "one", persistent=False) as valkey:
        shards = await connect_shards(make_settings(redis_url=valkey.url, shards=4))
        try:
            assert isinstance(shards, OneServer)
            assert shards.of(0) is shards.of(3) is shards.control
            await shards.of(2).set(_key(2, "one"), "1")
            assert await shards.of(0).get(_key(2, "one")) == "1"
        finally:
            await shards.aclose()

    # Nothing listens there: asked within bounded timeouts, taken for one server whose
    # client's retries ride out the outage.
    started = time.monotonic()
    unreachable = await connect_shards(
        make_settings(redis_url=f"redis://127.0.0.1:{free_port()}", shards=4)
    )
    try:
        assert isinstance(unreachable, OneServer)
        assert time.monotonic() - started < 15
    finally:
        await unreachable.aclose()

    # A Sentinel URL is not probed (no sentinel listens here either).
    sentinel = await connect_shards(
        make_settings(redis_url=f"redis+sentinel://127.0.0.1:{free_port()}/primary", shards=4)
    )
    try:
        assert isinstance(sentinel, OneServer)
    finally:
        await sentinel.aclose()


async def test_a_rediss_url_opens_every_node_with_tls(
    shared_cluster: EmbeddedCluster, make_settings: Callable[..., Settings]
) -> None:
    # The embedded valkey-server is built without TLS ("Failed finding TLS support"), so no
    # TLS cluster runs here: this shows the URL's TLS options reach every node's
    # connections, and that they do speak TLS (a plaintext node refuses the handshake).
    url = shared_cluster.url.replace("redis://", "rediss://") + "?ssl_cert_reqs=none"
    shards = ClusterShards.from_settings(make_settings(redis_url=url, shards=SHARDS), retries=0)
    try:
        for client in (shards.of(0), shards.of(SHARDS - 1), shards.control):
            pool = client.connection_pool
            assert issubclass(pool.connection_class, SSLConnection)
            assert pool.connection_kwargs["ssl_cert_reqs"] == "none"
            assert pool.connection_kwargs["password"] == PASSWORD
        # A plaintext node reads the TLS hello as the start of a command, and waits for the
        # rest: the handshake times out.
        with pytest.raises(StoreUnavailable) as raised:
            await asyncio.wait_for(shards.of(0).ping(), timeout=20)
        assert isinstance(raised.value.__cause__, (RedisConnectionError, RedisTimeoutError))
        assert not shards.slot_map.loaded  # the map could not be read in plaintext either
    finally:
        await shards.aclose()


# ---- a slot that moves ---------------------------------------------------------------------


def _move_slot(cluster: EmbeddedCluster, slot: int, target: ClusterNode) -> ClusterNode:
    """Migrates `slot` (its keys, then its ownership) to `target`, as valkey-cli's
    resharding does; returns the node it left."""
    source = cluster.primary_for_slot(slot)
    with source.client() as src, target.client() as dst:
        _admin(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
        _admin(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
        while batch := _admin(src, "CLUSTER", "GETKEYSINSLOT", slot, 100):
            _admin(src, "MIGRATE", target.host, target.port, "", 0, 5000,
                   "AUTH", PASSWORD, "KEYS", *batch)  # fmt: skip
        # The new owner first, then the old, then every other primary (as the docs order it).
        others = [n for n in cluster.nodes if n.role == "primary" and n not in (source, target)]
        for node in (target, source, *others):
            with node.client() as conn:
                _admin(conn, "CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
    assert cluster.primary_for_slot(slot) is target
    return source


async def test_a_moved_slot_is_followed_by_the_same_client(
    shared_cluster: EmbeddedCluster, cluster_shards: Shards
) -> None:
    shards = cluster_shards
    # Two shards on one primary: one read, one transaction, after their slots moved away.
    by_node: dict[str, list[int]] = {}
    for shard in range(SHARDS):
        node = shared_cluster.primary_for_key(keys.shard_tag(shard))
        by_node.setdefault(node.node_id, []).append(shard)
    source_id, (read_shard, tx_shard, *_) = next(iter(by_node.items()))
    target = next(n for n in shared_cluster.nodes if n.role == "primary" and n.node_id != source_id)
    for shard in (read_shard, tx_shard):
        await shards.of(shard).set(_key(shard, "moving"), f"before {shard}")
        assert await _node_id(shards.of(shard)) == source_id  # connections open on the source

    slots = [key_slot(keys.shard_tag(shard).encode()) for shard in (read_shard, tx_shard)]
    sources = [await asyncio.to_thread(_move_slot, shared_cluster, s, target) for s in slots]
    try:
        # The open connections still go to the source: MOVED tells them where to go. Reads
        # sent together leave as one pipeline (store/batching.py): each MOVED reply in it
        # sends its command again alone, which follows.
        reads = [shards.of(read_shard).get(_key(read_shard, "moving")) for _ in range(3)]
        assert await asyncio.gather(*reads) == [f"before {read_shard}"] * 3
        assert await _node_id(shards.of(read_shard)) == target.node_id
        async with shards.of(tx_shard).pipeline(transaction=True) as pipe:
            pipe.get(_key(tx_shard, "moving"))
            pipe.set(_key(tx_shard, "moving"), "after")
            assert await pipe.execute() == [f"before {tx_shard}", True]
        assert await _node_id(shards.of(tx_shard)) == target.node_id
        await _script_and_transaction(shards.of(tx_shard), tx_shard, "moved")
        with target.client() as conn:
            assert conn.get(_key(tx_shard, "moving")) == "after"
    finally:  # the shared cluster is left as it was found
        for slot, source in zip(slots, sources, strict=True):
            await asyncio.to_thread(_move_slot, shared_cluster, slot, source)
    assert await shards.of(read_shard).get(_key(read_shard, "moving")) == f"before {read_shard}"
    assert await _node_id(shards.of(read_shard)) == source_id


# ---- a primary that dies -------------------------------------------------------------------


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[EmbeddedCluster]:
    with topologies.cluster(tmp_path / "cluster") as topology:
        yield topology


async def test_a_failover_is_followed_within_seconds_and_fails_only_as_an_outage(
    own_cluster: EmbeddedCluster, make_settings: Callable[..., Settings]
) -> None:
    cluster = own_cluster
    shards = await connect_shards(make_settings(redis_url=cluster.url, shards=SHARDS))
    errors: list[tuple[str, BaseException]] = []  # (what failed, the error)
    try:
        assert isinstance(shards, ClusterShards)
        victim = cluster.primary_for_key(keys.shard_tag(0))
        bystander = next(  # a shard on another primary, which stays up
            s for s in range(SHARDS) if cluster.primary_for_key(keys.shard_tag(s)) is not victim
        )
        await shards.of(0).set(_key(0, "kept"), "before")
        assert await shards.of(0).execute_command("WAIT", 1, 2000) == 1  # type: ignore[no-untyped-call]

        async def attempt(shard: int) -> bool:
            """A write, a transaction and a read on the shard; an error is recorded, never
            raised."""
            client, what = shards.of(shard), "command"
            try:
                async with asyncio.timeout(15):  # a hang is a failure, not an outage
                    await client.set(_key(shard, "probe"), "x")
                    what = "transaction"
                    async with client.pipeline(transaction=True) as pipe:
                        pipe.incr(_key(shard, "count"))
                        pipe.expire(_key(shard, "count"), 60)
                        await pipe.execute()
                    what = "command"
                    return bool(await client.get(_key(shard, "kept")) == "before")
            except Exception as error:
                errors.append((what, error))
                return False

        stop = asyncio.Event()

        async def keep_trying(shard: int) -> None:
            while not stop.is_set():
                await attempt(shard)
                await asyncio.sleep(0.05)  # the pace of the writes going on

        # Writes go on during the failover, on the dying primary's shard and on another.
        background = [asyncio.create_task(keep_trying(s)) for s in (0, bystander)]
        killed_at = time.monotonic()
        cluster.kill(victim)
        promoted = await asyncio.to_thread(cluster.wait_for_failover, victim, 30)
        promoted_at = time.monotonic()

        # Within a bounded time of the promotion, the same Shards object reaches it.
        while not await attempt(0):
            assert time.monotonic() - promoted_at < 20, f"shard 0 still failing: {errors[-3:]}"
            await asyncio.sleep(0.1)
        followed_at = time.monotonic()
        stop.set()
        await asyncio.gather(*background)

        assert await _node_id(shards.of(0)) == promoted.node_id
        await _script_and_transaction(shards.of(0), 0, "after failover")
        assert await shards.of(bystander).get(_key(bystander, "probe")) == "x"
        print(
            f"failover: promoted {promoted_at - killed_at:.1f}s after the kill, "
            f"followed {followed_at - promoted_at:.1f}s later; errors meanwhile: "
            f"{Counter(f'{what}: {type(e).__name__}' for what, e in errors)}"
        )
    finally:
        await shards.aclose()
    # Told apart where the clients are made (store/connection.py StoreClient): a transaction
    # and a command alike, whatever redis-py made of the reply.
    assert all(isinstance(e, StoreUnavailable) for _, e in errors), errors
    assert all(isinstance(e.__cause__, OUTAGE_CLASSES) for _, e in errors), errors
